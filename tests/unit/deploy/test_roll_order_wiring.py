"""Where deploy/lifecycle.py asks deploy/roll_order.py about an order never recorded (its
recording after the create failed or was interrupted): deploy records it before its own change
set (a rollback of the update returns to the deployed root, so that root must hold the order:
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html),
plan says so and changes nothing, deploy PLANFILE refuses unless --allow-quorum-loss. The
repair itself: test_roll_order.py. Every other step is faked here."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from k3s_infra.deploy import DeployError, changeset, lifecycle, lock, planfile, roll_order
from k3s_infra.deploy.progress import RollOrderMissing

UPDATABLE = {"StackId": "arn:stack/k3s-dev/1", "StackName": "k3s-dev", "StackStatus": "UPDATE_COMPLETE"}
AFTER_REPAIR = {**UPDATABLE, "LastUpdatedTime": "2026-12-04T06:00:00Z"}
MISSING = {"Servers": ["ServerInit"], "AgentPoolGeneral": ["Servers"]}


@contextmanager
def _unlocked(aws, command, on_progress=None, *, force=False):
    yield on_progress


@pytest.fixture
def steps(monkeypatch):
    calls = []
    aws = SimpleNamespace(env=SimpleNamespace(stack_name="k3s-dev", artifact_bucket="bucket"), cloudformation=None,
                          check_account=lambda: "123456789012")
    monkeypatch.setattr(lock, "held", _unlocked)
    monkeypatch.setattr(lifecycle, "render", lambda env: "rendering")
    monkeypatch.setattr(lifecycle, "package", lambda aws, rendering: SimpleNamespace(rendering=rendering))
    monkeypatch.setattr(lifecycle, "_report_restore_request", lambda aws, on_progress: None)
    monkeypatch.setattr(changeset, "stack_state", lambda cfn, name: calls.append(("describe", name)) or AFTER_REPAIR)
    monkeypatch.setattr(changeset, "create", lambda aws, pkg, parameters, current: calls.append(
        ("change set", current)) or SimpleNamespace(empty=True, stack_arn="arn"))
    monkeypatch.setattr(changeset, "discard", lambda aws, cs: None)
    monkeypatch.setattr(lifecycle, "_run", lambda aws, cs, root, pkg, parameters, **kw: calls.append(("run", root)))
    return SimpleNamespace(aws=aws, calls=calls)


@pytest.mark.parametrize("recorded", [False, True])
def test_deploy_ensures_the_order_before_its_change_set(steps, monkeypatch, recorded):
    monkeypatch.setattr(lifecycle, "_prepare", lambda aws, on_progress, **kw: (UPDATABLE, []))
    monkeypatch.setattr(roll_order, "ensure", lambda aws, pkg, root, on_progress, poll, allow_quorum_loss: (
        steps.calls.append(("ensure", root, allow_quorum_loss)) or recorded))
    lifecycle.deploy(steps.aws, confirm=lambda cs: True, allow_quorum_loss=True)
    now = AFTER_REPAIR if recorded else UPDATABLE  # an executed recording moved the stack on: described again
    assert steps.calls == [("ensure", UPDATABLE, True), *([("describe", UPDATABLE["StackId"])] if recorded else []),
                           ("change set", now), ("run", now)]


def test_a_first_create_has_no_deployed_root_to_ask(steps, monkeypatch):
    monkeypatch.setattr(lifecycle, "_prepare", lambda aws, on_progress, **kw: (None, []))
    monkeypatch.setattr(roll_order, "ensure", lambda *a, **kw: pytest.fail("no stack: nothing to ensure"))
    lifecycle.deploy(steps.aws, confirm=lambda cs: True)
    assert steps.calls == [("change set", None), ("run", None)]


def test_plan_says_the_order_is_missing_and_changes_nothing_for_it(steps, monkeypatch):
    monkeypatch.setattr(lifecycle, "_prepare", lambda aws, on_progress, **kw: (UPDATABLE, []))
    monkeypatch.setattr(roll_order, "missing_order", lambda aws, rendering, root: MISSING)
    monkeypatch.setattr(roll_order, "ensure", lambda *a, **kw: pytest.fail("plan changes nothing"))
    said = []
    lifecycle.plan(steps.aws, on_progress=said.append)
    assert RollOrderMissing(("Servers after ServerInit", "AgentPoolGeneral after Servers"), recording=False) in said
    assert ("change set", UPDATABLE) in steps.calls


def test_plan_goes_on_when_the_template_cannot_be_read(steps, monkeypatch):
    from botocore.exceptions import ClientError

    def refused(aws, rendering, root):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no GetTemplate"}}, "GetTemplate")

    monkeypatch.setattr(lifecycle, "_prepare", lambda aws, on_progress, **kw: (UPDATABLE, []))
    monkeypatch.setattr(roll_order, "missing_order", refused)
    said = []
    lifecycle.plan(steps.aws, on_progress=said.append)
    assert not any(isinstance(m, RollOrderMissing) for m in said) and ("change set", UPDATABLE) in steps.calls


@pytest.mark.parametrize("allow", [False, True])
def test_deploy_planfile_refuses_a_root_without_the_order_unless_quorum_loss_is_allowed(steps, monkeypatch, allow):
    planned = SimpleNamespace(stack_id=UPDATABLE["StackId"], change_set_id="cs-1", change_set_type="UPDATE",
                              roots={}, parameters=[])
    monkeypatch.setattr(changeset, "stack_state", lambda cfn, name: UPDATABLE)
    for check in ("check_environment", "check_templates", "check_stack", "check_change_set"):
        monkeypatch.setattr(planfile, check, lambda *a, **kw: None)
    monkeypatch.setattr(changeset, "describe", lambda aws, cs_id, kind: (SimpleNamespace(empty=False), {}))
    monkeypatch.setattr(lifecycle, "render", lambda env: SimpleNamespace(children=[]))
    monkeypatch.setattr(roll_order, "missing_order", lambda aws, rendering, root: MISSING)
    said = []
    run = lambda: lifecycle.deploy_planned(steps.aws, planned, source="dev.yaml", confirm=lambda cs: True,  # noqa: E731
                                           on_progress=said.append, allow_quorum_loss=allow)
    if allow:
        run()
        assert steps.calls[-1] == ("run", UPDATABLE)
    else:
        with pytest.raises(DeployError, match="lacks the roll order.*without the plan file.*--allow-quorum-loss"):
            run()
        assert not any(call[0] == "run" for call in steps.calls)
    assert isinstance(said[0], RollOrderMissing) and said[0].recording is False
