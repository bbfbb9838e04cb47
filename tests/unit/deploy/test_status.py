"""What `status` collects (deploy/status.py), in the "status" JSON shape of docs/commands.md: each stack's
last change (LastUpdatedTime, else CreationTime: DescribeStacks gives the first only after an
update, https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Stack.html),
node groups from the stacks' AutoScalingGroupName outputs, a warning for what cannot be
read; and `status --watch`. AWS replaced at the module's lookups; exit codes and the account
check through the CLI are tests/unit/cli/test_status.py's."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError

from k3s_infra.config import load_environment
from k3s_infra.deploy import status

DEV = load_environment("dev")
T0, T1 = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc), datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
ROOT = {"StackName": "k3s-dev", "StackId": "arn:root", "StackStatus": "UPDATE_COMPLETE", "CreationTime": T0,
        "LastUpdatedTime": T1}


def _aws(**extra):
    return SimpleNamespace(env=DEV, cloudformation=None, ssm=None, check_account=lambda: DEV.account_id, **extra)


@pytest.fixture
def quiet(monkeypatch):
    monkeypatch.setattr(status.changeset, "stack_state", lambda cfn, name: ROOT)
    monkeypatch.setattr(status, "_restore_request", lambda aws, found: None)


def test_each_stack_shows_its_last_change_and_a_group_less_cluster_asks_no_group(quiet, monkeypatch):
    servers = {"StackStatus": "CREATE_COMPLETE", "CreationTime": T0, "Outputs": [
        {"OutputKey": "ServerSecurityGroupId", "OutputValue": "sg-1"}]}
    monkeypatch.setattr(status, "nested_stacks", lambda cfn, root_id: [("Security", servers)])
    found = status.collect(_aws(autoscaling=None))  # describing groups would fail here
    assert [(s["stack"], s["updated"]) for s in found["stacks"]] == [("Root", T1), ("Security", T0)]
    assert found["node_groups"] == [] and found["warnings"] == []


def test_node_groups_are_the_stacks_with_a_group_output(quiet, monkeypatch):
    pool = {"StackStatus": "UPDATE_COMPLETE", "CreationTime": T0, "Outputs": [
        {"OutputKey": "ServerSecurityGroupId", "OutputValue": "sg-1"},
        {"OutputKey": "AutoScalingGroupName", "OutputValue": "k3s-dev-pool"}]}
    monkeypatch.setattr(status, "nested_stacks", lambda cfn, root_id: [("AgentPoolGeneral", pool)])
    monkeypatch.setattr(status, "describe_groups", lambda autoscaling, names: {"k3s-dev-pool": {
        "DesiredCapacity": 3, "MinSize": 1, "MaxSize": 5,
        # only InService instances serve (Pending, Terminating: AutoScaling's Instance.LifecycleState)
        "Instances": [{"LifecycleState": "InService"}, {"LifecycleState": "Pending"},
                      {"LifecycleState": "Terminating"}]}} if names == ["k3s-dev-pool"]
        else pytest.fail(f"asked for {names}"))
    found = status.collect(_aws(autoscaling=object()))
    assert found["node_groups"] == [{"stack": "AgentPoolGeneral", "name": "k3s-dev-pool", "desired": 3,
                                     "in_service": 1, "min": 1, "max": 5}]


def test_nested_stacks_that_cannot_be_listed_are_a_warning(quiet, monkeypatch):
    def refuse(cfn, root_id):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListStackResources")

    monkeypatch.setattr(status, "nested_stacks", refuse)
    found = status.collect(_aws(autoscaling=None))
    assert found["warnings"] == ["cannot list the nested stacks of k3s-dev (ClientError)"]
    assert [s["stack"] for s in found["stacks"]] == ["Root"]


def test_watch_checks_the_account_before_looking_at_the_stack(monkeypatch):
    class Refused(Exception):
        pass

    def refuse():
        raise Refused("credentials are for account 999999999999")

    monkeypatch.setattr(status.changeset, "stack_state", lambda cfn, name: pytest.fail("looked at the stack"))
    with pytest.raises(Refused):
        status.watch(SimpleNamespace(env=DEV, cloudformation=None, check_account=refuse))
