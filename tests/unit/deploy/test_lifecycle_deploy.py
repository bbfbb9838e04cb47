"""``deploy`` and ``deploy PLANFILE`` as library calls (k3s_infra/deploy/lifecycle.py) over the
strict Stubbers of the Rig (tests/support/stack_stubs.py; the steps that do not depend on the
stack faked by tests/unit/deploy/conftest.py): what each reports and asks besides the
change set itself. Kept out of the status table (test_stack_status_table.py), whose rows
share the Rig's fakes with status and restore, which read the restore request too.

- A restore request in SSM is shown before anything changes (lifecycle._report_restore_request:
  a deploy that replaces the first server starts a boot that may act on it), on both ways in.
- A deploy with nothing to change still sets the protection the file asks for (someone may
  have turned termination protection off by hand; docs/operations.md "Protected environments").
- ExecuteChangeSet answering an error: whatever the stacks recorded before the API gave up is
  read and its first failing resource named (docs/commands.md, deploy: "Failure: the first
  failing resource and its reason"); when that read fails too, that is said, not raised.
- The root is read again right before ExecuteChangeSet: an operation started meanwhile
  outside k3s-infra refuses the deploy, and its change set is deleted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from k3s_infra.config import environment_file, load_environment
from k3s_infra.deploy import DeployError, lifecycle, planfile, progress, protection, restore_request
from tests.support.stack_stubs import CHANGE_SET, NAME, ROOT, SERVERS, T0
from tests.unit.deploy.test_planfile import _executes, _plan
from tests.unit.deploy.test_stack_status_table import _change_set

ENV = load_environment("dev")
NO_CHANGES = ("The submitted information didn't contain changes. Submit different information to create a "
              "change set.")  # DescribeChangeSet's StatusReason of an empty change set
# A request as `restore` writes it (deploy/restore_request.py's format), expiring in 2100.
REQUEST = "snapshot=etcd-snapshot-k3s-dev-1 replaces=i-0123456789abcdef0 expires=4102444800"


def _pending_request(rig, monkeypatch) -> None:
    """restore_request.read finds REQUEST (its own tests: test_restore_request.py); the read is
    logged among the Rig's effects, so the test sees when it came."""
    def read(ssm, name, now):
        rig.effects.append("restore request read")
        return restore_request.Pending(name, ENV.region, REQUEST, int(now), restore_request.parse(REQUEST))

    monkeypatch.setattr(restore_request, "read", read)


def _progress(rig, seen: list):
    """on_progress: each message kept, and its kind logged among the effects (their order)."""
    def report(message):
        seen.append(message)
        rig.effects.append(type(message).__name__)
    return report


def test_deploy_shows_a_pending_restore_request_before_it_uploads_anything_then_what_it_uploaded(rig, monkeypatch):
    _pending_request(rig, monkeypatch)
    rig.root("UPDATE_COMPLETE")
    _change_set(rig, "UPDATE", failed=NO_CHANGES)
    rig.cfn.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
    seen: list = []
    result = lifecycle.deploy(rig.aws, confirm=lambda cs: True, on_progress=_progress(rig, seen), poll=0)
    rig.check()
    assert result.outcome == "up to date"
    (shown,) = [m for m in seen if isinstance(m, progress.RestoreRequestPending)]
    assert (shown.pending.value, shown.pending.state) == (REQUEST, "pending")
    assert shown.pending.parameter == f"/k3s-infra/{ENV.stack_name}/restore-request"
    effects = rig.effects
    assert effects.index("RestoreRequestPending") < effects.index("upload") < effects.index("Packaged") \
        < effects.index("CreateChangeSet UPDATE")  # the templates uploaded are said before the change set


def test_deploy_planfile_shows_a_pending_restore_request_before_it_executes(rig, monkeypatch, tmp_path):
    out = tmp_path / "plan.json"
    assert _plan(rig, out)[0] == 0
    planned = planfile.PlanFile.from_json(out.read_text(), str(out))
    rig.effects.clear()
    _pending_request(rig, monkeypatch)
    _executes(rig)
    seen: list = []
    result = lifecycle.deploy_planned(rig.aws, planned, source=environment_file("dev"), confirm=lambda cs: True,
                                      on_progress=_progress(rig, seen), poll=0)
    rig.check()
    assert result.outcome == "deployed"
    (shown,) = [m for m in seen if isinstance(m, progress.RestoreRequestPending)]
    assert shown.pending.value == REQUEST
    effects = rig.effects
    assert effects.index("RestoreRequestPending") < effects.index("ChangeSetReady") < effects.index("ExecuteChangeSet")


def test_a_deploy_with_nothing_to_change_sets_the_protection_the_file_asks_for(rig, monkeypatch):
    asked = []
    monkeypatch.setattr(protection, "apply", lambda aws, root_id, protected: asked.append((root_id, protected)) or ())
    rig.root("UPDATE_COMPLETE")
    _change_set(rig, "UPDATE", failed=NO_CHANGES)
    rig.cfn.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
    result = lifecycle.deploy(rig.aws, confirm=lambda cs: True, poll=0)
    rig.check()
    assert result.outcome == "up to date" and "ExecuteChangeSet" not in rig.effects
    assert asked == [(ROOT, ENV.protected)]  # the root found, as environments/dev.yaml says


def test_an_execute_that_fails_names_the_first_failure_the_stacks_recorded_before(rig):
    """ExecuteChangeSet answers HTTP 500 (InternalFailure, a common error of every action:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/CommonErrors.html) after
    CloudFormation had started: the events it recorded name what failed."""
    rig.root("UPDATE_COMPLETE")
    _change_set(rig, "UPDATE")
    rig.resources()  # Watcher.prime
    rig.events()
    rig.by_id("UPDATE_COMPLETE")  # right before the execute: still at rest
    rig.cfn.add_client_error("execute_change_set", "InternalFailure", "We encountered an internal error.", 500,
                             expected_params={"ChangeSetName": CHANGE_SET})
    reason = "Resource handler returned message: \"Invalid launch template\" (HandlerErrorCode: InvalidRequest)"
    failing = {"StackId": ROOT, "EventId": "Servers-UPDATE_FAILED-1", "StackName": NAME,
               "LogicalResourceId": "Servers", "PhysicalResourceId": SERVERS,
               "ResourceType": "AWS::CloudFormation::Stack", "Timestamp": T0 + timedelta(minutes=6),
               "ResourceStatus": "UPDATE_FAILED", "ResourceStatusReason": reason}
    rig.resources()  # the poll after the error: nested stacks, then the root's events
    rig.events(failing)
    rig.by_id("UPDATE_ROLLBACK_IN_PROGRESS")
    seen: list = []
    result = lifecycle.deploy(rig.aws, confirm=lambda cs: True, on_progress=seen.append, poll=0)
    rig.check()
    assert (result.outcome, result.change_set_id) == ("failed", CHANGE_SET)
    (error,) = [m for m in seen if isinstance(m, progress.ExecutionFailed)]
    assert "InternalFailure" in error.error
    (failed,) = [m for m in seen if isinstance(m, progress.Failed)]
    assert (failed.status, failed.cause_stack) == ("UPDATE_ROLLBACK_IN_PROGRESS", NAME)
    assert (failed.cause["LogicalResourceId"], failed.cause["ResourceStatusReason"]) == ("Servers", reason)
    assert not [m for m in seen if isinstance(m, progress.EventsUnavailable)]


def test_an_execute_error_whose_stack_cannot_be_read_either_says_the_events_are_unavailable(rig):
    """The best-effort read after a failed ExecuteChangeSet fails too (DescribeStacks throttled):
    the execution error stays the news, and the missing events are said, not raised."""
    rig.root("UPDATE_COMPLETE")
    _change_set(rig, "UPDATE")
    rig.resources()  # Watcher.prime
    rig.events()
    rig.by_id("UPDATE_COMPLETE")
    rig.cfn.add_client_error("execute_change_set", "InternalFailure", "We encountered an internal error.", 500,
                             expected_params={"ChangeSetName": CHANGE_SET})
    rig.resources()
    rig.events()
    rig.cfn.add_client_error("describe_stacks", "Throttling", "Rate exceeded", 400, expected_params={"StackName": ROOT})
    seen: list = []
    result = lifecycle.deploy(rig.aws, confirm=lambda cs: True, on_progress=seen.append, poll=0)
    rig.check()
    assert result.outcome == "failed"
    assert [type(m) for m in seen if isinstance(m, (progress.ExecutionFailed, progress.EventsUnavailable,
                                                    progress.Failed))] == [progress.ExecutionFailed,
                                                                           progress.EventsUnavailable]
    assert [m.error for m in seen if isinstance(m, progress.EventsUnavailable)] == ["ClientError"]


def test_a_stack_another_operation_took_meanwhile_is_not_executed_on(rig):
    """Right before ExecuteChangeSet the root is read again: an update started outside k3s-infra
    (which the lock cannot stop, deploy/lock.py) since the change set was made refuses the deploy,
    and the change set this run made is deleted."""
    rig.root("UPDATE_COMPLETE")
    _change_set(rig, "UPDATE")
    rig.resources()  # Watcher.prime
    rig.events()
    rig.by_id("UPDATE_IN_PROGRESS")  # someone else's update, started meanwhile
    rig.cfn.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
    with pytest.raises(DeployError, match="busy"):
        lifecycle.deploy(rig.aws, confirm=lambda cs: True, poll=0)
    rig.check()
    assert "ExecuteChangeSet" not in rig.effects and "DeleteChangeSet" in rig.effects
