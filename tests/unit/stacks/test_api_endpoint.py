"""The API endpoint stack (stacks/api_endpoint.py) and its two doors, followed from each node's
user data through the root's wiring to the load balancer resource.

Why two doors: security-group references match only the private IP addresses of the
referenced group's members (https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html,
"Security group referencing"), so a node that resolved an internet-facing NLB would arrive
from a public/NAT address and never match; nodes must join through an internal NLB. The
servers' certificate names both doors, the kubeconfig the public one; an internal API has
no second door. Expected values come from the environment files and the K3s port table (6443).
"""

from __future__ import annotations

import re

import yaml

from tests.support.oracle_helpers import user_data_sub as _sub_of_user_data
from tests.support.rendered import node_stacks as _node_stacks


NLB = "AWS::ElasticLoadBalancingV2::LoadBalancer"


# A fact the boot reads from SSM and puts in place of its marker (boot.sh bind_facts).
MARKER = r"@@K3S_INFRA_FACT_(\w+)@@"


def _boot_env(r, stack_id: str) -> str:
    text, _ = _sub_of_user_data(r.templates[stack_id])
    (boot_env,) = [f["content"] for f in yaml.safe_load(text.split("\n", 1)[1])["write_files"]
                   if f["path"] == "/etc/k3s-infra/boot.env"]
    return boot_env


def _resolve_to_load_balancer(r, stack_id: str, fact: str) -> dict:
    """Follow a fact's marker -> the SSM parameter boot.env FACTS names -> the ApiEndpoint stack's
    parameter resource of that name -> the NLB whose DNSName it holds."""
    (facts,) = re.findall(r"^FACTS='(.*)'$", _boot_env(r, stack_id), re.M)
    name = dict(pair.split("=", 1) for pair in facts.split())[fact]
    (value,) = [resource["Properties"]["Value"] for resource in r.templates["ApiEndpoint"]["Resources"].values()
                if resource["Type"] == "AWS::SSM::Parameter" and resource["Properties"]["Name"] == name]
    nlb_id, attribute = value["Fn::GetAtt"]
    assert attribute == "DNSName"
    return r.templates["ApiEndpoint"]["Resources"][nlb_id]


def test_every_node_joins_through_the_internal_load_balancer(r):
    """The join URL (K3s `server:`; the first server's rejoin drop-in) of every node stack."""
    for stack_id in _node_stacks(r):
        text, _ = _sub_of_user_data(r.templates[stack_id])
        document = yaml.safe_load(text.split("\n", 1)[1])
        configs = [yaml.safe_load(f["content"]) for f in document["write_files"]
                   if f["path"] in ("/etc/rancher/k3s/config.yaml", "/etc/k3s-infra/rejoin.yaml")]
        urls = {c["server"] for c in configs if "server" in c}
        assert len(urls) == 1, stack_id
        (variable,) = re.fullmatch(rf"https://{MARKER}:6443", urls.pop()).groups()
        lb = _resolve_to_load_balancer(r, stack_id, variable)["Properties"]
        assert lb["Scheme"] == "internal" and lb["Subnets"] == {"Ref": "LoadBalancerSubnetIds"}, stack_id


def test_servers_certificate_names_both_doors_and_kubeconfig_uses_the_public_one(r):
    for stack_id in ("ServerInit", "Servers"):
        text, _ = _sub_of_user_data(r.templates[stack_id])
        document = yaml.safe_load(text.split("\n", 1)[1])
        (config,) = [yaml.safe_load(f["content"]) for f in document["write_files"]
                     if f["path"] == "/etc/rancher/k3s/config.yaml"]
        sans = [re.fullmatch(MARKER, name) for name in config["tls-san"]]
        schemes = [_resolve_to_load_balancer(r, stack_id, m.group(1))["Properties"]["Scheme"] for m in sans if m]
        expected = ["internal", "internet-facing"] if r.env.api.scheme == "internet-facing" else ["internal"]
        assert schemes == expected
        assert [name for name, m in zip(config["tls-san"], sans) if not m] == list(r.env.k3s.tls_san)
    (host,) = re.findall(rf"^KUBECONFIG_HOST='{MARKER}'$", _boot_env(r, "ServerInit"), re.M)
    assert _resolve_to_load_balancer(r, "ServerInit", host)["Properties"]["Scheme"] == r.env.api.scheme


def test_internal_api_has_no_second_door(rendered):
    r = rendered["dev"]
    assert r.env.api.scheme == "internal"
    assert list(r.resources("ApiEndpoint", NLB)) == ["ApiLoadBalancer"]
    assert "PublicApiLoadBalancerSecurityGroup" not in r.templates["Security"]["Resources"]
    assert "PublicApiDnsName" not in r.root["Outputs"]
