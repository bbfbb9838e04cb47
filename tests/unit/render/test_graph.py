"""``k3s-infra graph`` (k3s_infra/render/graph.py): the diagram names every nested stack and every
security-group edge with its ports, links groups to their security groups and load balancers
to their targets, shows both API doors, and the drain queue with its rules when draining.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from k3s_infra.config import available_environments
from k3s_infra.render import graph

from tests.support.oracle_helpers import ALL_ADDONS


ROOT = Path(__file__).resolve().parents[3]


def mermaid_edges(text: str) -> dict[tuple[str, str], str]:
    """'  a -->|"tcp 6443"| b' -> {("a", "b"): "tcp 6443"}."""
    edges = {}
    for line in text.splitlines():
        match = re.match(r'^\s*(\S+) -->\|"([^"]*)"\| (\S+)$', line)
        if match:
            edges[(match[1], match[3])] = match[2]
    return edges


def source_node(p: dict) -> str:
    if "SourceSecurityGroupId" in p:
        return "Security_" + p["SourceSecurityGroupId"]["Fn::GetAtt"][0]
    return "cidr_" + re.sub(r"[^A-Za-z0-9]", "_", p.get("CidrIp") or p["CidrIpv6"])


@pytest.mark.parametrize("name", available_environments())
def test_mermaid_names_every_stack_and_every_security_group_edge(rendered, name):
    r = rendered[name]
    result = subprocess.run([sys.executable, "-m", "k3s_infra", "graph", "--env", name], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("flowchart LR")
    for stack_id in r.root["Resources"]:
        assert f'subgraph {stack_id}["{stack_id} stack"]' in result.stdout
    edges = mermaid_edges(result.stdout)
    rules = [res["Properties"] for res in r.templates["Security"]["Resources"].values()
             if res["Type"] == "AWS::EC2::SecurityGroupIngress"]
    assert rules
    for p in rules:
        port = f"{p['IpProtocol']} {p['FromPort']}" + (f"-{p['ToPort']}" if p["ToPort"] != p["FromPort"] else "")
        label = edges[(source_node(p), "Security_" + p["GroupId"]["Fn::GetAtt"][0])]
        assert port in label.split(", ")


def test_diagram_links_groups_to_their_security_groups_and_targets(rendered):
    r = rendered["prod"]
    d = graph.diagram(r.env, r.templates)
    links = set(d.links)
    assert ("ApiEndpoint_ApiLoadBalancer", "ServerInit_ServerGroup", "targets :6443") in links
    assert ("Servers_ServerGroup", "Security_ServerSecurityGroup", "wears") in links
    assert ("AgentPoolSpotBatch_AgentGroup", "Security_AgentSecurityGroup", "wears") in links
    assert not any(target.startswith("AgentPool") for _, target, label in d.links if label.startswith("targets"))
    assert {label for _, label in d.external} == set(r.env.api.allowed_cidrs)
    dot = graph.dot(d)
    assert dot.startswith("digraph k3s {") and dot.count("subgraph cluster_") == len(r.root["Resources"])


def test_graph_of_every_addon_names_every_stack_and_security_group_edge(everything):
    import subprocess
    import sys


    _, _, _, templates = everything
    result = subprocess.run([sys.executable, "-m", "k3s_infra", "graph", "--config", str(ALL_ADDONS)],
                            cwd=ALL_ADDONS.parents[2], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for stack_id in templates["Root"]["Resources"]:
        assert f'subgraph {stack_id}["{stack_id} stack"]' in result.stdout
    assert "Draining" in templates["Root"]["Resources"]
    edges = mermaid_edges(result.stdout)
    for resource in templates["Security"]["Resources"].values():
        if resource["Type"] == "AWS::EC2::SecurityGroupIngress":
            p = resource["Properties"]
            assert (source_node(p), "Security_" + p["GroupId"]["Fn::GetAtt"][0]) in edges


def test_graph_shows_both_doors(rendered):
    from k3s_infra.render import graph

    r = rendered["prod"]
    d = graph.diagram(r.env, r.templates)
    labels = dict(d.stacks["ApiEndpoint"])
    assert labels["ApiEndpoint_ApiLoadBalancer"] == "NLB internal :6443"
    assert labels["ApiEndpoint_PublicApiLoadBalancer"] == "NLB internet-facing :6443"
    links = set(d.links)
    for nlb in ("ApiEndpoint_ApiLoadBalancer", "ApiEndpoint_PublicApiLoadBalancer"):
        assert (nlb, "ServerInit_ServerGroup", "targets :6443") in links
    assert ("ApiEndpoint_PublicApiLoadBalancer", "Security_PublicApiLoadBalancerSecurityGroup", "wears") in links
    edges = {(s, t): label for s, t, label in d.edges}
    for cidr in r.env.api.allowed_cidrs:
        source = "cidr_" + "".join(c if c.isalnum() else "_" for c in cidr)
        assert edges[(source, "Security_PublicApiLoadBalancerSecurityGroup")] == "tcp 6443"


def test_the_diagram_shows_the_queue_and_its_rules_when_draining(rendered):
    from k3s_infra.render import graph

    on = graph.diagram(rendered["prod"].env, rendered["prod"].templates)
    labels = dict(on.stacks["Draining"])
    assert labels["Draining_DrainQueue"] == "SQS queue (node termination handler)"
    assert labels["Draining_AsgTerminateRule"] == "EventBridge: EC2 Instance-terminate Lifecycle Action"
    rules = [n for n in labels if n != "Draining_DrainQueue"]
    assert {(rule, "Draining_DrainQueue", "delivers to") for rule in rules} <= set(on.links)
    assert 'subgraph Draining["Draining stack"]' in graph.mermaid(on)
    off = graph.diagram(rendered["dev"].env, rendered["dev"].templates)
    assert "Draining" not in off.stacks and not any("Queue" in n for n, _, _ in off.links)
