"""``plan --out`` then ``deploy PLANFILE`` against the session's moto server (moto 5.2.5
executes a change set made by an earlier process: ExecuteChangeSet by its ARN). The plan keeps
its change set; an environment file edited since is refused; the deploy executes that change
set; the same plan file again is refused (the stack moved on), and kept.
The tests run in file order."""

from __future__ import annotations

import json
import shutil
import stat

import pytest

STACK = "k3s-plan-file"
POOL = {"name": "general", "instance_types": ["t3.small"], "min_size": 1, "desired": 1, "max_size": 1,
        "root_volume_gb": 30}


@pytest.fixture(scope="module")
def config(write_env, tmp_path_factory):
    copy = tmp_path_factory.mktemp("plan-file") / "dev.yaml"
    shutil.copy(write_env("plan-file.yaml", deploy={"stack_name": STACK}, agent_pools=[POOL], servers={"count": 1}),
                copy)
    return copy


@pytest.fixture(scope="module")
def plan_file(config):
    return config.parent / "plan.json"


def test_plan_out_keeps_the_change_set(cli, config, plan_file, aws):
    result = cli("plan", "--config", str(config), "--detailed-exitcode", "--out", str(plan_file), "-o", "json")
    assert result.code == 2, result
    kept = json.loads(plan_file.read_text())
    assert json.loads(result.out)["change_set_id"] == kept["change_set_id"]
    assert stat.S_IMODE(plan_file.stat().st_mode) == 0o600
    described = aws.cloudformation.describe_change_set(ChangeSetName=kept["change_set_id"])
    assert (described["Status"], described["ExecutionStatus"]) == ("CREATE_COMPLETE", "AVAILABLE")


def test_an_environment_file_edited_since_the_plan_is_refused(cli, config, plan_file, aws):
    original = config.read_text()
    config.write_text(original + "# edited after the review\n")
    try:
        refused = cli("deploy", str(plan_file), "--yes")
    finally:
        config.write_text(original)
    assert refused.code == 1 and f"{config} changed since the plan; plan again" in refused.err, refused
    assert aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "REVIEW_IN_PROGRESS"


def test_deploy_planfile_executes_that_change_set(cli, plan_file, aws):
    result = cli("deploy", str(plan_file), "--yes", "-o", "json")
    assert result.code == 0, result
    kept = json.loads(plan_file.read_text())
    assert json.loads(result.out)["change_set_id"] == kept["change_set_id"]
    described = aws.cloudformation.describe_change_set(ChangeSetName=kept["change_set_id"])
    assert described["ExecutionStatus"] == "EXECUTE_COMPLETE"


def test_the_same_plan_again_is_refused_and_kept(cli, plan_file):
    refused = cli("deploy", str(plan_file), "--yes")
    assert refused.code == 1 and "changed since the plan" in refused.err, refused
    assert plan_file.is_file()
