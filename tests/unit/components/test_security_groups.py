"""Security groups (k3s_infra/components/security_groups.py), read back from the rendered
Security stack of every shipped environment: the node rules are exactly the K3s port table
(https://docs.k3s.io/installation/requirements, 6443 for the API), no rule is open to the
world unless the file lists it, and a load balancer's only egress is 6443 to the servers.
With an internet-facing API a second door: security-group references match only the private
addresses of the referenced group's members (https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html,
"Security group referencing"), so the public NLB takes the listed CIDRs and the internal one
only the nodes' groups.
"""

from __future__ import annotations

import pytest

from k3s_infra.config import available_environments

from tests.support.rendered import public_door


def group_of(rule: dict) -> str:
    """'ServerSecurityGroup' from {'Fn::GetAtt': ['ServerSecurityGroup', 'GroupId']}."""
    return rule["Fn::GetAtt"][0]


GROUPS = {"server": "ServerSecurityGroup", "agent": "AgentSecurityGroup", "api_lb": "ApiLoadBalancerSecurityGroup"}


def ingress_rules(r) -> set[tuple]:
    rules = set()
    for resource in r.resources("Security", "AWS::EC2::SecurityGroupIngress").values():
        p = resource["Properties"]
        source = group_of(p["SourceSecurityGroupId"]) if "SourceSecurityGroupId" in p else \
            p.get("CidrIp") or p.get("CidrIpv6")
        rules.add((group_of(p["GroupId"]), p["IpProtocol"], p["FromPort"], p["ToPort"], source))
    return rules


def cidr_door(r) -> str:
    """The group api.allowed_cidrs reach: the public NLB's when there is one, else the internal one's."""
    return "PublicApiLoadBalancerSecurityGroup" if public_door(r) else "ApiLoadBalancerSecurityGroup"


ENVIRONMENTS = available_environments()

NLB = "AWS::ElasticLoadBalancingV2::LoadBalancer"


def _ingress(r) -> set[tuple]:
    rules = set()
    for res in r.resources("Security", "AWS::EC2::SecurityGroupIngress").values():
        p = res["Properties"]
        source = p["SourceSecurityGroupId"]["Fn::GetAtt"][0] if "SourceSecurityGroupId" in p else \
            p.get("CidrIp") or p.get("CidrIpv6")
        rules.add((p["GroupId"]["Fn::GetAtt"][0], p["IpProtocol"], p["FromPort"], p["ToPort"], source))
    return rules


def test_port_matrix_is_exactly_the_k3s_table(r):
    backend = r.env.k3s.flannel_backend
    overlay = 8472 if backend == "vxlan" else 51820
    node_to_node = {(GROUPS[t], GROUPS[s]) for t in ("server", "agent") for s in ("server", "agent")}
    expected = {
        ("ServerSecurityGroup", "tcp", 2379, 2380, "ServerSecurityGroup"),
        ("ServerSecurityGroup", "tcp", 6443, 6443, "ServerSecurityGroup"),
        ("ServerSecurityGroup", "tcp", 6443, 6443, "AgentSecurityGroup"),
        ("ServerSecurityGroup", "tcp", 6443, 6443, "ApiLoadBalancerSecurityGroup"),
        *{(t, "udp", overlay, overlay, s) for t, s in node_to_node},
        *{(t, "tcp", 10250, 10250, s) for t, s in node_to_node},
        ("ApiLoadBalancerSecurityGroup", "tcp", 6443, 6443, "ServerSecurityGroup"),
        ("ApiLoadBalancerSecurityGroup", "tcp", 6443, 6443, "AgentSecurityGroup"),
        *{(cidr_door(r), "tcp", 6443, 6443, cidr) for cidr in r.env.api.allowed_cidrs},
        # the public door forwards to the servers from its own group
        *({("ServerSecurityGroup", "tcp", 6443, 6443, "PublicApiLoadBalancerSecurityGroup")} if public_door(r) else ()),
    }
    assert ingress_rules(r) == expected


def test_no_world_open_rule_unless_listed(r):
    world = {"0.0.0.0/0", "::/0"}
    for rule in ingress_rules(r):
        if rule[4] in world:
            assert rule[4] in r.env.api.allowed_cidrs and rule[0] == cidr_door(r)
    sources = {rule[4] for rule in ingress_rules(r)}
    cidr_sources = {s for s in sources if "/" in s}
    assert cidr_sources == set(r.env.api.allowed_cidrs)  # CIDRs only on the NLB, only the listed ones
    assert 8472 not in {rule[2] for rule in ingress_rules(r) if "/" in rule[4]}


def test_load_balancer_egress_only_to_servers_on_6443(r):
    groups = r.resources("Security", "AWS::EC2::SecurityGroup")
    # Listed on the group itself: only that replaces AWS's default allow-all egress.
    (p,) = groups["ApiLoadBalancerSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert r.resources("Security", "AWS::EC2::SecurityGroupEgress") == {}
    assert (p["FromPort"], p["ToPort"], p["IpProtocol"]) == (6443, 6443, "tcp")
    assert group_of(p["DestinationSecurityGroupId"]) == "ServerSecurityGroup"


@pytest.mark.parametrize("name", [n for n in ENVIRONMENTS if n in ("prod", "staging")])
def test_public_door_port_matrix(rendered, name):
    r = rendered[name]
    assert r.env.api.scheme == "internet-facing"
    rules = _ingress(r)
    public = {rule for rule in rules if rule[0] == "PublicApiLoadBalancerSecurityGroup"}
    # the public NLB: 6443 only, only from the listed CIDRs
    assert public == {("PublicApiLoadBalancerSecurityGroup", "tcp", 6443, 6443, c) for c in r.env.api.allowed_cidrs}
    # the internal NLB: only the nodes' groups, no CIDR
    internal = {rule[4] for rule in rules if rule[0] == "ApiLoadBalancerSecurityGroup"}
    assert internal == {"ServerSecurityGroup", "AgentSecurityGroup"}
    # servers: 6443 from both load balancers' groups
    assert {("ServerSecurityGroup", "tcp", 6443, 6443, g) for g in
            ("ApiLoadBalancerSecurityGroup", "PublicApiLoadBalancerSecurityGroup")} <= rules
    # the public group's only egress: 6443 to the servers (a listed rule replaces the default allow-all)
    group = r.resources("Security", "AWS::EC2::SecurityGroup")["PublicApiLoadBalancerSecurityGroup"]["Properties"]
    (egress,) = group["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 6443, 6443)
    assert egress["DestinationSecurityGroupId"] == {"Fn::GetAtt": ["ServerSecurityGroup", "GroupId"]}
    # the public NLB sits in the public subnets, wears its own group, forwards to its own target group
    lbs = r.resources("ApiEndpoint", NLB)
    assert {k: v["Properties"]["Scheme"] for k, v in lbs.items()} == {
        "ApiLoadBalancer": "internal", "PublicApiLoadBalancer": "internet-facing"}
    p = lbs["PublicApiLoadBalancer"]["Properties"]
    assert p["Subnets"] == {"Ref": "PublicSubnetIds"}
    assert p["SecurityGroups"] == [{"Ref": "PublicApiLoadBalancerSecurityGroupId"}]
    wired = r.root["Resources"]["ApiEndpoint"]["Properties"]["Parameters"]["PublicSubnetIds"]
    if r.env.network.managed:
        assert wired == {"Fn::GetAtt": ["Network", "Outputs.PublicSubnetIds"]}
    else:
        assert wired == {"Fn::Join": [",", [s.id for s in r.env.network.public_subnets]]}
    assert "PublicApiDnsName" in r.root["Outputs"]
