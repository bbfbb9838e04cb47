"""Every command against the root stack in every CloudFormation status, as the tables of
stack_status_table.py say (written from the User Guide's meaning of each status): the real
CLI (parser, command module, exit code) and library over botocore Stubbers that answer as
CloudFormation does and check each request (tests/support/stack_stubs.py). What is not about
the status (templates, uploads, images, quorum, protection, leftovers, nodes) is replaced by
fakes that record what they were asked to do, so each row asserts the exit code, the calls
that change AWS, in order, and the message that says why."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from botocore.loaders import Loader
from botocore.stub import ANY

from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli.destroy import plan_lines
from k3s_infra.config import load_environment
from k3s_infra.deploy import snapshots, stack_states, teardown
from k3s_infra.deploy import status as deploy_status
from k3s_infra.model import naming
from tests.support.stack_stubs import (CAPABILITIES, CHANGE_SET, NAME, NESTED_CHANGE_SET, ROOT, SERVERS, T0, Rig,
                                       change_set, nested_change_set)
from tests.unit.deploy.stack_status_table import MEANING, RUNNING, TABLES

ENV = load_environment("dev")
BOTOCORE_STATUSES = tuple(Loader().load_service_model("cloudformation", "service-2")["shapes"]["StackStatus"]["enum"])
REFUSALS = {"refuse: busy": "is busy", "refuse: delete only": "only a delete can follow",
            "refuse: stuck rollback": "continue-update-rollback", "refuse: nothing deployed": "holds no resources",
            "refuse: repair first": "repair it first", "refuse: not deployed": "is not deployed"}
INIT_GROUP, SERVERS_GROUP, OLD_SERVER = "k3s-dev-ServerInit-ASG", "k3s-dev-Servers-ASG", "i-0123456789abcdef0"


def _wait(rig: Rig, statuses: list[str], *, discovering: bool = True) -> None:
    """Watcher.wait: each poll lists the nested stacks (while discovering), reads the events
    and the root's status (by StackId); once settled, one more poll."""
    for status in statuses:
        if discovering:
            rig.resources()
        rig.events()
        rig.by_id(status)
    if discovering:
        rig.resources()
    rig.events()


def _change_set(rig: Rig, kind: str, *, failed: str | None = None) -> None:
    rig.cfn.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": ROOT}, {
        "StackName": NAME, "ChangeSetName": ANY, "ChangeSetType": kind, "Capabilities": CAPABILITIES,
        "IncludeNestedStacks": True, "Parameters": [], "Description": "k3s-infra dev", "TemplateBody": "{}",
        "Tags": [{"Key": k, "Value": v} for k, v in naming.cluster_tags(ENV).items()]})
    rig.cfn.add_response("describe_change_set", change_set(kind, failed=failed), {"ChangeSetName": CHANGE_SET})
    if not failed:
        rig.cfn.add_response("describe_change_set", nested_change_set(), {"ChangeSetName": NESTED_CHANGE_SET})


def _deploy(rig: Rig, found: str, does: str, finals: list[str]):
    rig.root(found)
    if does.startswith("refuse"):
        return rig.run("deploy", "--env", "dev", "--yes"), []
    kind = "CREATE" if does == "create" else "UPDATE"
    _change_set(rig, kind)
    rig.resources()  # Watcher.prime
    rig.events()
    rig.by_id("REVIEW_IN_PROGRESS" if kind == "CREATE" else found)  # right before the execute: still at rest
    rig.cfn.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET})
    _wait(rig, finals)
    done = stack_states.succeeded(finals[-1])
    if done:
        rig.by_id(finals[-1], outputs=True)  # the outputs shown
    # Servers' readiness is checked against an existing stack (not by name a deleted or absent
    # one); the roll order is recorded after a create only (deploy/roll_order.py).
    ready = [] if found in (None, "DELETE_COMPLETE") else ["servers ready checked"]
    after = ["protection set", *(["roll order recorded"] if kind == "CREATE" else []), "nodes awaited"] if done else []
    return rig.run("deploy", "--env", "dev", "--yes"), ["upload", f"CreateChangeSet {kind}", *ready, "ExecuteChangeSet",
                                                        *after]


def deploy(rig, status, does):
    return _deploy(rig, status, does, ["CREATE_COMPLETE" if does == "create" else "UPDATE_COMPLETE"])


def deploy_left(rig, status, does):
    return _deploy(rig, "UPDATE_COMPLETE", "update", [status, "UPDATE_COMPLETE"] if does == "waits" else [status])


def plan(rig, status, does):
    rig.root(status)
    if does.startswith("refuse"):
        return rig.run("plan", "--env", "dev", "--detailed-exitcode"), []
    kind = "UPDATE" if does == "update" else "CREATE"
    _change_set(rig, kind)
    rig.cfn.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
    effects = ["upload", f"CreateChangeSet {kind}", "DeleteChangeSet"]
    if does == "create, delete the stack made":
        rig.by_id("REVIEW_IN_PROGRESS")
        rig.cfn.add_response("list_change_sets", {"Summaries": []}, {"StackName": ROOT})  # none waits on it
        rig.cfn.add_response("delete_stack", {}, {"StackName": ROOT})
        effects.append("DeleteStack")
    return rig.run("plan", "--env", "dev", "--detailed-exitcode"), effects


def _destroy(rig: Rig, found: str, does: str, finals: list[str]):
    rig.root(found)
    if does == "absent":
        return rig.run("destroy", "--env", "dev", "--yes"), ["templates removed"]
    if does.startswith("refuse"):
        return rig.run("destroy", "--env", "dev", "--yes"), []
    rig.resources()  # the nested stacks, counted for the question
    rig.resources()  # Watcher.prime
    rig.events()
    rig.cfn.add_response("delete_stack", {}, {"StackName": ROOT})
    _wait(rig, finals, discovering=False)
    after = ["node parameters deleted", "templates removed"] if finals[-1] == "DELETE_COMPLETE" else []
    return rig.run("destroy", "--env", "dev", "--yes"), ["DeleteStack", *after]


def destroy(rig, status, does):
    return _destroy(rig, status, does, ["DELETE_COMPLETE"])


def destroy_left(rig, status, does):
    return _destroy(rig, "CREATE_COMPLETE", "delete", [status, "DELETE_COMPLETE"] if does == "waits" else [status])


def status(rig, found, does, monkeypatch):
    class Watcher:  # --watch's following of events is tested in tests/unit/cli/test_status.py
        def __init__(self, cfn, stack_id, label, since=None, on_progress=None):
            rig.effects.append("followed")

        def wait(self, poll):
            return found

    monkeypatch.setattr(deploy_status, "Watcher", Watcher)
    rig.root(found)  # --watch: is anything running?
    rig.root(found)  # then what status shows
    if found != "DELETE_COMPLETE":
        rig.resources()
    return rig.run("status", "--env", "dev", "--watch"), ["followed"] if found in RUNNING else []


def restore(rig, found, does, monkeypatch):
    rig.root(found)
    if does.startswith("refuse"):
        return rig.run("restore", "--env", "dev", "--yes"), []
    taken = snapshots.Snapshot("etcd-snapshot-ip-10-0-0-5-1767312000", "etcd/dev/etcd-snapshot-ip-10-0-0-5-1767312000",
                               2048, datetime(2026, 1, 2, tzinfo=timezone.utc))
    monkeypatch.setattr(snapshots, "list_snapshots", lambda aws, root: [taken])  # S3: tests/e2e
    sizes = [{"ParameterKey": k, "ParameterValue": "2"} for k in ("MinSize", "MaxSize", "DesiredCapacity")]
    found_groups = {naming.STACK_SERVER_INIT: ({}, {"AutoScalingGroupName": INIT_GROUP}),
                    naming.STACK_SERVERS: ({"Parameters": sizes}, {"AutoScalingGroupName": SERVERS_GROUP})}
    monkeypatch.setattr(snapshots, "group_of", lambda aws, root_id, logical: found_groups[logical])
    asg, ssm, parameter = rig.stubs["autoscaling"], rig.stubs["ssm"], naming.restore_request_parameter(ENV)
    asg.add_response("update_auto_scaling_group", {}, {"AutoScalingGroupName": SERVERS_GROUP, "MinSize": 0,
                                                        "DesiredCapacity": 0})
    for name, instances in ((SERVERS_GROUP, []), (INIT_GROUP, [OLD_SERVER])):
        asg.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [_group(name, instances)]},
                         {"AutoScalingGroupNames": [name]})
    ssm.add_response("put_parameter", {"Version": 1, "Tier": "Standard"}, {
        "Name": parameter, "Value": ANY, "Type": "String", "Overwrite": True, "Description": ANY})
    asg.add_response("terminate_instance_in_auto_scaling_group", {"Activity": {
        "ActivityId": "a1", "AutoScalingGroupName": INIT_GROUP, "Cause": "terminated", "StartTime": datetime(
            2026, 1, 2, tzinfo=timezone.utc), "StatusCode": "InProgress"}},
        {"InstanceId": OLD_SERVER, "ShouldDecrementDesiredCapacity": False})
    ssm.add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": parameter})  # boot took it
    asg.add_response("update_auto_scaling_group", {}, {"AutoScalingGroupName": SERVERS_GROUP, "MinSize": 2,
                                                        "MaxSize": 2, "DesiredCapacity": 2})
    return rig.run("restore", "--env", "dev", "--yes"), [
        "UpdateAutoScalingGroup", "PutParameter", "TerminateInstanceInAutoScalingGroup", "UpdateAutoScalingGroup"]


def _group(name: str, instances: list[str]) -> dict:
    return {"AutoScalingGroupName": name, "MinSize": 1, "MaxSize": 1, "DesiredCapacity": len(instances),
            "DefaultCooldown": 300, "AvailabilityZones": ["eu-west-1a"], "HealthCheckType": "EC2",
            "CreatedTime": datetime(2026, 1, 1, tzinfo=timezone.utc),
            "Instances": [{"InstanceId": i, "AvailabilityZone": "eu-west-1a", "LifecycleState": "InService",
                           "HealthStatus": "Healthy", "ProtectedFromScaleIn": False} for i in instances]}


def cleanup(rig, trigger, at_cleanup, does, monkeypatch):
    """deploy of a new stack: its change set made the stack; then Ctrl-C at the prompt, or
    the change set failed; the cleanup finds the stack ``at_cleanup``."""
    rig.root(None)
    if trigger == "ctrl-c":
        _change_set(rig, "CREATE")

        def interrupted(question, assume_yes):
            raise KeyboardInterrupt
        monkeypatch.setattr(cli_aws, "ask", interrupted)
    else:
        _change_set(rig, "CREATE", failed="Template format error: Unresolved resource dependencies [Vpc] in the "
                                          "Resources block of the template")
    rig.cfn.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
    rig.by_id(at_cleanup)
    effects = ["upload", "CreateChangeSet CREATE", "DeleteChangeSet"]
    if does == "delete the stack":
        rig.cfn.add_response("list_change_sets", {"Summaries": []}, {"StackName": ROOT})  # none waits on it
        rig.cfn.add_response("delete_stack", {}, {"StackName": ROOT})
        effects.append("DeleteStack")
    return rig.run("deploy", "--env", "dev", "--yes"), effects


ROWS = [pytest.param(command, status, *row, id=f"{command}-{status}")
        for command, table in TABLES.items() if command != "cleanup" for status, row in table.items()]
CLEANUP_ROWS = [pytest.param(trigger, status, row[0], code, id=f"cleanup-{trigger}-{status}")
                for trigger, code in (("ctrl-c", 130), ("error", 1)) for status, row in TABLES["cleanup"].items()]


@pytest.mark.parametrize("command, found, does, code", ROWS)
def test_each_command_in_each_status(rig, monkeypatch, command, found, does, code):
    scenario = {"deploy": deploy, "deploy-left": deploy_left, "plan": plan, "destroy": destroy,
                "destroy-left": destroy_left, "status": status, "restore": restore}[command]
    extra = (monkeypatch,) if command in ("status", "restore") else ()
    (exit_code, out, err), effects = scenario(rig, found, does, *extra)
    rig.check()
    assert rig.effects == effects, (out, err)
    assert exit_code == (0 if does == "waits" else code), (out, err)  # waits: then it ends as asked
    if does in REFUSALS:  # by name a deleted stack is not found: its status is not named
        assert REFUSALS[does] in err and (found in err or found == "DELETE_COMPLETE"), err
    if does == "failed":  # the outcome is named, never passed off as a success
        assert f"{NAME}: {found}" in out, out
    if "ExecuteChangeSet" in effects:  # what runs was shown first (ChangeSetReady: the change table)
        assert out.index(" change\n") < out.index("streaming events"), out
    if command == "status":
        reason = {"failed or rolled back": "error: failed or rolled back: Root",
                  "follows, not settled": f"error: not settled: Root ({found})",
                  "nothing deployed": "error: Root: a change set was created and never executed",
                  "not deployed": f"{NAME}: not deployed"}.get(does)
        assert (reason in out) if reason else ("error" not in out), out


@pytest.mark.parametrize("trigger, at_cleanup, does, code", CLEANUP_ROWS)
def test_change_set_cleanup_deletes_only_an_empty_stack(rig, monkeypatch, trigger, at_cleanup, does, code):
    (exit_code, out, err), effects = cleanup(rig, trigger, at_cleanup, does, monkeypatch)
    rig.check()
    assert rig.effects == effects, (out, err)
    assert exit_code == code, (out, err)
    assert "change set discarded" in out or "change set failed" in err


def test_cleanup_keeps_an_empty_stack_it_did_not_make(rig, monkeypatch):
    """A REVIEW_IN_PROGRESS stack found before the deploy may hold another run's change set:
    Ctrl-C deletes this run's change set only (no DescribeStacks, no DeleteStack after it)."""
    rig.root("REVIEW_IN_PROGRESS")
    _change_set(rig, "CREATE")
    rig.cfn.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})

    def interrupted(question, assume_yes):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli_aws, "ask", interrupted)
    exit_code, out, err = rig.run("deploy", "--env", "dev", "--yes")
    rig.check()
    assert (exit_code, rig.effects) == (130, ["upload", "CreateChangeSet CREATE", "servers ready checked",
                                              "DeleteChangeSet"]), (out, err)


def test_the_tables_cover_exactly_the_statuses_botocore_knows():
    """Confirmed against botocore's model (shape StackStatus): a status AWS adds later fails
    here until every table says what to do with it."""
    assert set(MEANING) == set(BOTOCORE_STATUSES) and len(BOTOCORE_STATUSES) == 23
    for command, table in TABLES.items():
        assert set(table) == set(BOTOCORE_STATUSES), command


def test_stack_states_sorts_every_status_once():
    kinds = (stack_states.SUCCEEDED, stack_states.ROLLED_BACK, stack_states.FAILED, stack_states.RUNNING,
             {stack_states.REVIEW_IN_PROGRESS}, {stack_states.DELETE_COMPLETE})
    assert sum(map(len, kinds)) == len(stack_states.ALL) == len(BOTOCORE_STATUSES)
    assert stack_states.ALL == set(BOTOCORE_STATUSES)
    assert set(RUNNING) == stack_states.RUNNING
    assert not any(stack_states.succeeded(s) for s in stack_states.ROLLED_BACK)  # a rollback is never success


@pytest.mark.parametrize("nested, code", [("UPDATE_ROLLBACK_COMPLETE", 0), ("CREATE_COMPLETE", 0),
                                          ("UPDATE_FAILED", 1), ("UPDATE_IN_PROGRESS", 1)])
def test_status_of_a_nested_stack_an_update_left_alone(rig, nested, code):
    """A nested stack runs a complete version in USABLE: one that an earlier update rolled back,
    and a later successful update did not touch, keeps UPDATE_ROLLBACK_COMPLETE and is healthy."""
    rig.root("UPDATE_COMPLETE")
    rig.cfn.add_response("list_stack_resources", {"StackResourceSummaries": [{
        "LogicalResourceId": "Servers", "PhysicalResourceId": SERVERS, "ResourceType": "AWS::CloudFormation::Stack",
        "LastUpdatedTimestamp": T0, "ResourceStatus": "UPDATE_COMPLETE"}]}, {"StackName": ROOT})
    rig.cfn.add_response("describe_stacks", {"Stacks": [{
        "StackId": SERVERS, "StackName": "k3s-dev-Servers-1AB2", "CreationTime": T0, "StackStatus": nested,
        "ParentId": ROOT, "RootId": ROOT}]}, {"StackName": SERVERS})
    exit_code, out, err = rig.run("status", "--env", "dev")
    rig.check()
    assert exit_code == code, (out, err)
    assert ("Servers" in out.split("error:", 1)[-1]) if code else "error" not in out, out


@pytest.mark.parametrize("found", sorted(TABLES["destroy"]))
def test_destroy_dry_run_says_when_destroy_would_refuse(found):
    request = teardown.DestroyRequest(NAME, 0, "123456789012", "eu-west-1")
    lines = plan_lines(teardown.DestroyPlan(request, found, f"s3://{ENV.artifact_bucket}/{NAME}/"))
    refused = TABLES["destroy"][found][0].startswith("refuse")
    assert any(line.startswith("note: destroy refuses now:") and "is busy" in line for line in lines) == refused
