"""The network the emulator starts with, made through the EC2 API as a person would make it on
AWS: a VPC laid out as the console's "VPC and more" wizard does
(https://docs.aws.amazon.com/vpc/latest/userguide/create-vpc.html#create-vpc-and-other-resources):
per zone a public subnet whose route table sends 0.0.0.0/0 to the internet gateway and a
private subnet whose route table sends it to a NAT gateway (one, in the first public subnet),
and an S3 gateway endpoint on the private route table. ``k3s-infra init --from-account`` then
finds it as it would find such a VPC in an account (its private subnets for the nodes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

CIDR = "10.0.0.0/16"
NAME = "k3s-infra-emulator"
ZONES = 3


@dataclass(frozen=True)
class Network:
    region: str
    vpc_id: str
    vpc_cidr: str
    public_subnets: list[tuple[str, str]]   # (subnet ID, zone)
    private_subnets: list[tuple[str, str]]
    internet_gateway: str
    nat_gateway: str
    s3_endpoint: str

    def as_dict(self) -> dict:
        return asdict(self)


def _tags(kind: str, name: str) -> list[dict]:
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]


def network(ec2, region: str) -> Network:
    """Make the VPC in the first ``ZONES`` available zones of ``region`` (``ec2``: a client there)."""
    zones = sorted(z["ZoneName"] for z in ec2.describe_availability_zones(
        Filters=[{"Name": "state", "Values": ["available"]}])["AvailabilityZones"])[:ZONES]
    if len(zones) < 2:
        raise ValueError(f"{region} has {len(zones)} availability zone(s); a cluster needs two")
    vpc = ec2.create_vpc(CidrBlock=CIDR, TagSpecifications=_tags("vpc", NAME))["Vpc"]["VpcId"]
    # Interface endpoints' private DNS names need both (the wizard turns them on).
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    gateway = ec2.create_internet_gateway(TagSpecifications=_tags("internet-gateway", NAME))[
        "InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)
    public_table = _table(ec2, vpc, f"{NAME}-public")
    ec2.create_route(RouteTableId=public_table, DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway)
    public = []
    for index, zone in enumerate(zones):  # 10.0.0.0/20, 10.0.16.0/20, 10.0.32.0/20
        subnet = _subnet(ec2, vpc, f"10.0.{16 * index}.0/20", zone, f"{NAME}-public-{zone}", public_table)
        ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
        public.append((subnet, zone))
    address = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public[0][0], AllocationId=address,
                                 TagSpecifications=_tags("natgateway", NAME))["NatGateway"]["NatGatewayId"]
    private_table = _table(ec2, vpc, f"{NAME}-private")
    ec2.create_route(RouteTableId=private_table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    private = [(_subnet(ec2, vpc, f"10.0.{128 + 16 * index}.0/20", zone, f"{NAME}-private-{zone}", private_table),
                zone) for index, zone in enumerate(zones)]  # 10.0.128.0/20, ...
    endpoint = ec2.create_vpc_endpoint(VpcId=vpc, VpcEndpointType="Gateway", ServiceName=f"com.amazonaws.{region}.s3",
                                       RouteTableIds=[private_table],
                                       TagSpecifications=_tags("vpc-endpoint", f"{NAME}-s3"))["VpcEndpoint"]
    return Network(region, vpc, CIDR, public, private, gateway, nat, endpoint["VpcEndpointId"])


def _table(ec2, vpc: str, name: str) -> str:
    return ec2.create_route_table(VpcId=vpc, TagSpecifications=_tags("route-table", name))["RouteTable"]["RouteTableId"]


def _subnet(ec2, vpc: str, cidr: str, zone: str, name: str, table: str) -> str:
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone,
                               TagSpecifications=_tags("subnet", name))["Subnet"]["SubnetId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    return subnet
