"""Security groups for servers, agents and the API load balancer.

Every node rule comes from ``k3s_infra.model.ports``; rule logical IDs are built from
their content (group, protocol, port, source), never from a list position.
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Ref, Sub
from troposphere.ec2 import SecurityGroup, SecurityGroupIngress, SecurityGroupRule

from k3s_infra.components.template import StackTemplate
from k3s_infra.config import Api
from k3s_infra.model import naming, ports

_GROUP_IDS = {"server": "ServerSecurityGroup", "agent": "AgentSecurityGroup",
              "api_lb": "ApiLoadBalancerSecurityGroup", "public_api_lb": "PublicApiLoadBalancerSecurityGroup"}
_DESCRIPTIONS = {"server": "K3s servers", "agent": "K3s agents", "api_lb": "K3s API network load balancer",
                 "public_api_lb": "K3s API internet-facing network load balancer"}


@dataclass(frozen=True)
class SecurityGroupRefs:
    server: GetAtt
    agent: GetAtt
    api_lb: GetAtt
    public_api_lb: GetAtt | None = None  # only with api.scheme internet-facing


def _rule_id(target: str, direction: str, rule_protocol: str, rule_ports: str, peer: str) -> str:
    return naming.logical_id(_GROUP_IDS[target], direction, rule_protocol, rule_ports.replace("-", "To"), "From"
                             if direction == "Ingress" else "To", peer)


# Egress, stated for every group. AWS gives a new VPC security group an allow-all egress rule
# and CloudFormation removes it only when the group's own SecurityGroupEgress lists a rule
# (an empty list, or a separate AWS::EC2::SecurityGroupEgress resource, leaves it):
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ec2-securitygroup.html
# Nodes reach the K3s installer, package and image registries and AWS APIs (Secrets Manager,
# S3, SSM, SQS, ELB, EC2) over the internet or VPC endpoints whose addresses are not known
# here: their allow-all is intended, and written out. The NLB only forwards to the servers.
NODE_EGRESS_PURPOSE = "nodes: installer, packages, images and AWS APIs (intended allow-all)"


def _egress(group: str, group_ids: dict[str, GetAtt]) -> list[SecurityGroupRule]:
    if group == "api_lb":
        # Listener and health check both use 6443 (components/load_balancer.py).
        return [SecurityGroupRule(IpProtocol="tcp", FromPort=ports.API_PORT, ToPort=ports.API_PORT,
                                  DestinationSecurityGroupId=group_ids["server"],
                                  Description="K3s API and health checks to servers")]
    return [SecurityGroupRule(IpProtocol="-1", CidrIp="0.0.0.0/0", Description=NODE_EGRESS_PURPOSE)]


def build(t: StackTemplate, vpc_id: Ref, api: Api, flannel_backend: str,
          discovery_tags: dict[str, str] | None = None) -> SecurityGroupRefs:
    """``discovery_tags``: the cloud controller's cluster tag, on the node groups only."""
    public = api.scheme == "internet-facing"
    groups = {}
    for group, logical in _GROUP_IDS.items():
        if group == "public_api_lb":
            continue  # below: its egress names the server group
        groups[group] = t.add(SecurityGroup(
            logical, GroupDescription=Sub(f"${{AWS::StackName}} {_DESCRIPTIONS[group]}"), VpcId=vpc_id),
            tags=discovery_tags if group in ports.NODES else None)
    group_ids = {name: GetAtt(sg, "GroupId") for name, sg in groups.items()}
    if public:
        group_ids["public_api_lb"] = _public_group(t, vpc_id, group_ids["server"])
    for group, sg in groups.items():
        sg.SecurityGroupEgress = _egress(group, group_ids)

    for rule in ports.node_rules(flannel_backend, public_api=public):
        t.add(SecurityGroupIngress(
            _rule_id(rule.target, "Ingress", rule.protocol, rule.ports, rule.source),
            GroupId=group_ids[rule.target], SourceSecurityGroupId=group_ids[rule.source],
            IpProtocol=rule.protocol, FromPort=rule.from_port, ToPort=rule.to_port,
            Description=f"{rule.purpose} from {rule.source}s"))

    for source in ports.API_LB_SOURCES:
        t.add(SecurityGroupIngress(
            _rule_id("api_lb", "Ingress", "tcp", str(ports.API_PORT), source),
            GroupId=group_ids["api_lb"], SourceSecurityGroupId=group_ids[source], IpProtocol="tcp",
            FromPort=ports.API_PORT, ToPort=ports.API_PORT, Description=f"K3s API from {source}s"))
    # Listed CIDRs reach the public NLB when there is one, else the internal one.
    door = "public_api_lb" if public else "api_lb"
    for cidr in api.allowed_cidrs:
        address_key = "CidrIpv6" if ":" in cidr else "CidrIp"
        t.add(SecurityGroupIngress(
            _rule_id(door, "Ingress", "tcp", str(ports.API_PORT), naming.cidr_id(cidr)),
            GroupId=group_ids[door], IpProtocol="tcp", FromPort=ports.API_PORT, ToPort=ports.API_PORT,
            Description=f"K3s API from listed CIDR {cidr}", **{address_key: cidr}))
    return SecurityGroupRefs(**group_ids)


def _public_group(t: StackTemplate, vpc_id: Ref, server_group: GetAtt) -> GetAtt:
    """The internet-facing NLB's group. A listed egress rule replaces AWS's default allow-all
    (an empty list would keep it): the NLB only forwards 6443 to the servers."""
    group = t.add(SecurityGroup(
        _GROUP_IDS["public_api_lb"], GroupDescription=Sub(f"${{AWS::StackName}} {_DESCRIPTIONS['public_api_lb']}"),
        VpcId=vpc_id, SecurityGroupEgress=[SecurityGroupRule(
            IpProtocol="tcp", FromPort=ports.API_PORT, ToPort=ports.API_PORT,
            DestinationSecurityGroupId=server_group, Description="K3s API to servers")]))
    return GetAtt(group, "GroupId")
