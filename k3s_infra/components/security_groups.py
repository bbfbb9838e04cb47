"""Security groups for servers, agents and the API load balancer.

Every node rule comes from ``k3s_infra.ports``; rule logical IDs are built from
their content (group, protocol, port, source), never from a list position.
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Ref, Sub
from troposphere.ec2 import SecurityGroup, SecurityGroupEgress, SecurityGroupIngress, SecurityGroupRule

from k3s_infra import naming, ports
from k3s_infra.config import Api
from k3s_infra.template import StackTemplate

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


def build(t: StackTemplate, vpc_id: Ref, api: Api, flannel_backend: str) -> SecurityGroupRefs:
    public = api.scheme == "internet-facing"
    groups = {}
    for group, logical in _GROUP_IDS.items():
        if group == "public_api_lb":
            continue  # below: its egress names the server group
        kwargs = {}
        if group == "api_lb":
            # An explicit egress list replaces the default allow-all: the NLB only talks to servers.
            kwargs["SecurityGroupEgress"] = []
        groups[group] = t.add(SecurityGroup(
            logical, GroupDescription=Sub(f"${{AWS::StackName}} {_DESCRIPTIONS[group]}"), VpcId=vpc_id, **kwargs))
    group_ids = {name: GetAtt(sg, "GroupId") for name, sg in groups.items()}
    if public:
        group_ids["public_api_lb"] = _public_group(t, vpc_id, group_ids["server"])

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
    t.add(SecurityGroupEgress(
        _rule_id("api_lb", "Egress", "tcp", str(ports.API_PORT), "server"),
        GroupId=group_ids["api_lb"], DestinationSecurityGroupId=group_ids["server"], IpProtocol="tcp",
        FromPort=ports.API_PORT, ToPort=ports.API_PORT, Description="K3s API to servers"))
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
