"""Pre-flight's other checks (deploy/preflight.py), decided by tables: the account, the VPC and
its CIDRs, the zones a managed network gets, instance type offerings, the images' architectures,
the servers' spread over real zones and the load balancer's one subnet per zone. Each row names
the input that decides it and the AWS page that says so; preflight.check runs against strict
botocore stubs shaped like the real answers (tests/support/preflight_stubs.py). Subnets that do
not exist, belong to another VPC or sit in another zone are pinned on moto (tests/e2e/test_preflight.py);
the routes in test_preflight_routes.py."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from k3s_infra.config import load_environment, validate
from k3s_infra.deploy import preflight
from tests.support.preflight_stubs import (IMAGES, Account, StubbedAccount, Subnet, expect_images, instance_types,
                                           local_route, pinned, route, route_table)

DEV = load_environment("dev")
REGION = DEV.region
X86 = DEV.nodes.ami_parameter.x86_64
BOTH = ("servers.instance_type", "agent_pools[general].instance_types")  # both name t3.small in dev

STS = "https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html"
VPC_API = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Vpc.html"  # CidrBlockAssociationSet
ERRORS = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html"
ZONES = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AvailabilityZone.html"  # ZoneType, OptInStatus
GET_AZS = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/"
           "intrinsic-function-reference-getavailabilityzones.html")
OFFERINGS = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypeOfferings.html"
IMAGES_API = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Image.html"  # Architecture
TYPES_API = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ProcessorInfo.html"  # SupportedArchitectures
SSM_API = "https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html"  # ParameterNotFound
ELB = "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html"
ASG_ZONES = "https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-availability-zone-balanced.html"


def nat(env, table_id: str = "rtb-0a1b2c3d4e5f60700") -> dict:
    vpc, cidr = env.network.vpc_id, env.network.vpc_cidr
    return route_table(table_id, vpc, [local_route(cidr), route(NatGatewayId="nat-0a1b2c3d4e5f60718")], main=True)


def brought(env, zones: dict[str, str] | None = None, **account) -> Account:
    """Every subnet of ``env`` in its file's zone (or ``zones``: id -> real zone), routed through NAT
    by the main table, every public subnet through an internet gateway."""
    zones = zones or {}
    vpc, cidr = env.network.vpc_id, env.network.vpc_cidr
    igw = route_table("rtb-0a1b2c3d4e5f60799", vpc, [local_route(cidr), route(GatewayId="igw-0a1b2c3d4e5f60718")])
    subnets = [Subnet(s.id, zones.get(s.id, s.az)) for s in env.network.subnets]
    subnets += [Subnet(s.id, zones.get(s.id, s.az), igw) for s in env.network.public_subnets]
    return Account(env, subnets, main_table=nat(env), **account)


def check(account: Account, image_ids: dict | None = None) -> list[tuple[str, str]]:
    stubbed = account.stub()
    problems = preflight.check(account.env, stubbed, image_ids=pinned(account.env) if image_ids is None else image_ids)
    stubbed.done()
    return problems


# --- the account and the VPC ---------------------------------------------------------------------

ACCOUNTS = [("the file's account", "123456789012", []),
            ("one digit off", "123456789013",
             [("account_id", "credentials are for account 123456789013, not 123456789012")])]


@pytest.mark.parametrize("row, caller, expected", ACCOUNTS, ids=[a[0] for a in ACCOUNTS])
def test_the_credentials_account_must_be_the_file_s(row, caller, expected):
    assert check(brought(DEV, account_id=caller)) == expected, STS


# The file's vpc_cidr may be any CIDR associated with the VPC (primary or secondary).
CIDRS = [("the primary CIDR", ("10.0.0.0/16",), []),
         ("a secondary CIDR", ("10.9.0.0/16", "10.0.0.0/16"), []),
         ("neither", ("10.9.0.0/16", "10.10.0.0/16"),
          [("network.vpc_cidr", f"{DEV.network.vpc_id} has CIDR 10.10.0.0/16, 10.9.0.0/16, not 10.0.0.0/16")])]


@pytest.mark.parametrize("row, cidrs, expected", CIDRS, ids=[c[0] for c in CIDRS])
def test_the_vpc_cidr_must_be_one_of_the_vpc_s(row, cidrs, expected):
    assert check(brought(DEV, vpc_cidrs=cidrs)) == expected, VPC_API


def _vpc_refused(code: str) -> StubbedAccount:
    stubbed = StubbedAccount(REGION)
    stubbed.expect("sts", "get_caller_identity", {"UserId": "AIDAEXAMPLE", "Account": DEV.account_id,
                                                  "Arn": f"arn:aws:iam::{DEV.account_id}:user/deployer"})
    stubbed.refuse("ec2", "describe_vpcs", code, {"VpcIds": [DEV.network.vpc_id]})
    return stubbed


def test_a_vpc_that_does_not_exist_is_a_problem_and_other_errors_are_not_hidden():
    stubbed = _vpc_refused("InvalidVpcID.NotFound")
    expect_images(stubbed, DEV, instance_types(DEV), {}, {})  # the images are still checked
    assert preflight.check(DEV, stubbed, image_ids=pinned(DEV)) == [
        ("network.vpc_id", f"{DEV.network.vpc_id} does not exist in {REGION}")], ERRORS
    stubbed.done()
    stubbed = _vpc_refused("UnauthorizedOperation")
    with pytest.raises(ClientError, match="UnauthorizedOperation"):
        preflight.check(DEV, stubbed, image_ids=pinned(DEV))


# --- the zones a managed network gets --------------------------------------------------------------

def _zone(name: str, kind: str = "availability-zone", opt_in: str = "opt-in-not-required") -> dict:
    return {"ZoneName": name, "ZoneId": f"euw1-{name[-1]}", "ZoneType": kind, "OptInStatus": opt_in,
            "State": "available", "RegionName": REGION, "GroupName": REGION if kind == "availability-zone" else name,
            "NetworkBorderGroup": REGION, "Messages": []}


STANDARD = [_zone(f"{REGION}{z}") for z in "abc"]
# Fn::GetAZs gives the Network stack the region's zones; a Local or Wavelength Zone is no such zone.
# (row, DescribeAvailabilityZones' answer, zones asked for, a problem?)
MANAGED_ZONES = [
    ("three zones, three asked for", STANDARD, 3, False),
    ("two zones and a Local Zone, three asked for",
     [*STANDARD[:2], _zone(f"{REGION}-lon-1a", "local-zone", "opted-in")], 3, True),
    ("two zones and a Wavelength Zone, three asked for",
     [*STANDARD[:2], _zone(f"{REGION}-wl1-lon-wlz-1", "wavelength-zone", "opted-in")], 3, True),
    ("three zones, two asked for", STANDARD, 2, False),
]


@pytest.mark.parametrize("row, zones, wanted, refused", MANAGED_ZONES, ids=[m[0] for m in MANAGED_ZONES])
def test_a_managed_network_needs_as_many_standard_zones_as_it_asks_for(env_document, row, zones, wanted, refused):
    document = env_document("staging")
    document["network"]["create"]["availability_zones"] = wanted
    document["servers"]["count"] = 3 if wanted >= 3 else 1  # three servers need three zones (config)
    problems, _ = _check_managed(validate(document, "staging.yaml"), zones, wanted)
    expected = [("network.create.availability_zones", f"{REGION} has 2 availability zones, {wanted} asked for")]
    assert problems == (expected if refused else []), (ZONES, GET_AZS)


def _check_managed(env, zones: list[dict], wanted: int) -> tuple[list, list]:
    """preflight.check of a managed network whose region has ``zones``: (problems, offline)."""
    stubbed = StubbedAccount(REGION)
    stubbed.expect("sts", "get_caller_identity", {"UserId": "AIDAEXAMPLE", "Account": env.account_id,
                                                  "Arn": f"arn:aws:iam::{env.account_id}:user/deployer"})
    stubbed.expect("ec2", "describe_availability_zones", {"AvailabilityZones": zones},
                   {"Filters": [{"Name": "state", "Values": ["available"]}]})
    standard = sorted(z["ZoneName"] for z in zones if z["ZoneType"] == "availability-zone")[:wanted]
    types = instance_types(env)
    stubbed.expect("ec2", "describe_instance_type_offerings", {"InstanceTypeOfferings": [
        {"InstanceType": t, "LocationType": "availability-zone", "Location": z} for t in types for z in standard]},
        {"LocationType": "availability-zone", "Filters": [{"Name": "instance-type", "Values": types},
                                                           {"Name": "location", "Values": standard}]})
    expect_images(stubbed, env, types, {}, {})
    offline: list = []
    problems = preflight.check(env, stubbed, image_ids=pinned(env), offline=offline)
    stubbed.done()
    return problems, offline


@pytest.mark.parametrize("nat, offline", [("none", ["network.create.nat_gateways"]), ("one", []), ("per-az", [])])
def test_a_managed_network_without_nat_gateways_is_offline_and_no_problem(env_document, nat, offline):
    """docs/network.md "Without NAT": its S3 gateway endpoint serves every private route table; what
    nodes still cannot fetch is listed (registry_needs), not refused."""
    document = env_document("staging")
    document["network"]["create"]["nat_gateways"] = nat
    problems, found = _check_managed(validate(document, "staging.yaml"), STANDARD, 3)
    assert (problems, found) == ([], offline)


# --- instance types offered in the nodes' zones ------------------------------------------------------

# dev's nodes are in eu-west-1a and 1b. (row, zones where t3.small is offered, the problem of each field)
OFFERED = [
    ("offered in every zone", [f"{REGION}a", f"{REGION}b"], None),
    ("offered in one zone of two", [f"{REGION}a"], f"t3.small is not offered in the nodes' zones {REGION}b"),
    ("offered in none (or no such type)", [],
     f"t3.small does not exist or is offered in none of the nodes' zones {REGION}a, {REGION}b"),
    ("offered only elsewhere", [f"{REGION}c"],
     f"t3.small does not exist or is offered in none of the nodes' zones {REGION}a, {REGION}b"),
]


@pytest.mark.parametrize("row, zones, problem", OFFERED, ids=[o[0] for o in OFFERED])
def test_every_instance_type_must_be_offered_in_every_node_zone(row, zones, problem):
    problems = check(brought(DEV, offered={"t3.small": zones}))
    assert problems == ([] if problem is None else [(f, problem) for f in BOTH]), OFFERINGS


def test_offerings_on_a_second_page_count():
    """DescribeInstanceTypeOfferings pages its answer (NextToken): a zone on page two is offered."""
    pages = [{"t3.small": [f"{REGION}a"]}, {"t3.small": [f"{REGION}b"]}]
    assert check(brought(DEV, offered_pages=pages)) == [], OFFERINGS


# --- the images and the instance types' architectures ----------------------------------------------

IMAGE = IMAGES["x86_64"]
# (row, the image's Architecture, t3.small's SupportedArchitectures, problems)
ARCHITECTURES = [
    ("x86_64 image, x86_64 type", "x86_64", ["x86_64"], []),
    ("x86_64 image, a type running i386 and x86_64", "x86_64", ["i386", "x86_64"], []),
    ("an arm64 image behind the x86_64 parameter", "arm64", ["x86_64"],
     [("nodes.ami_parameter.x86_64", f"image {IMAGE} (from {X86}) is arm64, not x86_64"),
      *[(f, f"t3.small runs x86_64, but image {IMAGE} ({X86}) is arm64") for f in BOTH]]),
    ("a Mac image (x86_64_mac)", "x86_64_mac", ["x86_64"],
     [("nodes.ami_parameter.x86_64", f"image {IMAGE} (from {X86}) is x86_64_mac, not x86_64"),
      *[(f, f"t3.small runs x86_64, but image {IMAGE} ({X86}) is x86_64_mac") for f in BOTH]]),
]


@pytest.mark.parametrize("row, built_for, supported, expected", ARCHITECTURES, ids=[a[0] for a in ARCHITECTURES])
def test_the_image_and_every_instance_type_given_it_share_an_architecture(row, built_for, supported, expected):
    account = brought(DEV, image_architectures={"x86_64": built_for}, supported={"t3.small": supported})
    assert check(account) == expected, (IMAGES_API, TYPES_API)


def _types(stubbed: StubbedAccount) -> None:
    stubbed.expect("ec2", "describe_instance_types", {"InstanceTypes": [
        {"InstanceType": "t3.small", "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]}}]},
        {"Filters": [{"Name": "instance-type", "Values": ["t3.small"]}]})


def _parameter(answer: str | None):
    """SSM's answer for the image parameter: its value, or an error code."""
    def step(stubbed: StubbedAccount) -> None:
        if answer and answer.startswith("ami-"):
            stubbed.expect("ssm", "get_parameter", {"Parameter": {
                "Name": X86, "Type": "String", "Value": answer, "Version": 7, "DataType": "aws:ec2:image",
                "ARN": f"arn:aws:ssm:{REGION}::parameter{X86}"}}, {"Name": X86})
        else:
            stubbed.refuse("ssm", "get_parameter", answer, {"Name": X86})
    return step


def _images(answer: str | list):
    """DescribeImages' answer: the images found, or an error code."""
    def step(stubbed: StubbedAccount) -> None:
        params = {"ImageIds": [IMAGE], "IncludeDeprecated": True}
        if isinstance(answer, str):
            stubbed.refuse("ec2", "describe_images", answer, params)
        else:
            stubbed.expect("ec2", "describe_images", {"Images": answer}, params)
    return step


GONE = [("nodes.ami_parameter.x86_64", f"image {IMAGE} (from {X86}) does not exist in {REGION}")]
# (row, the calls the image check makes, problems)
IMAGE_SOURCES = [
    ("the parameter does not exist", [_parameter("ParameterNotFound")],
     [("nodes.ami_parameter.x86_64", f"SSM parameter {X86} does not exist in {REGION}")]),
    ("no such image", [_parameter(IMAGE), _images("InvalidAMIID.NotFound")], GONE),
    ("a malformed image ID", [_parameter(IMAGE), _images("InvalidAMIID.Malformed")], GONE),
    ("an image this account cannot see (none found)", [_parameter(IMAGE), _images([])], GONE),
]


@pytest.mark.parametrize("row, steps, expected", IMAGE_SOURCES, ids=[i[0] for i in IMAGE_SOURCES])
def test_the_image_a_parameter_names_must_exist(row, steps, expected):
    account = brought(DEV, images_step=lambda stubbed: [step(stubbed) for step in (*steps, _types)])
    assert check(account, image_ids={}) == expected, (SSM_API, ERRORS)


def test_errors_that_say_nothing_about_the_image_are_not_hidden():
    account = brought(DEV, images_step=_parameter("AccessDeniedException"))
    with pytest.raises(ClientError, match="AccessDeniedException"):
        check(account, image_ids={})


def test_an_explicit_image_is_the_one_checked_and_unknown_types_are_left_to_the_offerings(env_document):
    document = env_document("dev")
    document["nodes"] = {"ami_id": {"x86_64": IMAGE}}
    env = validate(document, "dev.yaml")

    def step(stubbed: StubbedAccount) -> None:
        _images([{"Architecture": "arm64", "ImageId": IMAGE, "State": "available"}])(stubbed)
        stubbed.refuse("ec2", "describe_instance_types", "InvalidInstanceType",
                       {"Filters": [{"Name": "instance-type", "Values": ["t3.small"]}]})

    assert check(brought(env, images_step=step), image_ids={}) == [
        ("nodes.ami_id.x86_64", f"image {IMAGE} (from nodes.ami_id.x86_64) is arm64, not x86_64")]


# --- the servers over real zones, one load balancer subnet per zone ----------------------------------

# prod's node subnets say zones a, b, c. (row, servers, their real zones, the crowded zone or None)
SPREAD = [
    ("3 servers over a b c", 3, "abc", None),
    ("3 servers, the c subnet really in b", 3, "abb", "eu-west-1b could hold 2 of the 3 servers (ServerInit in "
                                                      "eu-west-1a, Servers balanced over eu-west-1b)"),
    ("3 servers, the a subnet really in b", 3, "bbc", "eu-west-1b could hold 2 of the 3 servers (ServerInit in "
                                                      "eu-west-1b, Servers balanced over eu-west-1b, eu-west-1c)"),
    ("5 servers over a b c", 5, "abc", None),
    ("5 servers, the c subnet really in b", 5, "abb", "eu-west-1b could hold 4 of the 5 servers"),
    ("1 server: no quorum to keep", 1, "abb", None),
]


@pytest.mark.parametrize("row, count, real, crowded", SPREAD, ids=[s[0] for s in SPREAD])
def test_no_real_zone_may_hold_more_servers_than_etcd_can_lose(env_document, row, count, real, crowded):
    document = env_document("prod")
    document["servers"]["count"] = count
    env = validate(document, "prod.yaml")
    zones = {s.id: f"{REGION}{z}" for s, z in zip(env.network.subnets, real)}
    problems = check(brought(env, zones))
    spread = [message for field, message in problems if field == "network.subnets"]
    if crowded is None:
        assert spread == [], ASG_ZONES
    else:
        (message,) = spread
        assert message.startswith(crowded) and "would lose etcd quorum" in message, ASG_ZONES
    # A subnet whose az is not its real zone is named as well.
    for n, (subnet, zone) in enumerate(zip(env.network.subnets, real)):
        wrong = (f"network.subnets[{n}].az", f"{subnet.id} is in {REGION}{zone}, not {subnet.az}")
        assert (wrong in problems) == (subnet.az != f"{REGION}{zone}")


PROD = load_environment("prod")
PUBLIC = [s.id for s in PROD.network.public_subnets]
# (row, the public subnets' real zones, problems)
LOAD_BALANCER = [
    ("one public subnet per zone", "abc", []),
    ("two public subnets in zone a", "aac", [
        ("network.public_subnets[1].az", f"{PUBLIC[1]} is in {REGION}a, not {REGION}b"),
        ("network.public_subnets[1].az", f"{PUBLIC[1]} is in {REGION}a like {PUBLIC[0]}, and a load balancer takes "
                                         "one subnet per zone: list one public subnet per zone")]),
]


@pytest.mark.parametrize("row, real, expected", LOAD_BALANCER, ids=[lb[0] for lb in LOAD_BALANCER])
def test_a_load_balancer_gets_one_subnet_per_real_zone(row, real, expected):
    zones = {s: f"{REGION}{z}" for s, z in zip(PUBLIC, real)}
    assert check(brought(PROD, zones)) == expected, ELB


def test_a_server_subnet_that_does_not_exist_is_named_and_its_spread_left_unjudged(env_document):
    """Without a subnet's real zone the servers' spread cannot be told: the missing subnet is the problem."""
    document = env_document("prod")
    document["servers"]["count"] = 3
    env = validate(document, "prod.yaml")
    account = brought(env)
    gone = env.network.subnets[2].id
    account.subnets = [s for s in account.subnets if s.id != gone]
    problems = check(account)
    assert ("network.subnets[2].id", f"{gone} does not exist in {env.region}") in problems
    assert not [message for field, message in problems if field == "network.subnets"]
