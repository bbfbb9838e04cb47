"""Pools that really scale: the cluster autoscaler add-on, its ASG tags and its IAM.

Expected values come from the environment files and from the autoscaler's own
sources: kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md
("Auto-Discovery Setup": discovery tags, node-template label/taint tags and their
value format; "Full Cluster Autoscaler Features Policy") and the chart's
Chart.yaml history (chart 9.51.0 is the newest with appVersion 1.33.0, 9.46.6
with 1.32.0) and values.yaml at 9.51.0 (hostNetwork, dnsPolicy, autoDiscovery,
awsRegion, extraArgs).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from k3s_infra.model import addons
from k3s_infra.model import limits, naming
from k3s_infra.render import render
from k3s_infra.config import ConfigError, read_document, validate
from tests.test_addons import charts_of
from tests.test_iam_policy import allow_statements, as_list

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "k8s.io/cluster-autoscaler"
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
SCALING = {"autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"}


def groups(template: dict) -> list[dict]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]


def group_tags(template: dict) -> dict[str, str]:
    (group,) = groups(template)
    return {tag["Key"]: tag["Value"] for tag in group["Tags"]}


def expected_template_tags(pool: dict) -> dict[str, str]:
    """Node-template tags of a pool as written in its environment file (README format:
    label/<key> = value, taint/<key> = value:Effect)."""
    tags = {f"{PREFIX}/node-template/label/{k}": v for k, v in pool.get("labels", {}).items()}
    for taint in pool.get("taints", []):
        key_value, effect = taint.rsplit(":", 1)
        key, _, value = key_value.partition("=")
        tags[f"{PREFIX}/node-template/taint/{key}"] = f"{value}:{effect}"
    return tags


def cluster_of(document: dict) -> str:
    # The cluster is the root stack's name: deploy.stack_name, else k3s-<name> (README: Naming).
    return document.get("deploy", {}).get("stack_name") or f"k3s-{document['name']}"


def server_chart(rendered_env) -> dict:
    return charts_of(rendered_env.templates["ServerInit"])["cluster-autoscaler"]


# --- tags -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["dev", "prod"])
def test_every_pool_group_carries_discovery_and_node_template_tags(rendered, name):
    document = read_document(ROOT / "environments" / f"{name}.yaml")
    templates = rendered[name].templates
    for pool in document["agent_pools"]:
        tags = group_tags(templates[naming.agent_pool_stack(pool["name"])])
        assert tags[f"{PREFIX}/enabled"] == "true"
        assert tags[f"{PREFIX}/{cluster_of(document)}"] == "owned"
        scaler = {k: v for k, v in tags.items() if k.startswith(f"{PREFIX}/node-template/")}
        assert scaler == expected_template_tags(pool), pool["name"]
        assert all(len(k) <= 128 and len(v) <= 256 for k, v in tags.items())  # AWS Auto Scaling Tag limits
        assert len(tags) <= 50


def test_prod_spot_pool_scales_from_zero_with_its_taint(rendered):
    # prod.yaml: spot-batch, min_size 0, taint workload=batch:NoSchedule, labels workload/capacity.
    tags = group_tags(rendered["prod"].templates["AgentPoolSpotBatch"])
    assert tags[f"{PREFIX}/node-template/taint/workload"] == "batch:NoSchedule"
    assert tags[f"{PREFIX}/node-template/label/capacity"] == "spot"


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_server_groups_are_never_discovered(rendered, name):
    for stack_id in ("ServerInit", "Servers"):
        for group in groups(rendered[name].templates[stack_id]):
            assert not [t for t in group["Tags"] if t["Key"].startswith(PREFIX)], stack_id


def test_launch_templates_carry_no_autoscaler_tags(rendered):
    for stack_id, template in rendered["prod"].templates.items():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::EC2::LaunchTemplate":
                text = yaml.safe_dump(resource)
                assert PREFIX not in text, stack_id


def test_a_taint_without_value_is_tagged_with_an_empty_value(env_document):
    document = env_document("prod")
    document["agent_pools"][1]["taints"] = ["dedicated:NoExecute"]
    env = validate(document, "prod.yaml")
    tags = naming.autoscaler_tags(env, env.agent_pools[1])
    # aws_manager.go extractTaintsFromAsg: value ':NoExecute' -> key dedicated, value '', effect NoExecute.
    assert tags[f"{PREFIX}/node-template/taint/dedicated"] == ":NoExecute"


# --- on by default where pools can grow, refusable --------------------------------

def test_on_by_default_when_a_pool_can_grow(env_document):
    document = env_document("dev")  # dev.yaml: general 1..3
    assert validate(document, "dev.yaml").autoscaling
    document["agent_pools"][0].update(min_size=2, desired=2, max_size=2)
    assert not validate(document, "dev.yaml").autoscaling


def test_enabled_false_removes_chart_tags_and_permissions(env_document):
    from k3s_infra.render import render

    document = env_document("prod")
    document["addons"] = {"cluster_autoscaler": {"enabled": False}}
    env = validate(document, "prod.yaml")
    assert "cluster_autoscaler" not in addons.enabled(env)
    templates = {s.stack_id: yaml.safe_load(s.body) for s in render(env).stacks}
    for stack_id, template in templates.items():
        for group in groups(template):
            assert not [t for t in group["Tags"] if t["Key"].startswith(PREFIX)], stack_id
    actions = {a for _, _, s in allow_statements(templates) for a in as_list(s["Action"])}
    assert not actions & SCALING


def test_explicit_enable_on_fixed_pools(env_document):
    document = env_document("dev")
    document["agent_pools"][0].update(min_size=2, desired=2, max_size=2)
    document["addons"] = {"cluster_autoscaler": {"enabled": True}}
    assert "cluster_autoscaler" in addons.enabled(validate(document, "dev.yaml"))


# --- chart version follows the Kubernetes minor ------------------------------------

@pytest.mark.parametrize("k3s_version, chart", [("v1.33.5+k3s1", "9.51.0"), ("v1.32.3+k3s1", "9.46.6")])
def test_chart_version_matches_the_kubernetes_minor(env_document, k3s_version, chart):
    document = env_document("dev")
    document["k3s"]["version"] = k3s_version
    (spec,) = [c["spec"] for c in addons.charts(validate(document, "dev.yaml"))
               if c["metadata"]["name"] == "cluster-autoscaler"]
    assert spec["version"] == chart


def test_a_minor_without_a_pinned_chart_is_refused_naming_the_field(env_document):
    document = env_document("dev")
    document["k3s"]["version"] = "v1.99.0+k3s1"
    with pytest.raises(ConfigError) as error:
        validate(document, "dev.yaml")
    assert error.value.problems[0][0] == "k3s.version"
    assert "1.99" in str(error.value) and "addons.cluster_autoscaler.version" in str(error.value)
    document["addons"] = {"cluster_autoscaler": {"version": "9.99.0"}}
    env = validate(document, "dev.yaml")
    assert addons.version(env, "cluster_autoscaler") == "9.99.0"
    document["addons"] = {"cluster_autoscaler": {"enabled": False}}
    validate(document, "dev.yaml")


def test_cli_refuses_an_unpinned_minor_with_exit_2(tmp_path):
    document = read_document(ROOT / "environments" / "dev.yaml")
    document["k3s"]["version"] = "v1.99.0+k3s1"
    env_file = tmp_path / "env.yaml"
    env_file.write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(ROOT / "build.py"), "--config", str(env_file), "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert str(env_file) in result.stderr and "k3s.version" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("change, fragment", [
    ({"taints": ["dedicated=a:NoSchedule", "dedicated=a:NoExecute"]}, "agent_pools[general].taints: dedicated"),
    ({"labels": {"a" * 60 + ".example.com/" + "b" * 40: "x"}}, "longer than the 128 characters"),
    ({"labels": {f"l{i}": "x" for i in range(45)}}, "tags (AWS allows 50)"),
])
def test_pools_whose_tags_aws_would_refuse_are_refused(env_document, change, fragment):
    # Tag limits are checked where the tags are made (model.limits, run by every render).
    document = env_document("dev")
    document["agent_pools"][0].update(change)
    with pytest.raises(ConfigError) as error:
        limits.check_environment(validate(document, "dev.yaml"))
    assert fragment in str(error.value)
    with pytest.raises(ConfigError):
        render(validate(document, "dev.yaml"))
    document["addons"] = {"cluster_autoscaler": {"enabled": False}}
    limits.check_environment(validate(document, "dev.yaml"))  # only the autoscaler's tags need this


# --- the chart on the servers ----------------------------------------------------

@pytest.mark.parametrize("name", ["dev", "prod"])
def test_chart_runs_on_the_servers_with_auto_discovery_in_the_host_network(rendered, name):
    document = read_document(ROOT / "environments" / f"{name}.yaml")
    chart = server_chart(rendered[name])
    assert chart["spec"]["repo"] == "https://kubernetes.github.io/autoscaler"
    assert chart["spec"]["chart"] == "cluster-autoscaler" and chart["spec"]["version"] == "9.51.0"
    values = yaml.safe_load(chart["spec"]["valuesContent"])
    assert values["cloudProvider"] == "aws"
    assert values["autoDiscovery"]["clusterName"] == cluster_of(document)
    assert values["awsRegion"] == document["region"]
    # hostNetwork: IMDS is one hop away, so the servers' hop limit 1 suffices.
    assert values["hostNetwork"] is True and values["dnsPolicy"] == "Default"
    assert values["nodeSelector"] == {CONTROL_PLANE: "true"}
    assert {"key": CONTROL_PLANE, "operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]
    args = values["extraArgs"]
    assert args["expander"] == "least-waste" and args["balance-similar-node-groups"] is True
    assert args["skip-nodes-with-system-pods"] is False
    assert {"scale-down-unneeded-time", "scale-down-delay-after-add"} <= set(args)
    assert charts_of(rendered[name].templates["Servers"])["cluster-autoscaler"] == chart


def test_agents_do_not_carry_the_chart(rendered):
    for stack_id, template in rendered["prod"].templates.items():
        if stack_id.startswith("AgentPool"):
            assert "cluster-autoscaler" not in charts_of(template)


# --- IAM: scaling only this cluster's discovered groups ----------------------------

@pytest.mark.parametrize("name", ["dev", "prod"])
def test_only_the_server_role_scales_and_only_groups_with_the_discovery_tag(rendered, name):
    document = read_document(ROOT / "environments" / f"{name}.yaml")
    templates = rendered[name].templates
    scaling = [(logical, s) for _, logical, s in allow_statements(templates) if SCALING & set(as_list(s["Action"]))]
    assert [logical for logical, _ in scaling] == ["ServerRole"]
    (_, statement), = scaling
    assert set(as_list(statement["Action"])) == SCALING
    assert statement["Condition"] == {"StringEquals": {f"aws:ResourceTag/{PREFIX}/{cluster_of(document)}": "owned"}}
    for resource in as_list(statement["Resource"]):
        assert resource != "*" and ":autoScalingGroup:" in resource["Fn::Sub"]
    # The tag the condition needs is on every pool's group and on no server group.
    tagged = [stack_id for stack_id, t in templates.items() for g in groups(t)
              if any(tag["Key"] == f"{PREFIX}/{cluster_of(document)}" and tag["Value"] == "owned" for tag in g["Tags"])]
    assert sorted(tagged) == sorted(s for s in templates if s.startswith("AgentPool"))


def test_server_role_has_the_autoscaler_reads(rendered):
    # README "Full Cluster Autoscaler Features Policy" minus eks:DescribeNodegroup (EKS only).
    wanted = {"autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
              "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
              "ec2:DescribeImages", "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplateVersions",
              "ec2:GetInstanceTypesFromInstanceRequirements"}
    granted = {a for _, logical, s in allow_statements(rendered["prod"].templates) if logical == "ServerRole"
               for a in as_list(s["Action"])}
    assert wanted <= granted
    assert "eks:DescribeNodegroup" not in granted


# --- deploys leave the autoscaler's sizes alone -----------------------------------------

def group_resources(template: dict) -> list[dict]:
    """The groups as resources (with their UpdatePolicy), not only their Properties."""
    return [r for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_a_deploy_does_not_reset_what_the_autoscaler_sized(rendered, name):
    """AWS: "When you update a stack with an Auto Scaling group ... CloudFormation always sets
    the group size property values ... to the values that are defined in the template" unless
    the AutoScalingScheduledAction policy says IgnoreUnmodifiedGroupSizeProperties
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-updatepolicy.html).
    Every pool the autoscaler sizes ignores unmodified sizes; server groups never do."""
    document = read_document(ROOT / "environments" / f"{name}.yaml")
    templates = rendered[name].templates
    for pool in document["agent_pools"]:
        (group,) = group_resources(templates[naming.agent_pool_stack(pool["name"])])
        assert group["UpdatePolicy"]["AutoScalingScheduledAction"] == {"IgnoreUnmodifiedGroupSizeProperties": True}
    for stack_id in ("ServerInit", "Servers"):
        (group,) = group_resources(templates[stack_id])
        assert "AutoScalingScheduledAction" not in group["UpdatePolicy"], stack_id


def test_without_the_autoscaler_a_deploy_sets_the_file_sizes(env_document):
    from k3s_infra.render import render

    document = env_document("dev")
    document["addons"] = {"cluster_autoscaler": {"enabled": False}}
    env = validate(document, "dev.yaml")
    (pool,) = [s for s in render(env).stacks if s.stack_id.startswith("AgentPool")]
    (group,) = group_resources(yaml.safe_load(pool.body))
    assert "AutoScalingScheduledAction" not in group["UpdatePolicy"]
