"""Ctrl-C during ``deploy`` (k3s_infra/deploy/lifecycle.py), step by step, through the real CLI
over the strict Stubbers of the Rig (tests/support/stack_stubs.py, responses shaped as the
CloudFormation API Reference shows them). KeyboardInterrupt is raised where Python raises
it: right after a call came back (botocore's after-call event: the call reached
CloudFormation, its answer is lost), at the prompt, or before a call was sent.

Until ExecuteChangeSet is under way the change set is deleted by name (DeleteChangeSet names
the change set, and its stack when only the name is known: API_DeleteChangeSet.html) and a
CREATE's empty stack with it; once CloudFormation runs it, nothing is deleted and the CLI
says once that CloudFormation carries on, how to watch it and how to cancel or undo it
(CancelUpdateStack takes only UPDATE_IN_PROGRESS: API_CancelUpdateStack.html)."""

from __future__ import annotations

import pytest
from botocore.stub import ANY

from k3s_infra.cli import aws as cli_aws
from k3s_infra.deploy import readiness, roll_order
from k3s_infra.deploy.progress import Interrupted
from tests.support.stack_stubs import CHANGE_SET, NAME, NESTED_CHANGE_SET, ROOT, change_set, nested_change_set
from tests.unit.deploy.test_stack_status_table import _wait

INTERRUPTED = 130  # docs/commands.md "Exit codes"


class CtrlC:
    """KeyboardInterrupt right after the ``nth`` call of ``operation`` came back."""

    def __init__(self, client, operation: str, nth: int = 1):
        self.client, self.nth, self.calls = client, nth, 0
        self.event = f"after-call.cloudformation.{operation}"
        client.meta.events.register(self.event, self)

    def __call__(self, **_):
        self.calls += 1
        if self.calls == self.nth:
            raise KeyboardInterrupt

    def remove(self):
        self.client.meta.events.unregister(self.event, self)


@pytest.fixture
def requests(rig):
    """The parameters of every CreateChangeSet and DeleteChangeSet the product sent."""
    sent: list[tuple[str, dict]] = []

    def record(model, params, **_):
        if model.name in ("CreateChangeSet", "DeleteChangeSet"):
            sent.append((model.name, dict(params)))

    client = rig.cfn.client
    client.meta.events.register("before-parameter-build.cloudformation.*", record)
    yield sent
    client.meta.events.unregister("before-parameter-build.cloudformation.*", record)


# The calls of an UPDATE deploy up to ExecuteChangeSet, in order (a CREATE: the root is absent).
def _prepare(rig, kind):
    rig.root("UPDATE_COMPLETE" if kind == "UPDATE" else None)


def _create(rig, kind):
    rig.cfn.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": ROOT}, {
        "StackName": NAME, "ChangeSetName": ANY, "ChangeSetType": kind, "Capabilities": ANY,
        "IncludeNestedStacks": True, "Parameters": [], "Description": "k3s-infra dev", "TemplateBody": "{}",
        "Tags": ANY})


def _describe(rig, kind):
    rig.cfn.add_response("describe_change_set", change_set(kind), {"ChangeSetName": CHANGE_SET})


def _describe_nested(rig, kind):
    rig.cfn.add_response("describe_change_set", nested_change_set(), {"ChangeSetName": NESTED_CHANGE_SET})


def _prime_resources(rig, kind):
    rig.resources()


def _prime_events(rig, kind):
    rig.events()


def _still_at_rest(rig, kind):
    rig.by_id("REVIEW_IN_PROGRESS" if kind == "CREATE" else "UPDATE_COMPLETE")


STEPS = [_prepare, _create, _describe, _describe_nested, _prime_resources, _prime_events, _still_at_rest]
# Where Ctrl-C comes before the execute: (operation, its nth call, the steps answered by then).
BEFORE = [("CreateChangeSet", 1, 2), ("DescribeChangeSet", 1, 3), ("DescribeChangeSet", 2, 4),
          ("prompt", 0, 4), ("ListStackResources", 1, 5), ("DescribeStackEvents", 1, 6),
          ("DescribeStacks", 2, 7), ("ExecuteChangeSet (not sent)", 1, 7)]


def _interrupted(*args, **kwargs):
    raise KeyboardInterrupt


def _cleanup(rig, kind, by_name: bool) -> None:
    """The change set deleted; a CREATE's stack too, found empty and with no other change set."""
    rig.cfn.add_response("delete_change_set", {}, {"ChangeSetName": ANY, "StackName": NAME} if by_name
                         else {"ChangeSetName": CHANGE_SET})
    if kind == "CREATE":
        if by_name:
            rig.root("REVIEW_IN_PROGRESS")
        else:
            rig.by_id("REVIEW_IN_PROGRESS")
        rig.cfn.add_response("list_change_sets", {"Summaries": []}, {"StackName": ROOT})
        rig.cfn.add_response("delete_stack", {}, {"StackName": ROOT})


@pytest.mark.parametrize("kind", ["UPDATE", "CREATE"])
@pytest.mark.parametrize("operation, nth, answered", BEFORE, ids=[f"{o}-{n}" for o, n, _ in BEFORE])
def test_ctrl_c_before_the_execute_deletes_the_change_set_by_name(rig, requests, monkeypatch, kind, operation, nth,
                                                                   answered):
    for step in STEPS[:answered]:
        step(rig, kind)
    client, trap = rig.cfn.client, None
    if operation == "prompt":
        monkeypatch.setattr(cli_aws, "ask", _interrupted)
    elif operation.startswith("ExecuteChangeSet"):
        monkeypatch.setattr(client, "execute_change_set", _interrupted)  # as the call starts
        # Did CloudFormation take it? The change set says: still AVAILABLE.
        rig.cfn.add_response("describe_change_set", change_set(kind), {"ChangeSetName": CHANGE_SET})
    else:
        trap = CtrlC(client, operation, nth)
    by_name = operation == "CreateChangeSet"  # its answer (the ARN) never arrived
    _cleanup(rig, kind, by_name)
    try:
        code, out, err = rig.run("deploy", "--env", "dev", "--yes")
    finally:
        if trap:
            trap.remove()
    rig.check()
    assert code == INTERRUPTED, (out, err)
    created = [params for name, params in requests if name == "CreateChangeSet"]
    deleted = [params for name, params in requests if name == "DeleteChangeSet"]
    assert len(created) == 1 and len(deleted) == 1
    expected = {"ChangeSetName": created[0]["ChangeSetName"], "StackName": NAME} if by_name \
        else {"ChangeSetName": CHANGE_SET}
    assert deleted[0] == expected
    assert "ExecuteChangeSet" not in rig.effects
    assert "DeleteStack" in rig.effects if kind == "CREATE" else "DeleteStack" not in rig.effects
    assert err.strip() == "interrupted" and "CloudFormation carries on" not in err


def _executed(rig, kind):
    for step in STEPS:
        step(rig, kind)
    rig.cfn.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET})


def test_ctrl_c_after_the_execute_was_sent_deletes_nothing_and_says_how_to_follow_and_cancel(rig, requests):
    """The execute's answer is lost: the change set says CloudFormation took it."""
    _executed(rig, "UPDATE")
    rig.cfn.add_response("describe_change_set", {**change_set("UPDATE"), "ExecutionStatus": "EXECUTE_IN_PROGRESS"},
                         {"ChangeSetName": CHANGE_SET})
    trap = CtrlC(rig.cfn.client, "ExecuteChangeSet")
    try:
        code, out, err = rig.run("deploy", "--env", "dev", "--yes")
    finally:
        trap.remove()
    rig.check()
    assert code == INTERRUPTED
    assert not [name for name, _ in requests if name == "DeleteChangeSet"]
    assert err.count("CloudFormation carries on") == 1
    assert "k3s-infra status --env dev --watch" in err
    assert "aws cloudformation cancel-update-stack --stack-name k3s-dev --region eu-west-1" in err


@pytest.mark.parametrize("kind, hint", [
    ("UPDATE", "cancel it: aws cloudformation cancel-update-stack --stack-name k3s-dev --region eu-west-1"),
    ("CREATE", "undo it:   once it settles, k3s-infra destroy --env dev"),
])
def test_ctrl_c_while_cloudformation_runs_it_is_said_once_with_watch_and_cancel(rig, requests, kind, hint):
    _executed(rig, kind)
    running = f"{kind}_IN_PROGRESS"
    rig.resources()  # the first poll: the root is running
    rig.events()
    rig.by_id(running)
    rig.resources()  # the second: Ctrl-C once its events came back
    rig.events()
    trap = CtrlC(rig.cfn.client, "DescribeStackEvents", nth=3)  # prime, first poll, second poll
    try:
        code, out, err = rig.run("deploy", "--env", "dev", "--yes")
    finally:
        trap.remove()
    rig.check()
    assert code == INTERRUPTED
    assert not [name for name, _ in requests if name == "DeleteChangeSet"]
    assert err.count("CloudFormation carries on") == 1 and f"the {kind} of k3s-dev ({running})" in err
    assert "watch it:  k3s-infra status --env dev --watch" in err and hint in err
    assert "keeps going" not in out + err  # the watcher's own line is not printed as well


def test_an_update_past_in_progress_can_no_longer_be_cancelled(rig):
    _executed(rig, "UPDATE")
    rig.resources()
    rig.events()
    rig.by_id("UPDATE_ROLLBACK_IN_PROGRESS")
    rig.resources()
    rig.events()
    trap = CtrlC(rig.cfn.client, "DescribeStackEvents", nth=3)
    try:
        code, out, err = rig.run("deploy", "--env", "dev", "--yes")
    finally:
        trap.remove()
    rig.check()
    assert code == INTERRUPTED
    assert "cancel-update-stack" not in err and "no longer be cancelled (UPDATE_ROLLBACK_IN_PROGRESS" in err


def test_ctrl_c_while_waiting_for_the_nodes_says_the_stack_is_done_and_the_nodes_may_still_join(rig, requests,
                                                                                                   monkeypatch):
    """CloudFormation had finished (HandedOver: no operation, the root's last status seen)."""
    _executed(rig, "UPDATE")
    _wait(rig, ["UPDATE_COMPLETE"])
    monkeypatch.setattr(readiness, "wait_for_nodes", _interrupted)
    code, out, err = rig.run("deploy", "--env", "dev", "--yes")
    rig.check()
    assert code == INTERRUPTED
    assert not [name for name, _ in requests if name == "DeleteChangeSet"]
    assert "interrupted: k3s-dev is UPDATE_COMPLETE; the nodes may still be joining" in err
    assert "CloudFormation carries on" not in err


@pytest.mark.parametrize("seen, says", [
    # Ctrl-C while the update that records the roll order runs: CloudFormation carries it on
    ("UPDATE_IN_PROGRESS", "CloudFormation carries on with the UPDATE of k3s-dev (UPDATE_IN_PROGRESS)"),
    # ... or once that update had ended (its watcher's last poll): only the nodes may still join
    ("UPDATE_COMPLETE", "interrupted: k3s-dev is UPDATE_COMPLETE; the nodes may still be joining"),
])
def test_ctrl_c_while_the_roll_order_is_recorded_says_what_its_update_was_doing(rig, requests, monkeypatch, seen,
                                                                                  says):
    """After a first create, the update recording the roll order (deploy/roll_order.py) is
    followed by a Watcher that reports Interrupted with the root's last status and re-raises
    (deploy/events.py Watcher.wait)."""
    def record(aws, pkg, parameters, stack, on_progress, poll):
        on_progress(Interrupted(NAME, seen))
        raise KeyboardInterrupt

    _executed(rig, "CREATE")
    _wait(rig, ["CREATE_COMPLETE"])
    monkeypatch.setattr(roll_order, "record", record)
    code, out, err = rig.run("deploy", "--env", "dev", "--yes")
    rig.check()
    assert code == INTERRUPTED
    assert not [name for name, _ in requests if name == "DeleteChangeSet"]
    assert says in err and err.count("interrupted") == 1
    assert "keeps going" not in out + err  # the watcher's own line is not printed as well


@pytest.mark.parametrize("operation, answered", [("CreateChangeSet", 2), ("DescribeChangeSet", 3)])
def test_ctrl_c_during_a_plan_deletes_its_change_set_by_name_too(rig, requests, operation, answered):
    for step in STEPS[:answered]:
        step(rig, "UPDATE")
    by_name = operation == "CreateChangeSet"
    _cleanup(rig, "UPDATE", by_name)
    trap = CtrlC(rig.cfn.client, operation)
    try:
        code, _, err = rig.run("plan", "--env", "dev")
    finally:
        trap.remove()
    rig.check()
    assert code == INTERRUPTED and err.strip() == "interrupted"
    (created,) = [params for name, params in requests if name == "CreateChangeSet"]
    (deleted,) = [params for name, params in requests if name == "DeleteChangeSet"]
    assert deleted == ({"ChangeSetName": created["ChangeSetName"], "StackName": NAME} if by_name
                       else {"ChangeSetName": CHANGE_SET})


def test_ctrl_c_while_cloudformation_deletes_says_it_carries_on_and_cannot_be_cancelled(rig):
    rig.root("CREATE_COMPLETE")
    rig.resources()  # the nested stacks, counted for the question
    rig.resources()  # Watcher.prime
    rig.events()
    rig.cfn.add_response("delete_stack", {}, {"StackName": ROOT})
    rig.events()  # the first poll: the root is being deleted
    rig.by_id("DELETE_IN_PROGRESS")
    rig.events()  # the second: Ctrl-C once its events came back
    trap = CtrlC(rig.cfn.client, "DescribeStackEvents", nth=3)
    try:
        code, out, err = rig.run("destroy", "--env", "dev", "--yes")
    finally:
        trap.remove()
    rig.check()
    assert code == INTERRUPTED
    assert "interrupted: CloudFormation carries on with the DELETE of k3s-dev (DELETE_IN_PROGRESS)" in err
    assert "watch it:  k3s-infra status --env dev --watch" in err and "a delete cannot be cancelled" in err
    assert err.count("CloudFormation carries on") == 1 and "keeps going" not in out
