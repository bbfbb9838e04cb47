"""Draining: the node termination handler's queue, rules, permissions and tags exist exactly
when draining is on (default: when a pool runs on spot); upgrades roll through drained nodes."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml

from k3s_infra import bootstrap
from k3s_infra.model import addons
from k3s_infra.model import naming
from k3s_infra.config.catalog import NTH_MANAGED_TAG
from k3s_infra.components import drain_queue
from k3s_infra.config import validate
from k3s_infra.render import render, write
from fixture_scope import shared

DRAIN_TYPES = {"AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::Events::Rule"}


def rendered_env(env) -> tuple[dict[str, dict], object, Path]:
    rendering = render(env)
    folder = write(rendering, Path(tempfile.mkdtemp(prefix="k3s-drain-")) / env.name)
    return {s.stack_id: yaml.safe_load((folder / s.file).read_text()) for s in rendering.stacks}, rendering, folder


def resource_types(templates: dict[str, dict]) -> dict[str, set[str]]:
    return {stack_id: {r["Type"] for r in t["Resources"].values()} for stack_id, t in templates.items()}


def node_group_tags(template: dict) -> dict[str, str]:
    (group,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
    return {t["Key"]: t["Value"] for t in group["Properties"]["Tags"]}


def server_policy(templates: dict[str, dict], role: str = "ServerRole") -> dict[str, dict]:
    document = templates["NodeIam"]["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]
    return {s["Sid"]: s for s in document["Statement"]}


@pytest.fixture(scope=shared("module"))
def switched(env_document_module):
    """dev with draining forced on, prod with it forced off (each renders, lints)."""
    dev = env_document_module("dev")
    dev["addons"] = {"node_termination_handler": {"enabled": True}}
    prod = env_document_module("prod")
    prod["addons"] = {"node_termination_handler": {"enabled": False}}
    return {"dev-on": rendered_env(validate(dev, "dev.yaml")), "prod-off": rendered_env(validate(prod, "prod.yaml"))}


@pytest.fixture(scope="module")
def env_document_module():
    from k3s_infra.config import ENVIRONMENTS_DIR, read_document

    return lambda name: read_document(ENVIRONMENTS_DIR / f"{name}.yaml")


def test_draining_defaults_to_on_exactly_when_a_pool_runs_on_spot(rendered):
    assert not any(p.spot for p in rendered["dev"].env.agent_pools) and not rendered["dev"].env.draining
    assert any(p.spot for p in rendered["prod"].env.agent_pools) and rendered["prod"].env.draining


def test_queue_and_rules_exist_only_in_the_draining_stack_and_only_when_on(rendered, switched):
    cases = {"dev": rendered["dev"].templates, "prod": rendered["prod"].templates,
             "dev-on": switched["dev-on"][0], "prod-off": switched["prod-off"][0]}
    for name, templates in cases.items():
        on = name in ("prod", "dev-on")
        types = resource_types(templates)
        assert ("Draining" in templates) is on, name
        assert ("Draining" in templates["Root"]["Resources"]) is on, name
        elsewhere = {s: t & DRAIN_TYPES for s, t in types.items() if s != "Draining" and t & DRAIN_TYPES}
        assert elsewhere == {}, name
        if on:
            assert types["Draining"] == DRAIN_TYPES, name


def test_draining_switched_either_way_is_cfn_lint_clean(switched, linter):
    for name, (_, rendering, folder) in switched.items():
        assert linter.lint_rendering(rendering, folder) == [], name


def test_rules_cover_lifecycle_spot_rebalance_and_target_the_queue(rendered):
    r = rendered["prod"]
    resources = r.templates["Draining"]["Resources"]
    rules = {k: v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::Events::Rule"}
    detail_types = {rule["EventPattern"]["detail-type"][0] for rule in rules.values()}
    assert {"EC2 Instance-terminate Lifecycle Action", "EC2 Spot Instance Interruption Warning",
            "EC2 Instance State-change Notification"} <= detail_types
    # Queue-mode NTH drains every event it receives: rebalance recommendations only on request.
    assert "EC2 Instance Rebalance Recommendation" not in detail_types
    for rule in rules.values():
        assert rule["State"] == "ENABLED"
        assert rule["Targets"] == [{"Id": "DrainQueue", "Arn": {"Fn::GetAtt": ["DrainQueue", "Arn"]}}]
    # Lifecycle actions only of this cluster's groups (named after the root stack).
    lifecycle = rules["AsgTerminateRule"]["EventPattern"]
    assert lifecycle["source"] == ["aws.autoscaling"]
    assert lifecycle["detail"]["AutoScalingGroupName"] == [{"prefix": f"{naming.cluster_name(r.env)}-"}]
    assert set(rules) == set(drain_queue.event_patterns("x-"))


def test_queue_is_encrypted_and_only_the_rules_may_send(rendered):
    resources = rendered["prod"].templates["Draining"]["Resources"]
    queue = resources["DrainQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    # aws-node-termination-handler README (queue-processor setup): MessageRetentionPeriod 300.
    assert queue["MessageRetentionPeriod"] == 300
    (statement,) = resources["DrainQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": ["events.amazonaws.com"]} or \
        statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == ["sqs:SendMessage"]
    assert statement["Resource"] == [{"Fn::GetAtt": ["DrainQueue", "Arn"]}]
    rule_arns = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    rules = [k for k, v in resources.items() if v["Type"] == "AWS::Events::Rule"]
    assert sorted(a["Fn::GetAtt"][0] for a in rule_arns) == sorted(rules)


def test_only_servers_may_read_the_queue(rendered, switched):
    templates = rendered["prod"].templates
    statement = server_policy(templates)["NodeTerminationHandlerQueue"]
    assert sorted(statement["Action"]) == ["sqs:DeleteMessage", "sqs:ReceiveMessage"]
    assert statement["Resource"] == [{"Ref": "DrainQueueArn"}]
    assert templates["Root"]["Resources"]["NodeIam"]["Properties"]["Parameters"]["DrainQueueArn"] == \
        {"Fn::GetAtt": ["Draining", "Outputs.DrainQueueArn"]}
    assert "sqs:" not in json.dumps(templates["NodeIam"]["Resources"]["AgentRole"])
    off = switched["prod-off"][0]
    assert "sqs:" not in json.dumps(off["NodeIam"]) and "DrainQueueArn" not in off["NodeIam"]["Parameters"]


def test_node_groups_wear_the_handler_tag_only_when_draining(rendered, switched):
    for templates, on in ((rendered["prod"].templates, True), (switched["prod-off"][0], False),
                          (rendered["dev"].templates, False), (switched["dev-on"][0], True)):
        for stack_id in (s for s in templates if s in ("ServerInit", "Servers") or s.startswith("AgentPool")):
            tags = node_group_tags(templates[stack_id])
            assert (NTH_MANAGED_TAG in tags) is on, stack_id


def test_the_handler_chart_runs_on_servers_and_gets_its_queue_at_boot(rendered):
    r = rendered["prod"]
    (chart,) = [c for c in addons.charts(r.env) if c["metadata"]["name"] == "node-termination-handler"]
    values = yaml.safe_load(chart["spec"]["valuesContent"])
    assert values["enableSqsTerminationDraining"] is True
    assert values["nodeSelector"] == {"node-role.kubernetes.io/control-plane": "true"}
    assert values["awsRegion"] == r.env.region and values["managedTag"] == NTH_MANAGED_TAG
    assert "queueURL" not in values  # a deploy-time value: a Secret written at boot
    (boot_value,) = [v for v in addons.boot_values(r.env) if v.addon == "node_termination_handler"]
    assert chart["spec"]["valuesSecrets"] == [{"name": boot_value.kubernetes_secret, "keys": ["values.yaml"]}]
    for stack_id in ("ServerInit", "Servers"):
        wired = r.templates["Root"]["Resources"][stack_id]["Properties"]["Parameters"]["DrainQueueUrl"]
        assert wired == {"Fn::GetAtt": ["Draining", "Outputs.DrainQueueUrl"]}
    for stack_id in (s for s in r.templates if s.startswith("AgentPool")):
        assert "DrainQueueUrl" not in r.templates[stack_id]["Parameters"]


# --- upgrades: a new K3s version rolls through the ASGs, drained by the handler -----------

def test_a_new_k3s_version_rolls_every_node_group_servers_first(env_document):
    document = env_document("prod")
    before = render(validate(document, "prod.yaml"))
    document["k3s"]["version"] = "v1.34.1+k3s1"
    after = render(validate(document, "prod.yaml"))
    old = {s.stack_id: yaml.safe_load(s.body) for s in before.stacks}
    new = {s.stack_id: yaml.safe_load(s.body) for s in after.stacks}
    node_stacks = [s for s in new if s in ("ServerInit", "Servers") or s.startswith("AgentPool")]
    assert len(node_stacks) == 2 + len(document["agent_pools"])  # two server groups, one per pool
    for stack_id in node_stacks:
        user_data = lambda t: json.dumps(  # noqa: E731
            [r for r in t["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"])
        assert user_data(old[stack_id]) != user_data(new[stack_id]), stack_id
        assert "K3S_VERSION='v1.34.1+k3s1'" in yaml.safe_load(
            bootstrap.resolve(
                [r for r in new[stack_id]["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"][0]
                ["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"][0],
                bootstrap.worst_case_values(after.env)))["write_files"][0]["content"], stack_id
        (group,) = [r for r in new[stack_id]["Resources"].values()
                    if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
        rolling = group["UpdatePolicy"]["AutoScalingRollingUpdate"]
        if stack_id in ("ServerInit", "Servers"):
            assert rolling["MaxBatchSize"] == 1  # etcd keeps quorum
        # Terminations during the roll go through the lifecycle hook the handler serves.
        assert group["Properties"]["LifecycleHookSpecificationList"][0]["LifecycleTransition"] == \
            "autoscaling:EC2_INSTANCE_TERMINATING"
    root = new["Root"]["Resources"]
    assert root["Servers"]["DependsOn"] == ["ServerInit"]
    for stack_id in (s for s in node_stacks if s.startswith("AgentPool")):
        assert root[stack_id]["DependsOn"] == ["Servers"]
    # Nothing but the node stacks changes: data, IAM and the queue stay as they are.
    for stack_id in ("Security", "ApiEndpoint", "ClusterData", "NodeIam", "Draining"):
        assert old[stack_id] == new[stack_id], stack_id


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
