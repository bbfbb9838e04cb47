"""Security groups for servers, agents and the API load balancer.

Every node rule comes from ``k3s_infra.ports``; rule logical IDs are built from
their content (group, protocol, port, source), never from a list position.
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Ref, Sub
from troposphere.ec2 import SecurityGroup, SecurityGroupEgress, SecurityGroupIngress

from k3s_infra import naming, ports
from k3s_infra.config import Api
from k3s_infra.template import StackTemplate

_GROUP_IDS = {"server": "ServerSecurityGroup", "agent": "AgentSecurityGroup",
              "api_lb": "ApiLoadBalancerSecurityGroup"}
_DESCRIPTIONS = {"server": "K3s servers", "agent": "K3s agents", "api_lb": "K3s API network load balancer"}


@dataclass(frozen=True)
class SecurityGroupRefs:
    server: GetAtt
    agent: GetAtt
    api_lb: GetAtt


def _rule_id(target: str, direction: str, rule_protocol: str, rule_ports: str, peer: str) -> str:
    return naming.logical_id(_GROUP_IDS[target], direction, rule_protocol, rule_ports.replace("-", "To"), "From"
                             if direction == "Ingress" else "To", peer)


def build(t: StackTemplate, vpc_id: Ref, api: Api, flannel_backend: str) -> SecurityGroupRefs:
    groups = {}
    for group, logical in _GROUP_IDS.items():
        kwargs = {}
        if group == "api_lb":
            # An explicit egress list replaces the default allow-all: the NLB only talks to servers.
            kwargs["SecurityGroupEgress"] = []
        groups[group] = t.add(SecurityGroup(
            logical, GroupDescription=Sub(f"${{AWS::StackName}} {_DESCRIPTIONS[group]}"), VpcId=vpc_id, **kwargs))
    group_ids = {name: GetAtt(sg, "GroupId") for name, sg in groups.items()}

    for rule in ports.node_rules(flannel_backend):
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
    for cidr in api.allowed_cidrs:
        address_key = "CidrIpv6" if ":" in cidr else "CidrIp"
        t.add(SecurityGroupIngress(
            _rule_id("api_lb", "Ingress", "tcp", str(ports.API_PORT), naming.cidr_id(cidr)),
            GroupId=group_ids["api_lb"], IpProtocol="tcp", FromPort=ports.API_PORT, ToPort=ports.API_PORT,
            Description=f"K3s API from listed CIDR {cidr}", **{address_key: cidr}))
    t.add(SecurityGroupEgress(
        _rule_id("api_lb", "Egress", "tcp", str(ports.API_PORT), "server"),
        GroupId=group_ids["api_lb"], DestinationSecurityGroupId=group_ids["server"], IpProtocol="tcp",
        FromPort=ports.API_PORT, ToPort=ports.API_PORT, Description="K3s API to servers"))
    return SecurityGroupRefs(**group_ids)
