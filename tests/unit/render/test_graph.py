"""`k3s-infra graph`: the diagram names every nested stack and every security-group edge."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from k3s_infra.render import graph
from k3s_infra.config import available_environments

ROOT = Path(__file__).resolve().parent.parent


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
