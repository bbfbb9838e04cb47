"""``plan --out PLANFILE`` and ``deploy PLANFILE`` (deploy/planfile.py, lifecycle.plan and
deploy_planned) through the real CLI over the strict Stubbers of the Rig
(tests/support/stack_stubs.py: DescribeStacks, DescribeChangeSet as the CloudFormation API
Reference shows them). The plan keeps its change set and records the stack as it was; the
deploy executes exactly that change set (no upload, no CreateChangeSet) and refuses, exit 1
with nothing changed and the plan file kept, when the stack, the change set or the
environment file moved on. A change set stops being executable once another operation ran
on its stack (ExecutionStatus OBSOLETE) or after it ran (EXECUTE_COMPLETE; CloudFormation
then deletes the stack's other change sets: ChangeSetNotFound),
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html,
API_ExecuteChangeSet.html."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from datetime import timedelta

import pytest

from k3s_infra.cli import plan as cli_plan
from k3s_infra.config import environment_file, load_environment
from k3s_infra.deploy import lifecycle
from tests.support.stack_stubs import CHANGE_SET, NESTED_CHANGE_SET, ROOT, T0, change_set, nested_change_set, stack
from tests.unit.deploy.test_stack_status_table import _change_set, _wait

ENV = load_environment("dev")
FAILED, REFUSED = 1, 1  # docs/commands.md "Exit codes": a refused plan file is a failure, not a usage error
UPDATED = (T0 + timedelta(minutes=5)).isoformat()  # stack_stubs.stack: an UPDATE_* stack's LastUpdatedTime


def _plan(rig, out, *flags: str, found: str = "UPDATE_COMPLETE", failed: str | None = None):
    """plan --out: the change set made and kept; the stack described once it exists."""
    rig.root(found)
    kind = "UPDATE" if found == "UPDATE_COMPLETE" else "CREATE"
    _change_set(rig, kind, failed=failed)
    if failed:  # nothing to change: deleted as without --out
        rig.cfn.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
    else:
        rig.by_id(found if kind == "UPDATE" else "REVIEW_IN_PROGRESS")
    return rig.run("plan", *(flags or ("--env", "dev")), "--out", str(out))


def test_plan_out_keeps_the_change_set_and_records_what_deploy_checks(rig, tmp_path):
    out = tmp_path / "plan.json"
    code, stdout, err = _plan(rig, out, "--env", "dev", "--detailed-exitcode")
    rig.check()
    assert code == 2 and "DeleteChangeSet" not in rig.effects
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert f"'k3s-infra deploy {out}' executes exactly this change set" in stdout
    kept = json.loads(out.read_text())
    assert (kept["kind"], kept["version"], kept["change_set_id"], kept["change_set_type"]) == \
        ("k3s-infra-plan", 1, CHANGE_SET, "UPDATE")
    assert (kept["stack_id"], kept["stack_status"], kept["stack_updated"]) == (ROOT, "UPDATE_COMPLETE", UPDATED)
    assert (kept["env"], kept["config"], kept["account_id"], kept["region"]) == ("dev", None, "123456789012",
                                                                                 "eu-west-1")
    assert kept["source_sha256"] == hashlib.sha256(environment_file("dev").read_bytes()).hexdigest()
    assert kept["templates"] == [{"file": c.file, "sha256": c.sha256,
                                  "url": f"https://{ENV.artifact_bucket}.s3.eu-west-1.amazonaws.com/{c.key}"}
                                 for c in lifecycle.render(ENV).children]  # the Rig's rendering of dev
    assert [c["logical_id"] for c in kept["changes"]] == ["Servers"]


def test_without_out_the_change_set_is_deleted_as_before(rig):
    rig.root("UPDATE_COMPLETE")
    _change_set(rig, "UPDATE")
    rig.cfn.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
    assert rig.run("plan", "--env", "dev")[0] == 0
    rig.check()


def test_a_plan_file_that_cannot_be_written_leaves_no_change_set(rig, tmp_path, monkeypatch):
    def full(path, text):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(cli_plan, "write_private", full)
    out = tmp_path / "plan.json"
    rig.root("UPDATE_COMPLETE")
    _change_set(rig, "UPDATE")
    rig.by_id("UPDATE_COMPLETE")
    rig.cfn.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
    code, _, err = rig.run("plan", "--env", "dev", "--out", str(out))
    rig.check()
    assert code == FAILED and "No space left on device" in err and not out.exists()


def test_plan_out_refuses_to_overwrite_a_file_it_did_not_write_before_any_aws_call(rig, tmp_path):
    out = tmp_path / "notes.txt"
    out.write_text("my notes")
    code, _, err = rig.run("plan", "--env", "dev", "--out", str(out))
    assert code == 2 and "not an output of this command" in err and out.read_text() == "my notes"
    _nothing_asked(rig)


def _nothing_asked(rig) -> None:
    """Not even the account check: the GetCallerIdentity the Rig queued is still there."""
    with pytest.raises(AssertionError):
        rig.stubs["sts"].assert_no_pending_responses()
    assert not rig.errors


def _executes(rig, kind="UPDATE"):
    """deploy PLANFILE: the stack as planned, the change set AVAILABLE, then the execute."""
    rig.by_id("UPDATE_COMPLETE" if kind == "UPDATE" else "REVIEW_IN_PROGRESS")  # as the plan saw it
    rig.cfn.add_response("describe_change_set", change_set(kind), {"ChangeSetName": CHANGE_SET})
    rig.cfn.add_response("describe_change_set", nested_change_set(), {"ChangeSetName": NESTED_CHANGE_SET})
    rig.resources()  # Watcher.prime
    rig.events()
    rig.by_id("UPDATE_COMPLETE" if kind == "UPDATE" else "REVIEW_IN_PROGRESS")  # still, right before the execute
    rig.cfn.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET})
    _wait(rig, [f"{kind}_COMPLETE"])
    rig.by_id(f"{kind}_COMPLETE", outputs=True)


def test_deploy_planfile_executes_exactly_the_planned_change_set(rig, tmp_path):
    out = tmp_path / "plan.json"
    assert _plan(rig, out)[0] == 0
    rig.effects.clear()
    _executes(rig)
    code, stdout, err = rig.run("deploy", str(out), "--yes", "--output", "json")
    rig.check()
    assert code == 0, err
    assert rig.effects == ["servers ready checked", "ExecuteChangeSet", "protection set",  # no upload, no CreateChangeSet
                           "nodes awaited"]
    document = json.loads(stdout)
    assert (document["outcome"], document["change_set_id"], document["plan_file"]) == ("deployed", CHANGE_SET,
                                                                                       str(out))


def _refused(rig, out, *flags: str):
    code, stdout, err = rig.run("deploy", str(out), "--yes", *flags)
    rig.check()
    assert code == REFUSED, (stdout, err)
    assert not {"ExecuteChangeSet", "DeleteChangeSet", "CreateChangeSet"} & set(rig.effects)
    assert out.is_file()  # kept: the refusal says why, the plan stays for inspection
    return err


@pytest.mark.parametrize("now, says", [
    (stack("UPDATE_IN_PROGRESS"), "changed since the plan (UPDATE_COMPLETE"),
    ({**stack("UPDATE_COMPLETE"), "LastUpdatedTime": T0 + timedelta(hours=2)}, "changed since the plan"),
    ({**stack("UPDATE_COMPLETE"), "StackStatus": "UPDATE_ROLLBACK_COMPLETE"}, "UPDATE_ROLLBACK_COMPLETE"),
    ({**stack("DELETE_COMPLETE")}, "gone or was replaced"),
], ids=["running", "updated-since", "rolled-back", "deleted"])
def test_deploy_planfile_refuses_a_stack_that_changed_since_the_plan(rig, tmp_path, now, says):
    out = tmp_path / "plan.json"
    _plan(rig, out)
    rig.effects.clear()
    rig.cfn.add_response("describe_stacks", {"Stacks": [now]}, {"StackName": ROOT})
    assert says in _refused(rig, out)


@pytest.mark.parametrize("answer, says", [
    ({"error": "ChangeSetNotFound"}, "no longer exists"),
    ({"ExecutionStatus": "OBSOLETE"}, "CREATE_COMPLETE/OBSOLETE"),
    ({"ExecutionStatus": "EXECUTE_COMPLETE"}, "CREATE_COMPLETE/EXECUTE_COMPLETE"),
], ids=["gone", "obsolete", "executed"])
def test_deploy_planfile_refuses_a_change_set_that_can_no_longer_run(rig, tmp_path, answer, says):
    out = tmp_path / "plan.json"
    _plan(rig, out)
    rig.effects.clear()
    rig.by_id("UPDATE_COMPLETE")
    if "error" in answer:
        rig.cfn.add_client_error("describe_change_set", "ChangeSetNotFound",
                                 f"ChangeSet [{CHANGE_SET}] does not exist", 404,
                                 expected_params={"ChangeSetName": CHANGE_SET})
    else:
        rig.cfn.add_response("describe_change_set", {**change_set("UPDATE"), **answer},
                             {"ChangeSetName": CHANGE_SET})
        rig.cfn.add_response("describe_change_set", nested_change_set(), {"ChangeSetName": NESTED_CHANGE_SET})
    assert says in _refused(rig, out)


def test_deploy_planfile_refuses_a_stack_that_changed_at_the_prompt_and_keeps_the_change_set(rig, tmp_path):
    """Checked again right before the execute: someone started an update while the plan waited."""
    out = tmp_path / "plan.json"
    _plan(rig, out)
    rig.effects.clear()
    rig.by_id("UPDATE_COMPLETE")
    rig.cfn.add_response("describe_change_set", change_set("UPDATE"), {"ChangeSetName": CHANGE_SET})
    rig.cfn.add_response("describe_change_set", nested_change_set(), {"ChangeSetName": NESTED_CHANGE_SET})
    rig.resources()
    rig.events()
    rig.by_id("UPDATE_IN_PROGRESS")
    assert "changed since the plan" in _refused(rig, out)


def test_deploy_planfile_refuses_an_environment_file_changed_since(rig, tmp_path):
    config = tmp_path / "dev.yaml"
    shutil.copy(environment_file("dev"), config)
    out = tmp_path / "plan.json"
    assert _plan(rig, out, "--config", str(config))[0] == 0
    rig.effects.clear()
    config.write_text(config.read_text() + "\n# reviewed? not this line\n")
    err = _refused(rig, out)
    assert f"{config} changed since the plan; plan again" in err


def test_a_plan_with_nothing_to_change_deploys_nothing(rig, tmp_path):
    out = tmp_path / "plan.json"
    code, stdout, _ = _plan(rig, out, failed="The submitted information didn't contain changes. Submit different "
                                             "information to create a change set.")
    assert code == 0 and json.loads(out.read_text())["change_set_id"] is None
    rig.effects.clear()
    rig.by_id("UPDATE_COMPLETE")
    code, stdout, _ = rig.run("deploy", str(out), "--yes")
    rig.check()
    assert code == 0 and "up to date" in stdout and rig.effects == ["protection set"]


@pytest.mark.parametrize("content, says", [
    ("{not json", "not JSON"),
    ('{"kind": "render-manifest"}', "not a plan file"),
    ('{"kind": "k3s-infra-plan", "version": 99}', "plan file version 99"),
    ('{"kind": "k3s-infra-plan", "version": 1}', "not a complete plan file"),
])
def test_a_file_that_is_no_plan_file_is_a_usage_error_before_any_aws_call(rig, tmp_path, content, says):
    out = tmp_path / "plan.json"
    out.write_text(content)
    code, _, err = rig.run("deploy", str(out), "--yes")
    assert code == 2 and says in err
    _nothing_asked(rig)


def test_deploy_needs_an_environment_or_a_plan_file(rig):
    code, _, err = rig.run("deploy", "--yes")
    assert code == 2 and "give --env NAME or --config PATH, or the PLANFILE" in err


def test_a_plan_file_that_lacks_a_field_says_which():
    """Cut short or edited by hand: refused as a usage error naming what is missing, never a traceback."""
    from k3s_infra.deploy.planfile import PlanFile, PlanFileError

    complete = PlanFile("dev", None, None, "dev", "a" * 64, "b" * 64, "123456789012", "eu-west-1", "k3s-dev", ROOT,
                        "UPDATE_COMPLETE", UPDATED, CHANGE_SET, "k3s-infra-20260102030405", "UPDATE", [], [], {}, [],
                        T0.isoformat())
    document = json.loads(complete.to_json())
    assert PlanFile.from_json(json.dumps(document), "plan.json") == complete
    del document["stack_id"], document["change_set_type"]
    with pytest.raises(PlanFileError, match=r"plan.json: not a complete plan file \(no change_set_type, stack_id\)"):
        PlanFile.from_json(json.dumps(document), "plan.json")
