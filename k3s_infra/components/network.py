"""A managed network (``network.create``): a VPC with a public and a private subnet
per availability zone, internet gateway, NAT, route tables, VPC endpoints and flow logs.

Zones come from ``Fn::GetAZs``/``Fn::Select`` so rendering stays offline; subnet CIDRs
are split from the VPC CIDR here, in Python (private first, then public).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass

from awacs import logs, sts
from awacs.aws import Allow, ArnLike, Condition, PolicyDocument, Principal, Statement, StringEquals
from troposphere import GetAtt, GetAZs, Join, Ref, Select, Sub
from troposphere.ec2 import (
    EIP,
    VPC,
    FlowLog,
    InternetGateway,
    NatGateway,
    Route,
    RouteTable,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
    SubnetRouteTableAssociation,
    VPCEndpoint,
    VPCGatewayAttachment,
)
from troposphere.iam import Policy, Role
from troposphere.logs import LogGroup

from k3s_infra.components.template import StackTemplate
from k3s_infra.config.network import ManagedNetwork

# Interface endpoints nodes in private subnets without NAT need: token and add-on secrets,
# the cluster-state marker (SSM), CloudFormation signals, the AWS cloud controller
# (EC2, ELB, STS for its identity) and the ASG lifecycle calls. S3 (snapshots, the K3s
# binary and airgap images the deployer staged: deploy/artifacts.py) goes through the gateway
# endpoint, which every managed network has, routed from every private subnet's table.
INTERFACE_SERVICES = ("secretsmanager", "ssm", "cloudformation", "ec2", "elasticloadbalancing", "sts",
                      "autoscaling")
FLOW_LOG_RETENTION_DAYS = 365


@dataclass(frozen=True)
class NetworkRefs:
    vpc_id: Ref
    vpc_cidr: GetAtt
    private_subnet_ids: Join
    public_subnet_ids: Join
    # One per zone, in zone order: the n-th is in Fn::Select(n, Fn::GetAZs), distinct zones.
    private_subnets: tuple[Ref, ...]


def subnet_cidrs(cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """(private, public) CIDRs: the VPC split into equal blocks, one of each kind per zone."""
    pieces = list(ipaddress.ip_network(cidr).subnets(prefixlen_diff=math.ceil(math.log2(2 * zones))))
    return [str(n) for n in pieces[:zones]], [str(n) for n in pieces[zones:2 * zones]]


def build(t: StackTemplate, spec: ManagedNetwork, service_name: Callable[[str, bool], str],
          extra_services: tuple[str, ...] = (), subnet_tags: dict[bool, dict[str, str]] | None = None) -> NetworkRefs:
    """``subnet_tags``: public (True) and private (False) subnets' extra tags
    (naming.subnet_discovery_tags: where Service load balancers go). ``service_prefix``: the
    region's VPC endpoint service name of a service, gateway or not (naming.endpoint_service_name)."""
    tags = subnet_tags or {True: {}, False: {}}
    # DNS hostnames and support: interface endpoints' private DNS names need both.
    vpc = t.add(VPC("Vpc", CidrBlock=spec.cidr, EnableDnsSupport=True, EnableDnsHostnames=True))
    gateway = t.add(InternetGateway("InternetGateway"))
    attachment = t.add(VPCGatewayAttachment("InternetGatewayAttachment", VpcId=Ref(vpc),
                                            InternetGatewayId=Ref(gateway)))
    public_table = t.add(RouteTable("PublicRouteTable", VpcId=Ref(vpc)))
    t.add(Route("PublicDefaultRoute", RouteTableId=Ref(public_table), DestinationCidrBlock="0.0.0.0/0",
                GatewayId=Ref(gateway), DependsOn=[attachment.title]))
    private_cidrs, public_cidrs = subnet_cidrs(spec.cidr, spec.availability_zones)
    private, public, private_tables, nats = [], [], [], []
    for index in range(spec.availability_zones):
        zone, n = Select(index, GetAZs("")), index + 1
        # No public IPs on launch, even in public subnets: only the NLB and the NAT live there.
        public.append(t.add(Subnet(f"PublicSubnet{n}", VpcId=Ref(vpc), CidrBlock=public_cidrs[index],
                                   AvailabilityZone=zone, MapPublicIpOnLaunch=False), tags=tags[True]))
        private.append(t.add(Subnet(f"PrivateSubnet{n}", VpcId=Ref(vpc), CidrBlock=private_cidrs[index],
                                    AvailabilityZone=zone, MapPublicIpOnLaunch=False), tags=tags[False]))
        t.add(SubnetRouteTableAssociation(f"PublicSubnet{n}RouteTable", SubnetId=Ref(public[-1]),
                                          RouteTableId=Ref(public_table)))
        if spec.nat_gateways == "per-az" or (spec.nat_gateways == "one" and index == 0):
            address = t.add(EIP(f"NatAddress{n}", Domain="vpc", DependsOn=[attachment.title]))
            nats.append(t.add(NatGateway(f"NatGateway{n}", SubnetId=Ref(public[-1]),
                                         AllocationId=GetAtt(address, "AllocationId"))))
        table = t.add(RouteTable(f"PrivateRouteTable{n}", VpcId=Ref(vpc)))
        private_tables.append(table)
        t.add(SubnetRouteTableAssociation(f"PrivateSubnet{n}RouteTable", SubnetId=Ref(private[-1]),
                                          RouteTableId=Ref(table)))
    for n, table in enumerate(private_tables, start=1):
        if nats:  # per-az: the zone's own NAT; one: the shared one
            nat = nats[n - 1] if spec.nat_gateways == "per-az" else nats[0]
            t.add(Route(f"PrivateDefaultRoute{n}", RouteTableId=Ref(table), DestinationCidrBlock="0.0.0.0/0",
                        NatGatewayId=Ref(nat)))
    t.add(VPCEndpoint("S3Endpoint", VpcId=Ref(vpc), VpcEndpointType="Gateway",
                      ServiceName=service_name("s3", True),
                      RouteTableIds=[Ref(table) for table in private_tables]))
    if spec.nat_gateways == "none":
        _interface_endpoints(t, vpc, private, (*INTERFACE_SERVICES, *extra_services), service_name)
    _flow_logs(t, vpc)
    return NetworkRefs(vpc_id=Ref(vpc), vpc_cidr=GetAtt(vpc, "CidrBlock"),
                       private_subnet_ids=Join(",", [Ref(s) for s in private]),
                       public_subnet_ids=Join(",", [Ref(s) for s in public]),
                       private_subnets=tuple(Ref(s) for s in private))


def _interface_endpoints(t: StackTemplate, vpc: VPC, subnets: list[Subnet], services: tuple[str, ...],
                         service_name: Callable[[str, bool], str]) -> None:
    group = t.add(SecurityGroup(
        "EndpointSecurityGroup", GroupDescription=Sub("${AWS::StackName} VPC interface endpoints"),
        VpcId=Ref(vpc),
        SecurityGroupIngress=[SecurityGroupRule(IpProtocol="tcp", FromPort=443, ToPort=443,
                                                CidrIp=GetAtt(vpc, "CidrBlock"), Description="HTTPS from the VPC")],
        # A listed rule replaces AWS's default allow-all egress; endpoints only answer.
        SecurityGroupEgress=[SecurityGroupRule(IpProtocol="tcp", FromPort=443, ToPort=443,
                                               CidrIp=GetAtt(vpc, "CidrBlock"), Description="HTTPS within the VPC")]))
    for service in services:
        t.add(VPCEndpoint(
            "".join(part.capitalize() for part in service.split(".")) + "Endpoint", VpcId=Ref(vpc),
            VpcEndpointType="Interface", ServiceName=service_name(service, False),
            PrivateDnsEnabled=True, SubnetIds=[Ref(s) for s in subnets], SecurityGroupIds=[Ref(group)]))


def _flow_logs(t: StackTemplate, vpc: VPC) -> None:
    """Every flow of the VPC to CloudWatch Logs, delivered with a role scoped to the one group
    (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html)."""
    group = t.add(LogGroup("FlowLogGroup", RetentionInDays=FLOW_LOG_RETENTION_DAYS))
    t.skip_check(group, "CKV_AWS_158", "flow records carry no secrets; CloudWatch Logs encrypts them at rest "
                                       "with its own keys")
    # Confused deputy: only flow logs of this account may assume it (the same page's trust
    # policy: aws:SourceAccount and aws:SourceArn of vpc-flow-log/*).
    trust = PolicyDocument(Version="2012-10-17", Statement=[Statement(
        Effect=Allow, Principal=Principal("Service", "vpc-flow-logs.amazonaws.com"), Action=[sts.AssumeRole],
        Condition=Condition([
            StringEquals("aws:SourceAccount", Ref("AWS::AccountId")),
            ArnLike("aws:SourceArn", Sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc-flow-log/*"))]))])
    role = t.add(Role(
        "FlowLogRole", AssumeRolePolicyDocument=trust,
        Policies=[Policy(PolicyName="deliver-flow-logs", PolicyDocument=PolicyDocument(
            Version="2012-10-17", Statement=[Statement(
                Effect=Allow, Action=[logs.CreateLogStream, logs.PutLogEvents, logs.DescribeLogStreams],
                Resource=[GetAtt(group, "Arn")])]))]))
    t.add(FlowLog("VpcFlowLog", ResourceId=Ref(vpc), ResourceType="VPC", TrafficType="ALL",
                  LogDestinationType="cloud-watch-logs", LogGroupName=Ref(group),
                  DeliverLogsPermissionArn=GetAtt(role, "Arn")))
