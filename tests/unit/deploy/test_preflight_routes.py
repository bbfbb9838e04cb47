"""Pre-flight's "a private subnet can reach what nodes need" (deploy/preflight.py: _route_table,
_default_targets, _way_out, _endpoint_services), decided by tables: every target an EC2 Route
can name (botocore's EC2 model, shape Route), each row citing the AWS page that decides it.

Nodes need a way out (a route that can reach the internet) or, without one, the AWS endpoints
they boot with (then the subnet is reported ``offline``: charts and images need a registry in
reach). A route is what the subnet's route table says: its own table, else the VPC's main
table. Each row drives preflight.check through strict botocore stubs shaped like the real
Describe* answers (tests/support/preflight_stubs.py)."""

from __future__ import annotations

import pytest

from k3s_infra.config import load_environment
from k3s_infra.deploy import preflight
from k3s_infra.model import naming
from tests.support.preflight_stubs import Account, Subnet, endpoint, local_route, pinned, route, route_table

DEV = load_environment("dev")
VPC, CIDR = DEV.network.vpc_id, DEV.network.vpc_cidr
FIRST, SECOND = (s.id for s in DEV.network.subnets)

# The pages that decide each row.
SUBNET_TYPES = "https://docs.aws.amazon.com/vpc/latest/userguide/configure-subnets.html#subnet-types"
IGW = "https://docs.aws.amazon.com/vpc/latest/userguide/VPC_Internet_Gateway.html"  # needs a public IPv4 address
NAT = "https://docs.aws.amazon.com/vpc/latest/userguide/vpc-nat-gateway.html"
NAT_INSTANCE = "https://docs.aws.amazon.com/vpc/latest/userguide/VPC_NAT_Instance.html"
ROUTE = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Route.html"  # State: active | blackhole
TARGETS = "https://docs.aws.amazon.com/vpc/latest/userguide/route-table-options.html"
PEERING = "https://docs.aws.amazon.com/vpc/latest/peering/vpc-peering-basics.html#vpc-peering-limitations"
TGW_EGRESS = "https://docs.aws.amazon.com/vpc/latest/tgw/transit-gateway-nat-igw.html"
EIGW = "https://docs.aws.amazon.com/vpc/latest/userguide/egress-only-internet-gateway.html"  # IPv6 only
CARRIER = "https://docs.aws.amazon.com/vpc/latest/userguide/Carrier_Gateway.html"  # carrier IP addresses
LOCAL_GATEWAY = "https://docs.aws.amazon.com/outposts/latest/userguide/outposts-local-gateways.html"
GWLB = "https://docs.aws.amazon.com/vpc/latest/privatelink/gateway-load-balancer-endpoints.html"
MAIN_TABLE = "https://docs.aws.amazon.com/vpc/latest/userguide/subnet-route-tables.html"
GATEWAY_ENDPOINT = "https://docs.aws.amazon.com/vpc/latest/privatelink/gateway-endpoints.html"
PRIVATE_DNS = ("https://docs.aws.amazon.com/vpc/latest/privatelink/privatelink-access-aws-services.html"
               "#interface-endpoint-private-dns")
S3_PRIVATE_DNS = ("https://docs.aws.amazon.com/AmazonS3/latest/userguide/privatelink-interface-endpoints.html"
                  "#private-dns")

NEEDED = ["autoscaling", "cloudformation", "ec2", "elasticloadbalancing", "s3", "secretsmanager", "ssm", "sts"]
NO_WAY_OUT = (f"{FIRST} has no route out (0.0.0.0/0 to a NAT gateway) and the VPC lacks endpoints nodes need "
              "to boot: ")
CORE_NETWORK = "arn:aws:networkmanager::123456789012:core-network/core-network-0a1b2c3d4e5f60718"

# (row, the first subnet's routes besides local, the subnet gives public IPs, a way out?, page)
ROUTES = [
    ("NAT gateway", [route(NatGatewayId="nat-0a1b2c3d4e5f60718")], False, True, NAT),
    ("NAT gateway gone (blackhole)", [route(state="blackhole", NatGatewayId="nat-0a1b2c3d4e5f60718")], False, False,
     ROUTE),
    ("internet gateway, no public IP", [route(GatewayId="igw-0a1b2c3d4e5f60718")], False, False, IGW),
    ("internet gateway, public IPs on launch", [route(GatewayId="igw-0a1b2c3d4e5f60718")], True, True, IGW),
    ("internet gateway detached (blackhole)", [route(state="blackhole", GatewayId="igw-0a1b2c3d4e5f60718")], True,
     False, ROUTE),
    ("route not active (filtered)", [route(state="filtered", NatGatewayId="nat-0a1b2c3d4e5f60718")], False, False,
     ROUTE),
    # Central egress beyond the VPC cannot be seen from here: given the benefit of the doubt.
    ("transit gateway", [route(TransitGatewayId="tgw-0a1b2c3d4e5f60718")], False, True, TGW_EGRESS),
    ("Cloud WAN core network", [route(CoreNetworkArn=CORE_NETWORK)], False, True, TARGETS),
    ("virtual private gateway (VPN-only subnet)", [route(GatewayId="vgw-0a1b2c3d4e5f60718")], False, True,
     SUBNET_TYPES),
    ("Outposts local gateway", [route(LocalGatewayId="lgw-0a1b2c3d4e5f60718")], False, True, LOCAL_GATEWAY),
    ("NAT instance", [route(InstanceId="i-0a1b2c3d4e5f60718", InstanceOwnerId="123456789012",
                            NetworkInterfaceId="eni-0a1b2c3d4e5f60718")], False, True, NAT_INSTANCE),
    ("appliance network interface", [route(NetworkInterfaceId="eni-0a1b2c3d4e5f60718")], False, True, TARGETS),
    ("Gateway Load Balancer endpoint (inspection)", [route(GatewayId="vpce-0a1b2c3d4e5f60718")], False, True, GWLB),
    # A peered VPC's internet or NAT gateway is not usable across the peering ("edge to edge").
    ("VPC peering connection", [route(VpcPeeringConnectionId="pcx-0a1b2c3d4e5f60718")], False, False, PEERING),
    ("egress-only internet gateway (IPv6 only)", [route("::/0", EgressOnlyInternetGatewayId="eigw-0a1b2c3d4e5f60718")],
     False, False, EIGW),
    # Only instances with a carrier IP reach out through it; the launch templates request none.
    ("carrier gateway", [route(CarrierGatewayId="cagw-0a1b2c3d4e5f60718")], False, False, CARRIER),
    # The S3 gateway endpoint's route: a prefix list, no default route.
    ("only the S3 prefix list route", [route("pl-6da54004", GatewayId="vpce-0a1b2c3d4e5f60719")], False, False,
     GATEWAY_ENDPOINT),
    ("no default route at all", [], False, False, SUBNET_TYPES),
    ("a narrower route only", [route("192.168.0.0/16", NatGatewayId="nat-0a1b2c3d4e5f60718")], False, False, TARGETS),
]


def _nat_table(table_id: str, subnet_id: str | None, main: bool = False) -> dict:
    return route_table(table_id, VPC, [local_route(CIDR), route(NatGatewayId="nat-0b1b2c3d4e5f60718")],
                       subnet_id=subnet_id, main=main)


def check(account: Account, offline: list[str] | None = None) -> list[tuple[str, str]]:
    stubbed = account.stub()
    problems = preflight.check(account.env, stubbed, image_ids=pinned(account.env),
                               offline=[] if offline is None else offline)
    stubbed.done()  # every expected call made, and no other
    return problems


def first_subnet(routes: list[dict], public_ip: bool = False, endpoints: tuple[dict, ...] = (), env=DEV) -> Account:
    table = route_table("rtb-0a1b2c3d4e5f60701", VPC, [local_route(CIDR), *routes], subnet_id=FIRST)
    return Account(env, [Subnet(FIRST, "eu-west-1a", table, public_ip),
                         Subnet(SECOND, "eu-west-1b", _nat_table("rtb-0a1b2c3d4e5f60702", SECOND))],
                   endpoints=list(endpoints))


@pytest.mark.parametrize("row, routes, public_ip, way_out, page", ROUTES, ids=[r[0] for r in ROUTES])
def test_each_route_target_decides_whether_a_node_subnet_has_a_way_out(row, routes, public_ip, way_out, page):
    offline: list[str] = []
    problems = check(first_subnet(routes, public_ip), offline)
    expected = [] if way_out else [("network.subnets[0].id", NO_WAY_OUT + ", ".join(NEEDED))]
    assert (problems, offline) == (expected, []), f"{row} ({page})"



def test_the_subnet_decides_the_public_ip_so_preflight_may_read_it_there():
    """The "public IPs on launch" row holds only while no launch template asks otherwise
    (AssociatePublicIpAddress is a NetworkInterfaces setting: EC2 API Reference,
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest)."""
    import json

    from k3s_infra.render import build_templates

    for stack_id, template in build_templates(DEV).items():
        for resource in json.loads(json.dumps(template.to_dict())).get("Resources", {}).values():
            if resource["Type"] == "AWS::EC2::LaunchTemplate":
                assert "NetworkInterfaces" not in resource["Properties"]["LaunchTemplateData"], stack_id

# A subnet with no explicit association uses the VPC's main table; an explicit one, only its own.
# (row, the first subnet's own table, the main table, a way out?)
MAIN = [
    ("no association: the main table's NAT route", None, _nat_table("rtb-0a1b2c3d4e5f60709", None, main=True), True),
    ("no association: a main table without a default route",
     None, route_table("rtb-0a1b2c3d4e5f60709", VPC, [local_route(CIDR)], main=True), False),
    ("an own table without a default route: the main table's NAT is not read",
     route_table("rtb-0a1b2c3d4e5f60701", VPC, [local_route(CIDR)], subnet_id=FIRST),
     _nat_table("rtb-0a1b2c3d4e5f60709", None, main=True), False),
]


@pytest.mark.parametrize("row, own, main, way_out", MAIN, ids=[m[0] for m in MAIN])
def test_a_subnet_without_its_own_table_is_judged_by_the_main_table(row, own, main, way_out):
    account = first_subnet([])
    account.subnets[0].table = own
    account.main_table = main  # read only when the subnet has no table of its own (strict stubs)
    problems = check(account)
    assert problems == ([] if way_out else [("network.subnets[0].id", NO_WAY_OUT + ", ".join(NEEDED))]), MAIN_TABLE


def _interfaces(*services: str, **options) -> tuple[dict, ...]:
    return tuple(endpoint(naming.endpoint_service_name(DEV.region, s), VPC, **options) for s in services)


INTERFACES = ("secretsmanager", "ssm", "cloudformation", "ec2", "elasticloadbalancing", "sts", "autoscaling")
OWN_TABLE, OTHER_TABLE = "rtb-0a1b2c3d4e5f60701", "rtb-0a1b2c3d4e5f60702"
S3 = naming.endpoint_service_name(DEV.region, "s3", True)

# Without a default route: which endpoints serve this subnet. (row, endpoints, still missing, page)
ENDPOINTS = [
    ("none", (), NEEDED, PRIVATE_DNS),
    ("every interface endpoint, S3 gateway on this subnet's table",
     (*_interfaces(*INTERFACES), endpoint(S3, VPC, gateway=True, tables=(OWN_TABLE,))), [], GATEWAY_ENDPOINT),
    ("S3 gateway only on another table", (*_interfaces(*INTERFACES), endpoint(S3, VPC, gateway=True,
                                                                             tables=(OTHER_TABLE,))),
     ["s3"], GATEWAY_ENDPOINT),
    ("S3 by interface endpoint with private DNS", _interfaces(*INTERFACES, "s3"), [], S3_PRIVATE_DNS),
    ("S3 interface endpoint's private DNS for inbound resolvers only, gateway elsewhere",
     (*_interfaces(*INTERFACES), *_interfaces("s3", inbound_only=True),
      endpoint(S3, VPC, gateway=True, tables=(OTHER_TABLE,))), ["s3"], S3_PRIVATE_DNS),
    ("ssm without private DNS", (*_interfaces(*INTERFACES[:1], *INTERFACES[2:]), *_interfaces("ssm", private_dns=False),
                                 endpoint(S3, VPC, gateway=True, tables=(OWN_TABLE,))), ["ssm"], PRIVATE_DNS),
    ("sts still pending", (*_interfaces(*INTERFACES[:-2], "autoscaling"), *_interfaces("sts", state="pending"),
                           endpoint(S3, VPC, gateway=True, tables=(OWN_TABLE,))), ["sts"], PRIVATE_DNS),
]


@pytest.mark.parametrize("row, endpoints, missing, page", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_without_a_default_route_the_endpoints_that_serve_the_subnet_decide(row, endpoints, missing, page):
    offline: list[str] = []
    problems = dict(check(first_subnet([], endpoints=endpoints), offline))
    if missing:
        assert (problems, offline) == ({"network.subnets[0].id": NO_WAY_OUT + ", ".join(missing)}, []), page
    else:  # every AWS endpoint in reach: bootable, reported as without internet (registries)
        assert (problems, offline) == ({}, ["network.subnets[0].id"]), page


PROD = load_environment("prod")
PUBLIC = ("https://docs.aws.amazon.com/elasticloadbalancing/latest/network/network-load-balancers.html"
          "#availability-zones")
# An internet-facing load balancer's subnet is public: 0.0.0.0/0 to an internet gateway
# (SUBNET_TYPES). (row, its own table's default route or None for the main table's, a problem?)
PUBLIC_ROWS = [
    ("internet gateway", route(GatewayId="igw-0a1b2c3d4e5f60718"), False),
    ("NAT gateway", route(NatGatewayId="nat-0a1b2c3d4e5f60718"), True),
    ("internet gateway detached (blackhole)", route(state="blackhole", GatewayId="igw-0a1b2c3d4e5f60718"), True),
    ("no own table: the main table's internet gateway", None, False),
]


@pytest.mark.parametrize("row, default, refused", PUBLIC_ROWS, ids=[r[0] for r in PUBLIC_ROWS])
def test_a_public_subnet_needs_its_default_route_to_an_internet_gateway(row, default, refused):
    vpc, cidr = PROD.network.vpc_id, PROD.network.vpc_cidr
    igw = route_table("rtb-0f1e2d3c4b5a69790", vpc, [local_route(cidr), route(GatewayId="igw-0a1b2c3d4e5f60718")])
    nat = route_table("rtb-0f1e2d3c4b5a69780", vpc, [local_route(cidr), route(NatGatewayId="nat-0a1b2c3d4e5f60718")])
    subnets = [Subnet(s.id, s.az, nat) for s in PROD.network.subnets]
    subnets += [Subnet(s.id, s.az, igw) for s in PROD.network.public_subnets]
    first_public = PROD.network.public_subnets[0].id
    subnets[3] = Subnet(first_public, "eu-west-1a", None if default is None else
                        route_table("rtb-0f1e2d3c4b5a69791", vpc, [local_route(cidr), default], subnet_id=first_public))
    main = route_table("rtb-0f1e2d3c4b5a69799", vpc, [local_route(cidr), route(GatewayId="igw-0a1b2c3d4e5f60718")],
                       main=True)
    problems = check(Account(PROD, subnets, main_table=main))
    expected = [("network.public_subnets[0].id", f"{first_public} has no route 0.0.0.0/0 to an internet gateway: "
                                                 "an internet-facing load balancer there is unreachable")]
    assert problems == (expected if refused else []), (row, SUBNET_TYPES, PUBLIC)
