"""Pre-flight: read-only checks that the account, network, instance types and image an
environment file names exist and fit together, before ``plan`` or ``deploy`` writes
anything (no bucket, no upload, no change set). Every problem is reported at once,
naming the file and the field; ``--skip-preflight`` skips them (emulators that cannot
answer).

AWS calls (all Describe*/Get*): STS GetCallerIdentity; EC2 DescribeVpcs, DescribeSubnets,
DescribeRouteTables, DescribeVpcEndpoints, DescribeAvailabilityZones,
DescribeInstanceTypeOfferings (LocationType availability-zone:
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypeOfferings.html),
DescribeInstanceTypes (ProcessorInfo.SupportedArchitectures), DescribeImages
(Architecture); SSM GetParameter (the AMI parameter of each architecture in use).
"""

from __future__ import annotations

import os

from botocore.exceptions import ClientError

from k3s_infra.config import ConfigError, Environment, architectures, defaults
from k3s_infra.model import addons, naming
from k3s_infra.model import outputs as o
from k3s_infra.model import placement
from k3s_infra.components.network import INTERFACE_SERVICES
from k3s_infra.deploy import changeset
from k3s_infra.deploy.images import deployed_parameters
from k3s_infra.deploy.progress import Progress, RegistryNeeded, ignore

Problem = tuple[str, str]


def gate(aws, *, source: str, update_image: bool = False, skip: bool = False,
         on_progress: Progress = ignore) -> None:
    """Refuse (ConfigError naming ``source``, the environment file; exit 2) on any problem
    ``check`` finds, checking the images a deploy will really use (``pinned_images``); warn
    (RegistryNeeded) when the nodes have no way to the internet. ``skip``: check nothing
    (emulators that cannot answer)."""
    if skip:
        return
    offline: list[str] = []
    problems = check(aws.env, aws, image_ids=pinned_images(aws, update_image=update_image), offline=offline)
    if offline and not problems:
        on_progress(RegistryNeeded(", ".join(offline), registry_needs(aws.env)))
    if problems:
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        hint = f"; against an emulator ({endpoint}) that does not model routes or offerings, " \
               "--skip-preflight skips these checks" if endpoint else "; --skip-preflight skips it"
        raise ConfigError(source, problems, hint=f"nothing was changed (pre-flight{hint})")


def pinned_images(aws, *, update_image: bool = False) -> dict[str, str]:
    """The images a deploy will really use: those the deployed root pins (deploy/images.py),
    unless ``update_image`` re-resolves them (then none). SSM parameter path -> image ID."""
    if update_image:
        return {}
    pinned = deployed_parameters(changeset.stack_state(aws.cloudformation, aws.env.stack_name))
    return {getattr(aws.env.nodes.ami_parameter, arch): pinned[o.IMAGE_IDS[arch]]
            for arch in architectures.in_use(aws.env) if o.IMAGE_IDS[arch] in pinned}


def check(env: Environment, session_or_clients, image_ids: dict[str, str] | None = None,
          offline: list[str] | None = None) -> list[Problem]:
    """Every problem found, as (field path, message). ``session_or_clients``: anything with
    ``client(service)`` (a boto3 Session, ``deploy.aws.Aws``). ``image_ids``: SSM parameter
    name -> image ID already resolved (pinned) by the caller; others are read from SSM. ``offline``:
    receives the fields whose node subnets reach only VPC endpoints (no problem: see registry_needs)."""
    offline = [] if offline is None else offline
    client = session_or_clients.client
    ec2 = client("ec2")
    problems: list[Problem] = []
    account = client("sts").get_caller_identity()["Account"]
    if account != env.account_id:
        problems.append(("account_id", f"credentials are for account {account}, not {env.account_id}"))
    if env.network.managed:
        zones = _managed_zones(ec2, env, problems)
        if env.network.create.nat_gateways == "none":  # its S3 gateway endpoint serves every private table
            offline.append("network.create.nat_gateways")
    else:
        zones = _brought_network(ec2, env, problems, offline)
    types = _instance_types(env)
    if zones:
        _offerings(ec2, types, zones, problems)
    _architecture(ec2, client("ssm"), env, types, image_ids or {}, problems)
    return problems


def registry_needs(env: Environment) -> tuple[str, ...]:
    """What nodes without a way to the internet still cannot fetch. K3s, and the images of its
    packaged components (the airgap tarball), come from the artifact bucket through the S3 gateway
    endpoint (deploy/artifacts.py); charts and other images come from their registries, which VPC
    endpoints do not reach (AWS PrivateLink serves AWS services only). Not refused: a registry
    mirror in reach may serve them (docs/network.md "Without NAT"); k3s-infra cannot see one."""
    needs = [f"the AWS cloud controller: chart from {defaults.CCM_CHART_REPO}, image from registry.k8s.io "
             "(until it runs, every node keeps the node.cloudprovider.kubernetes.io/uninitialized taint)",
             f"the pod identity webhook: image {defaults.POD_IDENTITY_WEBHOOK_IMAGE.split('@')[0]}"]
    for name in addons.enabled(env):
        spec = addons.helm_chart(env, name)["spec"]
        needs.append(f"add-on {name}: chart from {spec.get('repo') or spec['chart']}, and the images it names")
    return tuple(needs)

def _instance_types(env: Environment) -> dict[str, list[str]]:
    """Instance type -> the fields that name it."""
    found: dict[str, list[str]] = {env.servers.instance_type: ["servers.instance_type"]}
    for pool in env.agent_pools:
        for instance_type in pool.instance_types:
            found.setdefault(instance_type, []).append(f"agent_pools[{pool.name}].instance_types")
    return found


def _managed_zones(ec2, env: Environment, problems: list[Problem]) -> list[str]:
    """The zones Fn::GetAZs will give the Network stack: the region's default zones, in order."""
    zones = sorted(z["ZoneName"] for z in ec2.describe_availability_zones(
        Filters=[{"Name": "state", "Values": ["available"]}])["AvailabilityZones"]
        if z.get("ZoneType", "availability-zone") == "availability-zone"
        and z.get("OptInStatus", "opt-in-not-required") == "opt-in-not-required")
    wanted = env.network.create.availability_zones
    if len(zones) < wanted:
        problems.append(("network.create.availability_zones",
                         f"{env.region} has {len(zones)} availability zones, {wanted} asked for"))
    return zones[:wanted]


def _brought_network(ec2, env: Environment, problems: list[Problem], offline: list[str]) -> list[str]:
    network = env.network
    try:
        (vpc,) = ec2.describe_vpcs(VpcIds=[network.vpc_id])["Vpcs"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "InvalidVpcID.NotFound":
            raise
        problems.append(("network.vpc_id", f"{network.vpc_id} does not exist in {env.region}"))
        return []
    cidrs = {vpc["CidrBlock"]} | {a["CidrBlock"] for a in vpc.get("CidrBlockAssociationSet", [])}
    if network.vpc_cidr not in cidrs:
        problems.append(("network.vpc_cidr", f"{network.vpc_id} has CIDR {', '.join(sorted(cidrs))}, "
                                             f"not {network.vpc_cidr}"))
    ids = [s.id for s in (*network.subnets, *network.public_subnets)]
    found = {s["SubnetId"]: s for s in ec2.describe_subnets(
        Filters=[{"Name": "subnet-id", "Values": ids}])["Subnets"]}
    endpoints = _endpoint_services(ec2, network.vpc_id, env.region)
    zones = []
    for field, subnets in (("subnets", network.subnets), ("public_subnets", network.public_subnets)):
        for index, subnet in enumerate(subnets):
            actual = found.get(subnet.id)
            where = f"network.{field}[{index}]"
            if actual is None:
                problems.append((f"{where}.id", f"{subnet.id} does not exist in {env.region}"))
                continue
            if actual["VpcId"] != network.vpc_id:
                problems.append((f"{where}.id", f"{subnet.id} belongs to {actual['VpcId']}, not {network.vpc_id}"))
                continue
            if subnet.az and actual["AvailabilityZone"] != subnet.az:
                problems.append((f"{where}.az", f"{subnet.id} is in {actual['AvailabilityZone']}, not {subnet.az}"))
            if field == "subnets":
                zones.append(actual["AvailabilityZone"])
            table = _route_table(ec2, network.vpc_id, subnet.id)
            targets = _default_targets(table)
            if field == "public_subnets" and not any(t.startswith("igw-") for t in targets):
                problems.append((f"{where}.id", f"{subnet.id} has no route 0.0.0.0/0 to an internet gateway: "
                                                "an internet-facing load balancer there is unreachable"))
            served = {s for s, tables in endpoints.items() if tables is None or table.get("RouteTableId") in tables}
            missing = sorted((set(INTERFACE_SERVICES) | {"s3"}) - served)
            public_ip = bool(actual.get("MapPublicIpOnLaunch"))  # the launch templates leave it to the subnet
            no_route_out = field == "subnets" and not any(_way_out(t, public_ip) for t in targets)
            if no_route_out and missing:
                problems.append((f"{where}.id", f"{subnet.id} has no route out (0.0.0.0/0 to a NAT gateway) and "
                                                f"the VPC lacks endpoints nodes need to boot: {', '.join(missing)}"))
            elif no_route_out:
                offline.append(f"{where}.id")
    real_zones = {s["SubnetId"]: s["AvailabilityZone"] for s in found.values() if s["VpcId"] == network.vpc_id}
    problems += _server_spread(env, real_zones)
    problems += _load_balancer_zones(env, real_zones)
    return sorted(set(zones))


def _load_balancer_zones(env: Environment, real_zones: dict[str, str]) -> list[Problem]:
    """A load balancer takes one subnet per zone (ELB API Reference, CreateLoadBalancer:
    "You can specify only one subnet per Availability Zone"); CloudFormation would fail the
    ApiEndpoint stack midway. The internal one gets the first node subnet of each zone the
    file names (placement.one_per_zone), the public one every public subnet: their REAL zones
    must differ. Subnets not found are reported by the caller."""
    network, problems = env.network, []
    given = (("subnets", placement.one_per_zone(network.subnets, lambda s: s.az)),
             ("public_subnets", network.public_subnets))
    for field, chosen in given:
        seen: dict[str, str] = {}
        for subnet in chosen:
            zone = real_zones.get(subnet.id)
            if zone in seen:
                index = next(i for i, s in enumerate(getattr(network, field)) if s.id == subnet.id)
                fix = ("give every subnet its az, so the load balancer gets one per zone" if field == "subnets"
                       else "list one public subnet per zone")
                problems.append((f"network.{field}[{index}].az", f"{subnet.id} is in {zone} like {seen[zone]}, "
                                                                 f"and a load balancer takes one subnet per zone: "
                                                                 f"{fix}"))
            elif zone:
                seen[zone] = subnet.id
    return problems


def _server_spread(env: Environment, real_zones: dict[str, str]) -> list[Problem]:
    """The file's ``az`` decides which subnets each server group gets (model/placement.py); their
    real zones decide where the servers run: no zone may hold more of them than etcd can lose.
    Subnets not found are reported by the caller."""
    count = env.servers.count
    if count < placement.SPREAD_FROM:
        return []
    split = placement.server_subnets(env.network.subnets, lambda s: s.az, count)
    if any(s.id not in real_zones for s in (*split.first, *split.joining)):
        return []
    first = sorted({real_zones[s.id] for s in split.first})
    joining = sorted({real_zones[s.id] for s in split.joining})
    crowded = placement.crowded(placement.worst_case(first, joining, count), count)
    return [("network.subnets", f"{zone} could hold {held} of the {count} servers (ServerInit in "
                                f"{', '.join(first)}, Servers balanced over {', '.join(joining)}): its outage "
                                f"would lose etcd quorum (it survives losing {placement.tolerated(count)}); "
                                f"each subnet's az must be its real zone, {placement.zones_needed(count)} "
                                "distinct zones in all")
            for zone, held in sorted(crowded.items())]


# The members of an EC2 Route that name its target (botocore's EC2 model, shape Route; an
# InstanceOwnerId is an account, no target). Decided per target in tests/unit/deploy/test_preflight_routes.py.
ROUTE_TARGETS = ("GatewayId", "NatGatewayId", "TransitGatewayId", "VpcPeeringConnectionId", "NetworkInterfaceId",
                 "InstanceId", "EgressOnlyInternetGatewayId", "CarrierGatewayId", "LocalGatewayId", "CoreNetworkArn",
                 "OdbNetworkArn")
# 0.0.0.0/0 targets that never take a node's traffic to the internet: a peered VPC's internet or NAT
# gateway is not usable across the peering (VPC Peering Guide, "edge to edge routing"), an egress-only
# internet gateway carries IPv6 only, a carrier gateway only instances with a carrier IP, "local" stays
# in the VPC. Others (NAT, transit gateway, VPN, Cloud WAN, appliances) may: given the benefit of the doubt.
_NO_WAY_OUT = ("pcx-", "eigw-", "cagw-", "local")


def _way_out(target: str, public_ip: bool) -> bool:
    """Whether a 0.0.0.0/0 route to ``target`` can take a node to the internet: an internet gateway
    only with a public IPv4 address on the node (VPC User Guide, "Internet gateways")."""
    if target.startswith("igw-"):
        return public_ip
    return not target.startswith(_NO_WAY_OUT)


def default_route_targets(ec2, vpc_id: str, subnet_id: str) -> list[str]:
    """Targets of the 0.0.0.0/0 routes of a subnet's route table (the VPC's main table if none)."""
    return _default_targets(_route_table(ec2, vpc_id, subnet_id))


def _route_table(ec2, vpc_id: str, subnet_id: str) -> dict:
    """The subnet's route table: the one associated with it, else the VPC's main table, which every
    subnet without an explicit association uses (VPC User Guide, "Subnet route tables"); {} if none."""
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
    if not tables["RouteTables"]:
        tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                    {"Name": "association.main", "Values": ["true"]}])
    return next(iter(tables["RouteTables"]), {})


def _default_targets(table: dict) -> list[str]:
    """Targets of a table's active 0.0.0.0/0 route (a blackhole route's target is gone: EC2 API, Route.State)."""
    targets = []
    for route in table.get("Routes", []):
        if route.get("DestinationCidrBlock") == "0.0.0.0/0" and route.get("State", "active") == "active":
            targets += [route[key] for key in ROUTE_TARGETS if route.get(key)]
    return targets


def _endpoint_services(ec2, vpc_id: str, region: str) -> dict[str, frozenset[str] | None]:
    """Short names (e.g. 'ssm') of the VPC's endpoint services nodes can use -> None when every
    subnet reaches it, else the route tables that do. Nodes call each service by its default name,
    which resolves to an interface endpoint only with private DNS (and not only for inbound
    resolver endpoints); a gateway endpoint serves only the route tables associated with it
    (AWS PrivateLink Guide, "DNS attributes for your VPC" / "Gateway endpoints")."""
    found = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    names = {naming.endpoint_service_name(region, service, gateway): service
             for service in (*INTERFACE_SERVICES, "s3", "sqs") for gateway in (False, True)}
    served: dict[str, frozenset[str] | None] = {}
    for endpoint in found:
        service = names.get(endpoint["ServiceName"])
        if service is None or endpoint.get("State", "available").lower() != "available":
            continue
        if endpoint.get("VpcEndpointType") == "Gateway":
            if served.get(service, frozenset()) is not None:
                served[service] = served.get(service, frozenset()) | frozenset(endpoint.get("RouteTableIds", []))
        elif endpoint.get("PrivateDnsEnabled") and \
                not endpoint.get("DnsOptions", {}).get("PrivateDnsOnlyForInboundResolverEndpoint"):
            served[service] = None
    return served


def _offerings(ec2, types: dict[str, list[str]], zones: list[str], problems: list[Problem]) -> None:
    offered: set[tuple[str, str]] = set()
    paginator = ec2.get_paginator("describe_instance_type_offerings")
    for page in paginator.paginate(LocationType="availability-zone", Filters=[
            {"Name": "instance-type", "Values": list(types)}, {"Name": "location", "Values": zones}]):
        offered |= {(o["InstanceType"], o["Location"]) for o in page["InstanceTypeOfferings"]}
    for instance_type, fields in types.items():
        missing = [zone for zone in zones if (instance_type, zone) not in offered]
        if missing:
            what = "does not exist or is offered in none of" if len(missing) == len(zones) else "is not offered in"
            for field in dict.fromkeys(fields):
                problems.append((field, f"{instance_type} {what} the nodes' zones {', '.join(missing)}"))


def _architecture(ec2, ssm, env: Environment, types: dict[str, list[str]], image_ids: dict[str, str],
                  problems: list[Problem]) -> None:
    """Per architecture in use: its image exists, is built for it, and every instance type
    given that image runs the image's architecture (DescribeImages Architecture,
    DescribeInstanceTypes ProcessorInfo.SupportedArchitectures)."""
    images: dict[str, tuple[str, str, str]] = {}  # arch -> (image ID, where it comes from, its architecture)
    for arch in architectures.in_use(env):
        found = _image(ec2, ssm, env, arch, image_ids, problems)
        if found:
            images[arch] = found
    known = []
    paginator = ec2.get_paginator("describe_instance_types")
    try:
        for page in paginator.paginate(Filters=[{"Name": "instance-type", "Values": list(types)}]):
            known += page["InstanceTypes"]
    except ClientError:
        return  # unknown types are reported by the offerings check
    for info in known:
        arch = architectures.of_instance_type(info["InstanceType"])
        if arch not in images:
            continue
        image_id, source, built_for = images[arch]
        supported = info.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
        if built_for not in supported:
            for field in dict.fromkeys(types[info["InstanceType"]]):
                problems.append((field, f"{info['InstanceType']} runs {'/'.join(supported)}, but image {image_id} "
                                        f"({source}) is {built_for}"))


def _image(ec2, ssm, env: Environment, arch: str, image_ids: dict[str, str],
           problems: list[Problem]) -> tuple[str, str, str] | None:
    """(image ID, its source, its architecture) of one architecture's image, or None after
    reporting why not. An explicit nodes.ami_id.<arch> is the image the nodes get
    (deploy/images.py): check that one."""
    parameter = getattr(env.nodes.ami_parameter, arch)
    explicit = getattr(env.nodes.ami_id, arch)
    field, source = (f"nodes.ami_id.{arch}", f"nodes.ami_id.{arch}") if explicit else \
        (f"nodes.ami_parameter.{arch}", parameter)
    image_id = explicit or image_ids.get(parameter)
    if image_id is None:
        try:
            image_id = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ParameterNotFound":
                raise
            problems.append((field, f"SSM parameter {parameter} does not exist in {env.region}"))
            return None
    # A pinned image may be deprecated since (public AMIs are, after a while): DescribeImages
    # leaves deprecated AMIs out unless IncludeDeprecated (EC2 API reference, DescribeImages).
    try:
        images = ec2.describe_images(ImageIds=[image_id], IncludeDeprecated=True)["Images"]
    except ClientError as exc:
        if not exc.response.get("Error", {}).get("Code", "").startswith("InvalidAMIID"):
            raise
        images = []
    if not images:
        problems.append((field, f"image {image_id} (from {source}) does not exist in {env.region}"))
        return None
    built_for = images[0]["Architecture"]
    if built_for != arch:
        problems.append((field, f"image {image_id} (from {source}) is {built_for}, not {arch}"))
    return image_id, source, built_for
