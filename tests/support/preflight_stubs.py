"""Strict botocore stubs of the calls ``deploy.preflight.check`` makes, answered the way AWS
answers them: every expected request is pinned (``Stubber`` compares the parameters) and every
response is validated against botocore's EC2/STS/SSM models, so a made-up key fails the test.

Shapes follow the EC2 API Reference (DescribeVpcs, DescribeSubnets, DescribeRouteTables,
DescribeVpcEndpoints, DescribeAvailabilityZones, DescribeInstanceTypeOfferings,
DescribeInstanceTypes, DescribeImages), STS GetCallerIdentity and SSM GetParameter. Only the
order of the calls to one client matters to a Stubber, as to preflight."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import boto3
from botocore.stub import Stubber

from k3s_infra.config import Environment, architectures

SESSION = boto3.Session(region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing")
IMAGES = {"x86_64": "ami-0a1b2c3d4e5f60718", "arm64": "ami-0f1e2d3c4b5a69788"}


class StubbedAccount:
    """What preflight.check takes (anything with ``client(service)``), every client stubbed."""

    def __init__(self, region: str):
        self.clients = {name: SESSION.client(name, region_name=region) for name in ("sts", "ec2", "ssm")}
        self.stubs = {name: Stubber(client) for name, client in self.clients.items()}
        for stub in self.stubs.values():
            stub.activate()

    def client(self, name: str):
        return self.clients[name]

    def expect(self, service: str, operation: str, response: dict, params: dict | None = None) -> None:
        self.stubs[service].add_response(operation, response, params or {})

    def refuse(self, service: str, operation: str, code: str, params: dict, status: int = 400) -> None:
        self.stubs[service].add_client_error(operation, code, f"{code} (stubbed)", status, expected_params=params)

    def done(self) -> None:
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()


def route(destination: str = "0.0.0.0/0", state: str = "active", origin: str = "CreateRoute", **target) -> dict:
    """One Route as DescribeRouteTables returns it: a destination, its target member(s), State, Origin."""
    key = "DestinationPrefixListId" if destination.startswith("pl-") else \
        "DestinationIpv6CidrBlock" if ":" in destination else "DestinationCidrBlock"
    return {key: destination, **target, "Origin": origin, "State": state}


def local_route(cidr: str) -> dict:
    return route(cidr, origin="CreateRouteTable", GatewayId="local")


def route_table(table_id: str, vpc_id: str, routes: list[dict], *, subnet_id: str | None = None,
                main: bool = False, owner: str = "123456789012") -> dict:
    """A RouteTable: explicitly associated with ``subnet_id``, or the VPC's main table."""
    association = {"Main": main, "RouteTableAssociationId": f"rtbassoc-{table_id[4:]}", "RouteTableId": table_id,
                   "AssociationState": {"State": "associated"}}
    if subnet_id:
        association["SubnetId"] = subnet_id
    return {"Associations": [association], "PropagatingVgws": [], "RouteTableId": table_id, "Routes": routes,
            "Tags": [], "VpcId": vpc_id, "OwnerId": owner}


def endpoint(service_name: str, vpc_id: str, *, gateway: bool = False, tables: tuple[str, ...] = (),
             private_dns: bool = True, inbound_only: bool = False, state: str = "available") -> dict:
    """A VpcEndpoint: DescribeVpcEndpoints answers State in lower case ("available")."""
    digest = hashlib.sha256(repr((service_name, gateway, tables, private_dns, inbound_only)).encode()).hexdigest()
    found = {"VpcEndpointId": f"vpce-{digest[:17]}",
             "VpcEndpointType": "Gateway" if gateway else "Interface", "VpcId": vpc_id,
             "ServiceName": service_name, "State": state, "RouteTableIds": list(tables), "SubnetIds": [],
             "Groups": [], "PrivateDnsEnabled": False if gateway else private_dns, "RequesterManaged": False,
             "NetworkInterfaceIds": [], "DnsEntries": [], "OwnerId": "123456789012"}
    if not gateway:
        found["DnsOptions"] = {"DnsRecordIpType": "ipv4",
                               **({"PrivateDnsOnlyForInboundResolverEndpoint": True} if inbound_only else {})}
    return found


@dataclass
class Subnet:
    """A subnet as the account has it: its real zone and VPC, and its route table (None: it has
    no explicit association, so the VPC's main table applies)."""
    id: str
    zone: str
    table: dict | None = None
    public_ip: bool = False
    vpc_id: str | None = None

    def described(self, vpc_id: str, account: str) -> dict:
        vpc = self.vpc_id or vpc_id
        return {"AvailabilityZone": self.zone, "AvailabilityZoneId": f"euw1-az{ord(self.zone[-1]) - 96}",
                "AvailableIpAddressCount": 251, "CidrBlock": "10.0.0.0/24", "DefaultForAz": False,
                "MapPublicIpOnLaunch": self.public_ip, "State": "available", "SubnetId": self.id, "VpcId": vpc,
                "OwnerId": account, "AssignIpv6AddressOnCreation": False, "Ipv6CidrBlockAssociationSet": [],
                "SubnetArn": f"arn:aws:ec2:eu-west-1:{account}:subnet/{self.id}"}


@dataclass
class Account:
    """The account a brought network's check reads, call by call; defaults make everything fit."""
    env: Environment
    subnets: list[Subnet]
    main_table: dict | None = None
    endpoints: list[dict] = field(default_factory=list)
    account_id: str | None = None
    vpc_cidrs: tuple[str, ...] | None = None
    offered: dict[str, list[str]] | None = None  # instance type -> zones offered (default: every zone)
    offered_pages: list[dict[str, list[str]]] | None = None  # the same, page by page (NextToken)
    image_architectures: dict[str, str] = field(default_factory=dict)  # arch in use -> the image's
    supported: dict[str, list[str]] = field(default_factory=dict)  # instance type -> its architectures
    images_step: Callable[[StubbedAccount], None] | None = None  # instead of expect_images

    def stub(self) -> StubbedAccount:
        env, network = self.env, self.env.network
        stubbed = StubbedAccount(env.region)
        account = self.account_id or env.account_id
        stubbed.expect("sts", "get_caller_identity", {
            "UserId": "AIDAEXAMPLEUSERID0001", "Account": account, "Arn": f"arn:aws:iam::{account}:user/deployer"})
        cidrs = self.vpc_cidrs or (network.vpc_cidr,)
        stubbed.expect("ec2", "describe_vpcs", {"Vpcs": [{
            "CidrBlock": cidrs[0], "DhcpOptionsId": "dopt-0a1b2c3d", "State": "available", "VpcId": network.vpc_id,
            "OwnerId": env.account_id, "InstanceTenancy": "default", "IsDefault": False,
            "CidrBlockAssociationSet": [{"AssociationId": f"vpc-cidr-assoc-0{n}", "CidrBlock": cidr,
                                         "CidrBlockState": {"State": "associated"}} for n, cidr in enumerate(cidrs)]}]},
            {"VpcIds": [network.vpc_id]})
        ids = [s.id for s in (*network.subnets, *network.public_subnets)]
        stubbed.expect("ec2", "describe_subnets", {"Subnets": [s.described(network.vpc_id, env.account_id)
                                                               for s in self.subnets]},
                       {"Filters": [{"Name": "subnet-id", "Values": ids}]})
        stubbed.expect("ec2", "describe_vpc_endpoints", {"VpcEndpoints": self.endpoints},
                       {"Filters": [{"Name": "vpc-id", "Values": [network.vpc_id]}]})
        real = {s.id: s for s in self.subnets}
        for subnet in (*network.subnets, *network.public_subnets):
            found = real.get(subnet.id)
            if found is None or (found.vpc_id or network.vpc_id) != network.vpc_id:
                continue  # reported before its routes are read
            stubbed.expect("ec2", "describe_route_tables", {"RouteTables": [found.table] if found.table else []},
                           {"Filters": [{"Name": "association.subnet-id", "Values": [subnet.id]}]})
            if found.table is None:
                stubbed.expect("ec2", "describe_route_tables",
                               {"RouteTables": [self.main_table] if self.main_table else []},
                               {"Filters": [{"Name": "vpc-id", "Values": [network.vpc_id]},
                                            {"Name": "association.main", "Values": ["true"]}]})
        zones = sorted({real[s.id].zone for s in network.subnets
                        if s.id in real and (real[s.id].vpc_id or network.vpc_id) == network.vpc_id})
        types = instance_types(env)
        if zones:
            pages = self.offered_pages or [self.offered or {t: zones for t in types}]
            for n, offered in enumerate(pages):
                token = {"NextToken": f"page-{n + 2}"} if n + 1 < len(pages) else {}
                stubbed.expect("ec2", "describe_instance_type_offerings", {"InstanceTypeOfferings": [
                    {"InstanceType": t, "LocationType": "availability-zone", "Location": z}
                    for t, offered_zones in offered.items() for z in offered_zones], **token},
                    {"LocationType": "availability-zone", "Filters": [{"Name": "instance-type", "Values": types},
                                                                       {"Name": "location", "Values": zones}],
                     **({"NextToken": f"page-{n + 1}"} if n else {})})
        if self.images_step:
            self.images_step(stubbed)
        else:
            expect_images(stubbed, env, types, self.image_architectures, self.supported)
        return stubbed


def instance_types(env: Environment) -> list[str]:
    """The instance types the file names, in preflight's order (servers first, then each pool's)."""
    return list(dict.fromkeys([env.servers.instance_type, *(t for p in env.agent_pools for t in p.instance_types)]))


def pinned(env: Environment) -> dict[str, str]:
    """image_ids for preflight.check: each architecture's image already resolved (no SSM call)."""
    return {getattr(env.nodes.ami_parameter, arch): IMAGES[arch] for arch in architectures.in_use(env)}


def expect_images(stubbed: StubbedAccount, env: Environment, types: list[str], built_for: dict[str, str],
                  supported: dict[str, list[str]]) -> None:
    """DescribeImages per architecture in use (images pinned: see ``pinned``), then DescribeInstanceTypes."""
    for arch in architectures.in_use(env):
        stubbed.expect("ec2", "describe_images", {"Images": [{
            "Architecture": built_for.get(arch, arch), "ImageId": IMAGES[arch], "State": "available",
            "ImageType": "machine", "Public": True, "OwnerId": "137112412989", "RootDeviceType": "ebs",
            "VirtualizationType": "hvm", "Hypervisor": "xen", "Name": f"al2023-ami-2023.8-{arch}"}]},
            {"ImageIds": [IMAGES[arch]], "IncludeDeprecated": True})
    stubbed.expect("ec2", "describe_instance_types", {"InstanceTypes": [
        {"InstanceType": t, "CurrentGeneration": True, "ProcessorInfo": {
            "SupportedArchitectures": supported.get(t, [architectures.of_instance_type(t)])}} for t in types]},
        {"Filters": [{"Name": "instance-type", "Values": types}]})
