"""Least reach on every node of every environment (and one with every add-on on): IMDSv2 with
a hop limit of 1 on every node (issue #13.3-6, #10.7, #22) and explicit egress on every
security group.

Expected values come from the AWS and K3s sources cited next to each test, never from the
constants the code uses.
"""

from __future__ import annotations

import re

import pytest
import yaml

from k3s_infra.bootstrap import k3s_config
from k3s_infra.config import available_environments, load_environment

from tests.support.fixture_scope import shared
from tests.support.oracle_helpers import ALL_ADDONS
from tests.support.rendering import rendered_templates


NODE_STACK = re.compile(r"^(ServerInit|Servers|AgentPool.*)$")


# Security groups allowed to keep AWS's default allow-all egress, with the reason: none.
DEFAULT_EGRESS_ALLOWED: dict[str, str] = {}


@pytest.fixture(scope=shared("module"), params=[*available_environments(), "all-addons"])
def case(request):
    env = load_environment(path=ALL_ADDONS) if request.param == "all-addons" else load_environment(request.param)
    return env, rendered_templates(env)


def hop_limits(templates: dict[str, dict]) -> dict[str, int]:
    found = {}
    for stack_id, template in templates.items():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::EC2::LaunchTemplate":
                options = resource["Properties"]["LaunchTemplateData"]["MetadataOptions"]
                assert options["HttpTokens"] == "required"
                found[stack_id] = options["HttpPutResponseHopLimit"]
    return found


def test_every_launch_template_requires_imdsv2_with_hop_limit_1(case):
    """IMDSv2 only (HttpTokens required), and its token's PUT response stops after one hop, so a
    pod on the pod network cannot reach the node's role: "a container ... not on the host
    network" needs a hop limit of 2 (EC2 User Guide, "How Instance Metadata Service Version 2
    works": https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-v2-how-it-works.html).
    Issue 22: pods that call AWS get roles of their own through the cluster's OIDC issuer, so
    every node of every role keeps 1. What still uses the node's role runs on the host network:
    the boot and the AWS cloud controller (hostNetworking, chart 0.0.9 templates/daemonset.yaml)."""
    env, templates = case
    limits = hop_limits(templates)
    assert set(limits) == {s for s in templates if NODE_STACK.match(s)}
    assert any(s.startswith("AgentPool") for s in limits) and {"ServerInit", "Servers"} <= set(limits)
    assert limits == {stack_id: 1 for stack_id in limits}, env.name
    manifest = k3s_config.cloud_controller_manifest(env)
    assert yaml.safe_load(manifest["spec"]["valuesContent"])["hostNetworking"] is True


def test_no_security_group_keeps_the_default_allow_all_egress_unintentionally(case):
    """CloudFormation removes AWS's default egress rule only when the group lists its own
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ec2-securitygroup.html)."""
    _, templates = case
    groups = 0
    for stack_id, template in templates.items():
        for logical, resource in template["Resources"].items():
            assert resource["Type"] != "AWS::EC2::SecurityGroupEgress", (stack_id, logical)
            if resource["Type"] != "AWS::EC2::SecurityGroup":
                continue
            groups += 1
            egress = resource["Properties"].get("SecurityGroupEgress")
            assert egress or logical in DEFAULT_EGRESS_ALLOWED, (stack_id, logical)
            for rule in egress:
                if rule.get("CidrIp") == "0.0.0.0/0" or rule.get("CidrIpv6") == "::/0":
                    assert logical in ("ServerSecurityGroup", "AgentSecurityGroup"), logical
                    assert "intended" in rule["Description"]
    assert groups >= 3
    (lb_rule,) = templates["Security"]["Resources"]["ApiLoadBalancerSecurityGroup"]["Properties"][
        "SecurityGroupEgress"]
    # Listener and health check port: 6443 (K3s API, docs.k3s.io/installation/requirements).
    assert (lb_rule["IpProtocol"], lb_rule["FromPort"], lb_rule["ToPort"]) == ("tcp", 6443, 6443)
    assert lb_rule["DestinationSecurityGroupId"] == {"Fn::GetAtt": ["ServerSecurityGroup", "GroupId"]}
