"""CloudFormation judges node groups by their own signals (CreationPolicy, rolling updates that
wait on signals), node roles may signal only their own node stacks, and the cluster-state
marker is not a CloudFormation resource.
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-creationpolicy.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-updatepolicy.html
"""

from __future__ import annotations

import json

import pytest
from oracle_helpers import ALL_ADDONS

from k3s_infra.config import defaults
from k3s_infra.model import naming
from k3s_infra.config import load_environment
from k3s_infra.render import build_templates
from fixture_scope import shared



@pytest.fixture(scope=shared("module"), params=["dev", "prod", "all-addons"])
def templates(request, rendered) -> tuple:
    if request.param == "all-addons":
        env = load_environment(path=ALL_ADDONS)
        return env, {stack_id: json.loads(json.dumps(t.to_dict())) for stack_id, t in build_templates(env).items()}
    return rendered[request.param].env, rendered[request.param].templates


def _groups(templates: dict):
    for stack_id, template in templates.items():
        for logical, resource in template.get("Resources", {}).items():
            if resource["Type"] == "AWS::AutoScaling::AutoScalingGroup":
                yield stack_id, logical, resource


def test_every_group_waits_for_its_nodes_signals(templates):
    env, children = templates
    groups = list(_groups(children))
    assert len(groups) == 2 + len(env.agent_pools)
    for stack_id, logical, group in groups:
        signal = group["CreationPolicy"]["ResourceSignal"]
        # One SUCCESS per desired instance (the same value or parameter as DesiredCapacity).
        desired = group["Properties"]["DesiredCapacity"]
        assert signal["Count"] == (int(desired) if isinstance(desired, str) else desired), stack_id
        assert signal["Timeout"] == defaults.NODE_SIGNAL_TIMEOUT
        rolling = group["UpdatePolicy"]["AutoScalingRollingUpdate"]
        assert rolling["WaitOnResourceSignals"] is True, stack_id
        assert rolling["PauseTime"] == signal["Timeout"]
        # The group's own logical ID is the one boot.sh signals.
        assert logical == (naming.SERVER_GROUP if stack_id.startswith(("ServerInit", "Servers"))
                           else naming.AGENT_GROUP)


def test_servers_are_judged_by_the_api_health_check_after_a_boot_long_grace(templates):
    _, children = templates
    for stack_id, _, group in _groups(children):
        properties = group["Properties"]
        expected = "ELB" if stack_id in ("ServerInit", "Servers") else "EC2"
        assert properties["HealthCheckType"] == expected, stack_id
        assert properties["HealthCheckGracePeriod"] >= defaults.NODE_SIGNAL_TIMEOUT_SECONDS
        if expected == "ELB":
            assert {"Ref": "ApiTargetGroupArn"} in properties["TargetGroupARNs"]


def test_spot_pools_tolerate_partial_capacity_on_demand_pools_do_not(templates):
    env, children = templates
    spot = {naming.agent_pool_stack(p.name) for p in env.agent_pools if p.spot}
    for stack_id, _, group in _groups(children):
        creation = group["CreationPolicy"].get("AutoScalingCreationPolicy")
        if stack_id in spot:
            assert creation == {"MinSuccessfulInstancesPercent": defaults.SPOT_MIN_SUCCESSFUL_PERCENT}
        else:
            assert creation is None, stack_id


def test_no_ssm_parameter_resource_anywhere(templates):
    _, children = templates
    for stack_id, template in children.items():
        types = {r["Type"] for r in template.get("Resources", {}).values()}
        assert "AWS::SSM::Parameter" not in types, stack_id


def test_dev_groups_sized_zero_still_render_with_a_zero_count(rendered):
    # dev has one server: the Servers group is sized 0 by parameter, and its Count is that parameter.
    root = rendered["dev"].root
    values = root["Resources"]["Servers"]["Properties"]["Parameters"]
    assert values["DesiredCapacity"] == "0"
    group = rendered["dev"].templates["Servers"]["Resources"][naming.SERVER_GROUP]
    assert group["CreationPolicy"]["ResourceSignal"]["Count"] == {"Ref": "DesiredCapacity"}


def _statements(r, role: str) -> dict[str, dict]:
    (policy,) = r.resources("NodeIam", "AWS::IAM::Role")[f"{role}Role"]["Properties"]["Policies"]
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_node_roles_signal_only_their_own_node_stacks(rendered, env_name):
    r = rendered[env_name]
    expected = {"Server": ["ServerInit", "Servers"], "Agent": ["AgentPool*"]}
    for role, stacks in expected.items():
        statements = _statements(r, role)
        signalling = [s for s in statements.values() if "cloudformation:SignalResource" in json.dumps(s["Action"])]
        assert [s["Sid"] for s in signalling] == ["SignalOwnNodeStack"]
        (statement,) = signalling
        assert statement["Action"] == ["cloudformation:SignalResource"]
        # Nested stacks are named <root>-<LogicalId>-<suffix>; the root passes its own name.
        resources = [res["Fn::Sub"] for res in statement["Resource"]]
        assert [text for text, _ in resources] == [
            "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${Root}-" + s + "-*/*"
            for s in stacks]
        assert all(variables == {"Root": {"Ref": "RootStackName"}} for _, variables in resources)
    assert r.root["Resources"]["NodeIam"]["Properties"]["Parameters"]["RootStackName"] == {"Ref": "AWS::StackName"}


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_marker_and_restore_request_names_come_from_config(rendered, env_name):
    r = rendered[env_name]
    for stack_id in ("NodeIam", "ServerInit"):
        values = r.root["Resources"][stack_id]["Properties"]["Parameters"]
        assert values["ClusterStateParameterName"] == naming.cluster_state_parameter(r.env)
        assert values["RestoreRequestParameterName"] == naming.restore_request_parameter(r.env)
    s = _statements(r, "Server")
    assert set(s["RestoreRequest"]["Action"]) == {"ssm:GetParameter", "ssm:DeleteParameter"}
    assert "RestoreRequestParameterName" in json.dumps(s["RestoreRequest"]["Resource"])
    health = s["ReportOwnHealth"]
    assert health["Action"] == ["autoscaling:SetInstanceHealth"]
    # Only this cluster's server groups (an agent must not be able to fail the servers).
    assert health["Condition"] == {"StringEquals": {"autoscaling:ResourceTag/k3s-infra:cluster": r.env.stack_name,
                                                    "autoscaling:ResourceTag/k3s-infra:role": ["server-init", "server"]}}
    agent_health = _statements(r, "Agent")["ReportOwnHealth"]
    assert agent_health["Condition"]["StringEquals"]["autoscaling:ResourceTag/k3s-infra:role"] == ["agent"]


def test_the_role_tags_the_health_conditions_name_are_on_the_groups(templates):
    """The IAM conditions above only hold if each group carries its node role tag."""
    env, rendered_templates = templates
    expected = {"ServerInit": "server-init", "Servers": "server"}
    for stack_id, template in rendered_templates.items():
        for resource in template.get("Resources", {}).values():
            if resource["Type"] != "AWS::AutoScaling::AutoScalingGroup":
                continue
            tags = {t["Key"]: t["Value"] for t in resource["Properties"]["Tags"]}
            assert tags["k3s-infra:role"] == expected.get(stack_id, "agent"), stack_id
            assert tags["k3s-infra:cluster"] == env.stack_name
