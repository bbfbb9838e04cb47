"""The README's CI snippet, as written, run by bash against the session's moto server: the block
right after the line ``<!-- run-by-test: ci -->`` in README.md. A ``k3s-infra`` on PATH runs the real CLI and logs each
call with its exit code, so the test sees what the snippet did: render, lint, plan exit 2
(changes) then deploy of the plan file, status; on a second run plan exit 0 and no deploy;
for an environment of another account plan exit 1, read as an error (Terraform's plan
-detailed-exitcode: 0 no changes, 1 error, 2 changes,
https://developer.hashicorp.com/terraform/cli/commands/plan). The deploy executed the planned
change set: its ExecutionStatus is EXECUTE_COMPLETE.

checkov is replaced by a stand-in that reports no failed check in checkov's JSON shape
(k3s_infra/render/checkov.py reads ``results.failed_checks``): lint's checkov step has its own
tests, and the real one takes 11 s per run here."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- run-by-test: ci -->"
SOURCE = ROOT / "README.md"
ENVIRONMENT = "ci-snippet"
STACK = "k3s-ci-snippet"
POOL = {"name": "general", "instance_types": ["t3.small"], "min_size": 1, "desired": 1, "max_size": 1,
        "root_volume_gb": 30}


def snippet() -> str:
    """The fenced block right after the marker line."""
    lines = SOURCE.read_text(encoding="utf-8").splitlines()
    start = lines.index(MARKER) + 1
    assert lines[start].startswith("```"), f"{SOURCE}: no fenced block right after {MARKER}"
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
    return "\n".join(lines[start + 1:end]) + "\n"


@pytest.fixture(scope="module")
def project(write_env, tmp_path_factory):
    """A CI checkout: environments/<name>.yaml, and a bin folder with the logging k3s-infra and
    the checkov stand-in."""
    folder = tmp_path_factory.mktemp("ci")
    (folder / "environments").mkdir()
    document = yaml.safe_load(write_env("ci-snippet-source.yaml", deploy={"stack_name": STACK}, agent_pools=[POOL],
                                        servers={"count": 1}).read_text())
    (folder / "environments" / f"{ENVIRONMENT}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    other = {**document, "account_id": "210987654321"}
    (folder / "environments" / "ci-other-account.yaml").write_text(yaml.safe_dump(other, sort_keys=False))
    tools = folder.parent / f"{folder.name}-bin"
    tools.mkdir()
    log = folder.parent / f"{folder.name}-calls.log"
    (tools / "k3s-infra").write_text(
        "#!/bin/bash\n"
        f"{shlex.quote(sys.executable)} -m k3s_infra \"$@\"\n"
        "code=$?\n"
        f"echo \"$* -> $code\" >> {shlex.quote(str(log))}\n"
        "exit $code\n")
    (tools / "checkov").write_text('#!/bin/bash\necho \'{"results": {"failed_checks": []}}\'\n')
    for tool in tools.iterdir():
        tool.chmod(0o755)
    return folder, tools, log


def run(project, environment: str) -> tuple[subprocess.CompletedProcess, list[tuple[str, int]]]:
    folder, tools, log = project
    log.write_text("")
    result = subprocess.run(["bash", "-c", snippet()], cwd=folder, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
                                 "K3S_ENV": environment, "K3S_INFRA_CHECKOV": str(tools / "checkov")})
    calls = [(line.rsplit(" -> ", 1)[0], int(line.rsplit(" -> ", 1)[1])) for line in log.read_text().splitlines()]
    return result, calls


def test_changes_are_planned_then_exactly_that_change_set_deployed(project, aws):
    result, calls = run(project, ENVIRONMENT)
    assert result.returncode == 0, result
    assert calls == [(f"render --env {ENVIRONMENT}", 0), (f"lint --env {ENVIRONMENT}", 0),
                     (f"plan --env {ENVIRONMENT} --detailed-exitcode --out plan.json", 2),
                     ("deploy plan.json --yes", 0), (f"status --env {ENVIRONMENT} --output json", 0)], result
    folder = project[0]
    planned = json.loads((folder / "plan.json").read_text())
    executed = aws.cloudformation.describe_change_set(ChangeSetName=planned["change_set_id"])
    assert (executed["StackName"], executed["ExecutionStatus"]) == (STACK, "EXECUTE_COMPLETE")
    status = json.loads((folder / "status.json").read_text())
    assert (status["kind"], status["stack_name"], status["healthy"]) == ("status", STACK, True)


def test_nothing_to_change_deploys_nothing(project):
    result, calls = run(project, ENVIRONMENT)
    assert result.returncode == 0, result
    assert (f"plan --env {ENVIRONMENT} --detailed-exitcode --out plan.json", 0) in calls
    assert not [call for call in calls if call[0].startswith("deploy")]
    assert "nothing to change" in result.stdout


def test_a_plan_that_fails_stops_the_pipeline_with_its_exit_code(project):
    result, calls = run(project, "ci-other-account")
    assert result.returncode == 1, result
    assert calls[-1] == ("plan --env ci-other-account --detailed-exitcode --out plan.json", 1)  # an error, not "changes"
    assert "plan failed (exit 1)" in result.stderr and "configured for account 210987654321" in result.stderr
