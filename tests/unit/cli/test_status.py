"""status exit codes and account check, the heartbeat of long operations and what
Ctrl-C says, against botocore's Stubber with responses shaped like CloudFormation's."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.cli import status
from k3s_infra.cli.progress import Console
from k3s_infra.config import load_environment
from k3s_infra.deploy import AccountMismatch, events
from k3s_infra.deploy.aws import Aws

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)
ROOT_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev/0a1b"
CHILD_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev-Servers-X/0c2d"


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    env = load_environment("dev")
    result = Aws(env, boto3.Session(region_name=env.region))
    stubs = {}
    for service in ("cloudformation", "sts", "autoscaling", "ssm"):
        client = result.client(service)
        result.__dict__[service] = client  # what the cached property would hold
        stubs[service] = Stubber(client)
        stubs[service].activate()
    result.stubs = stubs
    return result


def _identity(aws, account="123456789012"):
    aws.stubs["sts"].add_response("get_caller_identity", {
        "UserId": "AIDA", "Account": account, "Arn": f"arn:aws:iam::{account}:user/ci"})


def _stack(name, stack_id, state):
    return {"StackName": name, "StackId": stack_id, "StackStatus": state, "CreationTime": T0}


def _no_restore_request(aws):
    aws.stubs["ssm"].add_client_error("get_parameter", "ParameterNotFound",
                                      expected_params={"Name": "/k3s-infra/k3s-dev/restore-request"})


def test_status_exits_1_for_a_rolled_back_stack(aws, capsys):
    cfn = aws.stubs["cloudformation"]
    _identity(aws)
    cfn.add_response("describe_stacks", {"Stacks": [_stack("k3s-dev", ROOT_ID, "UPDATE_ROLLBACK_COMPLETE")]},
                     {"StackName": "k3s-dev"})
    _no_restore_request(aws)
    cfn.add_response("list_stack_resources", {"StackResourceSummaries": [{
        "LogicalResourceId": "Servers", "PhysicalResourceId": CHILD_ID, "ResourceType": "AWS::CloudFormation::Stack",
        "LastUpdatedTimestamp": T0, "ResourceStatus": "UPDATE_COMPLETE"}]}, {"StackName": ROOT_ID})
    cfn.add_response("describe_stacks", {"Stacks": [_stack("k3s-dev-Servers-X", CHILD_ID, "UPDATE_COMPLETE")]},
                     {"StackName": CHILD_ID})
    assert status.show(aws) == 1
    assert "error: failed or rolled back: Root" in capsys.readouterr().out
    cfn.assert_no_pending_responses()


def test_status_json_of_an_environment_never_deployed(aws, capsys):
    _identity(aws)
    aws.stubs["cloudformation"].add_client_error(
        "describe_stacks", "ValidationError", "Stack with id k3s-dev does not exist", 400, {"StackName": "k3s-dev"})
    _no_restore_request(aws)
    assert status.show(aws, as_json=True) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "status" and doc["deployed"] is False and doc["stacks"] == []
    assert doc["restore_request"] is None


def test_status_checks_the_account_first(aws):
    _identity(aws, account="999999999999")
    with pytest.raises(AccountMismatch, match="999999999999"):
        status.show(aws)
    aws.stubs["cloudformation"].assert_no_pending_responses()  # no CloudFormation call made


def _event(event_id, logical, state, when, stack_name="k3s-dev", physical=""):
    return {"StackId": ROOT_ID, "EventId": event_id, "StackName": stack_name, "LogicalResourceId": logical,
            "PhysicalResourceId": physical, "ResourceType": "AWS::CloudFormation::Stack", "Timestamp": when,
            "ResourceStatus": state}


def _running_then_done(cfn):
    events_page = {"StackEvents": [  # newest first, as DescribeStackEvents returns them
        _event("e2", "Servers", "UPDATE_IN_PROGRESS", T0 + timedelta(seconds=5), physical=CHILD_ID),
        _event("e1", "k3s-dev", "UPDATE_IN_PROGRESS", T0, physical=ROOT_ID)]}
    cfn.add_response("describe_stack_events", events_page, {"StackName": ROOT_ID})
    cfn.add_response("describe_stacks", {"Stacks": [_stack("k3s-dev", ROOT_ID, "UPDATE_IN_PROGRESS")]},
                     {"StackName": ROOT_ID})
    cfn.add_response("describe_stack_events", events_page, {"StackName": ROOT_ID})
    cfn.add_response("describe_stacks", {"Stacks": [_stack("k3s-dev", ROOT_ID, "UPDATE_COMPLETE")]},
                     {"StackName": ROOT_ID})
    cfn.add_response("describe_stack_events", events_page, {"StackName": ROOT_ID})


@pytest.mark.parametrize("interval, live, beats", [(0.0, False, 1), (30.0, False, 0), (0.0, True, 0)])
def test_heartbeat_when_output_is_not_a_terminal(aws, interval, live, beats):
    _running_then_done(aws.stubs["cloudformation"])
    out = io.StringIO()
    watcher = events.Watcher(aws.cloudformation, ROOT_ID, "k3s-dev", on_progress=Console(out, live=live),
                             heartbeat=interval)
    watcher.discovering = False
    assert watcher.wait(poll=0) == "UPDATE_COMPLETE"
    lines = [line for line in out.getvalue().splitlines() if line.startswith("... ")]
    assert len(lines) == beats, out.getvalue()
    if beats:
        assert "k3s-dev UPDATE_IN_PROGRESS" in lines[0] and "in progress: k3s-dev, Servers" in lines[0]


def test_heartbeat_interval_defaults_to_30_seconds():
    assert events.Watcher(object(), ROOT_ID, "k3s-dev").heartbeat == 30.0


def test_ctrl_c_says_cloudformation_keeps_going_and_how_to_follow(aws, monkeypatch):
    _running_then_done(aws.stubs["cloudformation"])

    def interrupted(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(events.time, "sleep", interrupted)
    out = io.StringIO()
    watcher = events.Watcher(aws.cloudformation, ROOT_ID, "k3s-dev", on_progress=Console(out, live=False))
    watcher.discovering = False
    with pytest.raises(KeyboardInterrupt):
        watcher.wait(poll=0)
    assert "CloudFormation keeps going with k3s-dev (UPDATE_IN_PROGRESS)" in out.getvalue()
    assert "k3s-infra status --watch" in out.getvalue()


def test_status_watch_streams_the_running_operation_since_it_started(aws, capsys):
    """Re-attaching: events older than the operation's start are history, newer ones print."""
    cfn = aws.stubs["cloudformation"]
    _identity(aws)
    started = T0 + timedelta(minutes=5)
    running = {**_stack("k3s-dev", ROOT_ID, "UPDATE_IN_PROGRESS"), "LastUpdatedTime": started}
    cfn.add_response("describe_stacks", {"Stacks": [running]}, {"StackName": "k3s-dev"})
    page = {"StackEvents": [
        _event("new", "Servers", "UPDATE_IN_PROGRESS", started + timedelta(seconds=3), physical=CHILD_ID),
        _event("old", "Servers", "CREATE_COMPLETE", T0, physical=CHILD_ID)]}
    cfn.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": ROOT_ID})
    cfn.add_response("describe_stack_events", page, {"StackName": ROOT_ID})
    cfn.add_response("describe_stacks", {"Stacks": [_stack("k3s-dev", ROOT_ID, "UPDATE_COMPLETE")]},
                     {"StackName": ROOT_ID})
    cfn.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": ROOT_ID})
    cfn.add_response("describe_stack_events", page, {"StackName": ROOT_ID})
    # then the usual status report
    cfn.add_response("describe_stacks", {"Stacks": [_stack("k3s-dev", ROOT_ID, "UPDATE_COMPLETE")]},
                     {"StackName": "k3s-dev"})
    _no_restore_request(aws)
    cfn.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": ROOT_ID})
    assert status.show(aws, follow=True, poll=0) == 0
    text = capsys.readouterr().out
    assert "k3s-dev: UPDATE_IN_PROGRESS: following its events" in text
    assert "UPDATE_IN_PROGRESS" in text and "CREATE_COMPLETE" not in text  # only this operation's events
    assert text.rstrip().splitlines()[-1].split()[:2] == ["Root", "UPDATE_COMPLETE"]
    cfn.assert_no_pending_responses()


REQUEST = "/k3s-infra/k3s-dev/restore-request"
NOW = 1_800_000_000


def _deployed_with_request(aws, value):
    cfn = aws.stubs["cloudformation"]
    _identity(aws)
    cfn.add_response("describe_stacks", {"Stacks": [_stack("k3s-dev", ROOT_ID, "UPDATE_COMPLETE")]},
                     {"StackName": "k3s-dev"})
    aws.stubs["ssm"].add_response("get_parameter", {"Parameter": {"Name": REQUEST, "Type": "String", "Value": value}},
                                  {"Name": REQUEST})
    cfn.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": ROOT_ID})


@pytest.mark.parametrize("expires, says", [
    (NOW + 12 * 60 + 5, "expires in 12m"),
    (NOW - 3 * 3600 - 100, f"expired 3h ago (ignored by the boot; delete with: aws ssm delete-parameter --name "
                           f"{REQUEST} --region eu-west-1)"),
])
def test_status_shows_a_pending_restore_request(aws, capsys, monkeypatch, expires, says):
    monkeypatch.setattr("time.time", lambda: float(NOW))
    value = f"snapshot=etcd-snapshot-x-1 replaces=i-0123456789abcdef0,i-0a1b2c3d expires={expires}"
    _deployed_with_request(aws, value)
    assert status.show(aws) == 0  # a request is news, not a failure
    text = capsys.readouterr().out.splitlines()
    assert text[1] == (f"restore request {REQUEST}: snapshot etcd-snapshot-x-1, replaces i-0123456789abcdef0, "
                       f"i-0a1b2c3d, {says}")
    _deployed_with_request(aws, value)
    assert status.show(aws, as_json=True) == 0
    doc = json.loads(capsys.readouterr().out)["restore_request"]
    assert doc == {"parameter": REQUEST, "value": value, "state": "pending" if expires > NOW else "expired",
                   "snapshot": "etcd-snapshot-x-1", "replaces": ["i-0123456789abcdef0", "i-0a1b2c3d"],
                   "expires": datetime.fromtimestamp(expires, timezone.utc).isoformat(),
                   "expires_in": expires - NOW, "problem": None}
    aws.stubs["ssm"].assert_no_pending_responses()


def test_status_shows_a_legacy_request_and_survives_an_unreadable_one(aws, capsys):
    _deployed_with_request(aws, "etcd-snapshot-x-1")
    status.show(aws)
    assert "snapshot etcd-snapshot-x-1, from an earlier release" in capsys.readouterr().out
    cfn = aws.stubs["cloudformation"]
    cfn.add_response("describe_stacks", {"Stacks": [_stack("k3s-dev", ROOT_ID, "UPDATE_COMPLETE")]},
                     {"StackName": "k3s-dev"})
    aws.stubs["ssm"].add_client_error("get_parameter", "AccessDeniedException", expected_params={"Name": REQUEST})
    cfn.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": ROOT_ID})
    assert status.show(aws) == 0
    assert f"warning: cannot read the restore request {REQUEST} (AccessDeniedException)" in capsys.readouterr().out
