"""The quorum guard's rule: etcd keeps accepting writes only while a majority
(floor(n/2)+1) of its n members is up (https://etcd.io/docs/v3.5/faq/#what-is-failure-tolerance),
so one deploy may not take servers.count below a majority of the servers running now."""

from __future__ import annotations

import copy

import pytest

from k3s_infra.config import ConfigError, validate
from k3s_infra.deploy import Refused
from k3s_infra.deploy import changeset, quorum
from k3s_infra.deploy.quorum import check, safe_steps


@pytest.mark.parametrize("current,target", [(3, 1), (5, 1), (7, 3), (9, 3), (9, 1)])
def test_losing_the_majority_in_one_step_is_refused(current, target):
    with pytest.raises(Refused) as caught:
        check(current, target)
    assert f"{current} -> {target}" in str(caught.value)


@pytest.mark.parametrize("current,target", [(5, 3), (3, 5), (1, 3), (3, 3), (7, 5), (9, 5), (1, 1)])
def test_keeping_the_majority_is_allowed(current, target):
    check(current, target)


def test_first_deploy_has_nothing_to_guard():
    check(None, 1)


def test_the_refusal_shows_the_safe_steps():
    with pytest.raises(Refused) as caught:
        check(7, 3)
    assert "7 -> 5 -> 3" in str(caught.value)
    assert safe_steps(9, 3) == [9, 5, 3]  # 9 keeps 5 (its majority), 5 keeps 3


@pytest.mark.parametrize("current", [3, 5, 9])
def test_one_server_is_reached_only_through_a_snapshot_restore(current):
    with pytest.raises(Refused) as caught:
        check(current, 1)
    message = str(caught.value)
    assert "k3s-infra restore" in message and "--allow-quorum-loss" in message
    # no scale-in from 3 keeps a majority of 3 (2 of 3) with 1 server
    assert safe_steps(current, 1)[-1] == 3


@pytest.mark.parametrize("value", ["ami-123", "ami-0123456789ABCDEF0", "image-0123456789abcdef0",
                                   "ami-0123456789abcdef01234"])
@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_explicit_ami_id_shape(env_document, value, arch):
    doc = copy.deepcopy(env_document("dev"))
    doc["nodes"]["ami_id"] = {arch: value}
    with pytest.raises(ConfigError) as caught:
        validate(doc, "env.yaml")
    assert [path for path, _ in caught.value.problems] == [f"nodes.ami_id.{arch}"]
    assert "env.yaml" in str(caught.value)


def test_explicit_ami_id_accepted(env_document):
    doc = copy.deepcopy(env_document("dev"))
    doc["nodes"]["ami_id"] = {"x86_64": "ami-0123456789abcdef0", "arm64": "ami-0fedcba9876543210"}
    ids = validate(doc, "env.yaml").nodes.ami_id
    assert (ids.x86_64, ids.arm64) == ("ami-0123456789abcdef0", "ami-0fedcba9876543210")


# --- a change to the servers while one is down (issue 21) --------------------------------
# A rolling update with MinInstancesInService 0 terminates the next member at once
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-updatepolicy.html):
# with {A, B down, C}, terminating A leaves 1 of 3 etcd members. Shapes: DescribeAutoScalingGroups
# (AutoScalingGroup.Instances: InstanceId, LifecycleState, HealthStatus) and DescribeTargetHealth
# (TargetHealthDescriptions: Target.Id, TargetHealth.State).

def _group(desired, *instances):
    return {"DesiredCapacity": desired, "Instances": [
        {"InstanceId": i, "LifecycleState": state, "HealthStatus": health} for i, state, health in instances]}


def _targets(**states):
    return [{"Target": {"Id": i, "Port": 6443}, "TargetHealth": {"State": s}} for i, s in states.items()]


SERVERS = [_group(1, ("i-a", "InService", "Healthy")),
           _group(2, ("i-b", "InService", "Healthy"), ("i-c", "InService", "Healthy"))]


def test_all_servers_ready_lets_a_server_change_through():
    assert quorum.servers_not_ready(SERVERS, _targets(**{"i-a": "healthy", "i-b": "healthy", "i-c": "healthy"})) == []


@pytest.mark.parametrize("target_state", ["unhealthy", "initial", "draining", "unused", "unavailable"])
def test_a_server_not_healthy_behind_the_api_stops_a_server_change(target_state):
    problems = quorum.servers_not_ready(SERVERS, _targets(**{"i-a": "healthy", "i-b": target_state, "i-c": "healthy"}))
    assert len(problems) == 1 and "i-b" in problems[0]


def test_a_server_missing_from_the_target_group_stops_a_server_change():
    assert quorum.servers_not_ready(SERVERS, _targets(**{"i-a": "healthy", "i-c": "healthy"}))


@pytest.mark.parametrize("state,health", [("Pending", "Healthy"), ("Terminating:Wait", "Healthy"),
                                          ("InService", "Unhealthy"), ("Standby", "Healthy")])
def test_a_server_not_in_service_and_healthy_in_its_group_stops_a_server_change(state, health):
    groups = [SERVERS[0], _group(2, ("i-b", state, health), ("i-c", "InService", "Healthy"))]
    assert quorum.servers_not_ready(groups, _targets(**{"i-a": "healthy", "i-b": "healthy", "i-c": "healthy"}))


def test_fewer_server_instances_than_wanted_stops_a_server_change():
    groups = [SERVERS[0], _group(2, ("i-c", "InService", "Healthy"))]
    assert quorum.servers_not_ready(groups, _targets(**{"i-a": "healthy", "i-c": "healthy"}))


def _change(logical, action):
    return changeset.Change(stack="Root", action=action, logical_id=logical,
                            resource_type="AWS::CloudFormation::Stack", replacement="False")


@pytest.mark.parametrize("changes,touched", [
    ([_change("ServerInit", "Modify")], True), ([_change("Servers", "Modify")], True),
    ([_change("Servers", "Remove")], True), ([_change("AgentPoolGeneral", "Modify")], False),
    ([_change("Security", "Modify")], False), ([], False)])
def test_only_changes_to_a_server_stack_are_held_to_it(changes, touched):
    assert quorum.touches_servers(changes) is touched


def test_where_snapshots_are_the_only_way_the_steps_that_keep_a_majority_come_first():
    """5 -> 3 keeps 3 of 5 (a majority); 3 -> 1 keeps 1 of 3 (none): from 5, first 3, then a restore."""
    with pytest.raises(Refused) as caught:
        check(5, 1)
    assert "first go step by step: 5 -> 3 (one deploy per step)" in str(caught.value)
    with pytest.raises(Refused) as caught:
        check(3, 1)
    assert "step by step" not in str(caught.value) and "then, from 3 to 1, only via a snapshot" in str(caught.value)


ROOT = {"StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev/1", "StackStatus": "UPDATE_COMPLETE"}


def _stack(**parameters):
    return {"Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]}


@pytest.mark.parametrize("found, running", [
    ((_stack(DesiredCapacity="4"), {"DesiredCapacity": 2}), 3),  # the group says 2 joining + the first server
    ((_stack(DesiredCapacity="4"), None), 5),                     # unreadable group: its stack parameter
    ((_stack(DesiredCapacity="{{resolve}}"), None), None), ((None, None), None)])
def test_the_servers_running_now_are_the_joining_group_s_plus_the_first(monkeypatch, found, running):
    monkeypatch.setattr(quorum, "group_of", lambda aws, root_id, logical: found)
    assert quorum.current_servers(object(), ROOT) == running


class _Elbv2:
    def __init__(self, targets):
        self.targets, self.asked = targets, []

    def describe_target_health(self, TargetGroupArn):
        self.asked.append(TargetGroupArn)
        return {"TargetHealthDescriptions": self.targets}


def _ready_check(monkeypatch, found: dict, changes, targets):
    """check_servers_ready with each server stack's (stack, group) from ``found``."""
    monkeypatch.setattr(quorum, "group_of", lambda aws, root_id, logical: found.get(logical, (None, None)))
    aws = type("Aws", (), {"elbv2": _Elbv2(targets)})()
    quorum.check_servers_ready(aws, ROOT, changes)
    return aws.elbv2.asked


def test_a_server_change_while_one_server_is_down_is_refused_and_other_changes_are_not_looked_at(monkeypatch):
    found = {"ServerInit": (_stack(ApiTargetGroupArn="tg-1"), SERVERS[0]), "Servers": (_stack(), SERVERS[1])}
    down = _targets(**{"i-a": "healthy", "i-b": "unhealthy", "i-c": "healthy"})
    with pytest.raises(Refused, match="i-b is not healthy behind the API"):
        _ready_check(monkeypatch, found, [_change("Servers", "Modify")], down)
    assert _ready_check(monkeypatch, found, [_change("AgentPoolGeneral", "Modify")], down) == []
    healthy = _targets(**{"i-a": "healthy", "i-b": "healthy", "i-c": "healthy"})
    assert _ready_check(monkeypatch, found, [_change("ServerInit", "Modify")], healthy) == ["tg-1"]


def test_without_server_groups_or_an_api_target_group_there_is_nothing_to_check(monkeypatch):
    change = [_change("Servers", "Modify")]
    assert _ready_check(monkeypatch, {"ServerInit": (_stack(ApiTargetGroupArn="tg-1"), None)}, change, []) == []
    assert _ready_check(monkeypatch, {"Servers": (_stack(), SERVERS[1])}, change, []) == []
