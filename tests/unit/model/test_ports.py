"""Every node security-group rule says what K3s uses the port for, in the words of the K3s
requirements table (https://docs.k3s.io/installation/requirements, "Inbound Rules for K3s
Nodes"), so a reviewer of the security stack (or of a change set) can tell a rule's reason.
checkov's CKV_AWS_23 asks only for some description; this pins the right one per port."""

from __future__ import annotations

from k3s_infra.config import load_environment
from k3s_infra.render import build_templates

# Port -> the word the K3s requirements table uses for it.
PURPOSE = {2379: "etcd", 6443: "API", 8472: "VXLAN", 10250: "kubelet", 51820: "WireGuard"}


def _node_rules(env_name: str) -> list[dict]:
    security = build_templates(load_environment(env_name))["Security"].to_dict()
    return [r["Properties"] for lid, r in security["Resources"].items()
            if r["Type"] == "AWS::EC2::SecurityGroupIngress" and lid.startswith(("ServerSecurityGroup",
                                                                                  "AgentSecurityGroup"))]


def test_each_node_rule_names_the_k3s_purpose_of_its_port():
    rules = _node_rules("prod")
    assert {r["FromPort"] for r in rules} >= {2379, 6443, 8472, 10250}
    for rule in rules:
        assert PURPOSE[rule["FromPort"]].lower() in rule["Description"].lower(), rule
