"""k3s-infra upgrade (cli/upgrade.py): the pre-flight's findings decide, and nothing reaches the deploy
around them. The pre-flight's rules have their own tests (tests/unit/deploy/test_upgrade_checks.py);
here the library is replaced at its edges (the pre-flight's result, the deploy, the network pre-flight,
the API) and the real command runs: flags, exit codes (docs/commands.md "Exit codes": 1 refused or
failed, 2 bad input), the table, the JSON document, the override of k3s.version and --write."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from k3s_infra.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, arguments, main
from k3s_infra.cli import upgrade as cli_upgrade
from k3s_infra.cli import upgrade_gate
from k3s_infra.config import ENVIRONMENTS_DIR
from k3s_infra.deploy import DeployError, upgrade_checks
from k3s_infra.deploy.lifecycle import DeployResult
from k3s_infra.deploy.upgrade_checks import Finding, Preflight, Running

TARGET = "v1.34.12+k3s1"
OK = tuple(Finding(rule, "ok", f"{rule} fine", source) for rule, source in upgrade_checks.RULES.items())
# An environment file of its own (as `k3s-infra init` writes one): k3s.version on its own line, commented.
ENV_FILE = (ENVIRONMENTS_DIR / "dev.yaml").read_text().replace("extends: defaults.yaml", "extends: defaults.yaml\n"
    "k3s:\n  # pinned after the last upgrade review\n  version: \"v1.33.5+k3s1\"  # keep in step with prod\n"
    "  flannel_backend: vxlan")


def refusing(rule: str) -> tuple[Finding, ...]:
    return tuple(Finding(f.rule, "refuse", f"{rule} says no", f.source) if f.rule == rule else f for f in OK)


@pytest.fixture
def edges(monkeypatch):
    """The AWS account check, the pre-flight, the network pre-flight, the deploy and the API, recorded."""
    calls: list[tuple] = []
    state = {"findings": OK, "running": "v1.33.5+k3s1", "outcome": "deployed"}

    def checks(aws, target, *, min_snapshot_minutes):
        calls.append(("checks", aws.env.k3s.version, target, min_snapshot_minutes))
        if isinstance(state["findings"], Exception):
            raise state["findings"]
        return Preflight(target, (Running("the stack's pinned binary", state["running"]),), state["findings"])

    def deploy(aws, **kwargs):
        calls.append(("deploy", aws.env.k3s.version, sorted(kwargs)))
        return DeployResult(aws.env.stack_name, state["outcome"], "UPDATE_COMPLETE" if state["outcome"] == "deployed"
                            else "UPDATE_ROLLBACK_COMPLETE")

    class Api:
        server = "https://k3s-dev-api.example:6443"

        def get(self, path):
            items = [{"metadata": {"name": "i-0a1", "labels": {"node-role.kubernetes.io/control-plane": "true"}},
                      "status": {"nodeInfo": {"kubeletVersion": TARGET},
                                 "conditions": [{"type": "Ready", "status": "True"}]}}]
            return 200, json.dumps({"kind": "NodeList", "items": items})

    monkeypatch.setattr("k3s_infra.cli.aws.check_account", lambda aws: "123456789012")
    monkeypatch.setattr(cli_upgrade.upgrade_checks, "run", checks)
    monkeypatch.setattr(cli_upgrade.preflight, "gate",
                        lambda aws, **kw: calls.append(("gate", aws.env.k3s.version, kw["skip"])))
    monkeypatch.setattr(cli_upgrade.lifecycle, "deploy", deploy)
    monkeypatch.setattr(cli_upgrade.kubeapi, "admin", lambda aws: Api())
    return calls, state


def kinds(calls) -> list[str]:
    return [call[0] for call in calls]


# --- bad input: exit 2, nothing read --------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["--to", "1.34.12"], ["--to", "v1.34.12+k3s1", "--min-snapshot-age", "0"],
    ["--to", "v1.34.12+k3s1", "--skip-check", "version-skew"],  # never skippable
    ["--to", "v1.34.12+k3s1", "--skip-check", "snapshots"],
])
def test_bad_input_is_exit_2_before_anything_is_read(edges, capsys, argv):
    calls, _ = edges
    try:
        code = main(["upgrade", "--env", "dev", "--yes", *argv])
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    assert code == EXIT_USAGE and calls == []


def test_the_rules_a_flag_may_skip_are_all_but_version_skew():
    action = next(a for a in arguments.parser()._subparsers._group_actions[0].choices["upgrade"]._actions
                  if "--skip-check" in a.option_strings)
    assert tuple(action.choices) == cli_upgrade.SKIPPABLE == tuple(r for r in upgrade_checks.RULES
                                                                     if r != "version-skew")


# --- a refusal: exit 1, no deploy ----------------------------------------------------------------

@pytest.mark.parametrize("rule", list(upgrade_checks.RULES))
def test_any_refusal_stops_before_the_deploy(edges, capsys, rule):
    calls, state = edges
    state["findings"] = refusing(rule)
    assert main(["upgrade", "--env", "dev", "--to", TARGET, "--yes"]) == EXIT_FAILED
    assert kinds(calls) == ["checks"]  # no network pre-flight, no deploy
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.strip().startswith(rule))
    assert row.split()[:2] == [rule, "refuse"] and f"{rule} says no" in row
    assert "refused: nothing was changed" in out


def test_skipping_another_rule_does_not_let_a_refusal_through(edges):
    calls, state = edges
    state["findings"] = refusing("etcd-health")
    assert main(["upgrade", "--env", "dev", "--to", TARGET, "--yes", "--skip-check", "snapshot-age"]) == EXIT_FAILED
    assert "deploy" not in kinds(calls)


def test_a_pre_flight_that_cannot_run_deploys_nothing(edges, capsys):
    calls, state = edges
    state["findings"] = DeployError("k3s-dev is not deployed: 'k3s-infra deploy' creates it at k3s.version")
    assert main(["upgrade", "--env", "dev", "--to", TARGET, "--yes"]) == EXIT_FAILED
    assert kinds(calls) == ["checks"] and "not deployed" in capsys.readouterr().err


def test_the_refusal_as_json(edges, capsys):
    _, state = edges
    state["findings"] = refusing("removed-apis")
    assert main(["upgrade", "--env", "dev", "--to", TARGET, "--yes", "--output", "json"]) == EXIT_FAILED
    doc = json.loads(capsys.readouterr().out)
    assert (doc["kind"], doc["version"], doc["outcome"], doc["target"]) == ("upgrade", 1, "refused", TARGET)
    assert doc["deploy"] is None and doc["nodes"] == []
    assert doc["running"] == [{"where": "the stack's pinned binary", "version": "v1.33.5+k3s1"}]
    assert [set(f) for f in doc["findings"]] == [{"rule", "verdict", "message", "source", "skipped"}] * len(OK)
    refused = [f for f in doc["findings"] if f["verdict"] == "refuse"]
    assert refused == [{"rule": "removed-apis", "verdict": "refuse", "message": "removed-apis says no",
                        "source": upgrade_checks.RULES["removed-apis"], "skipped": False}]


# --- a skipped refusal: said loudly, then the deploy -----------------------------------------------

def test_a_skipped_refusal_is_loud_and_the_upgrade_goes_on(edges, capsys):
    calls, state = edges
    state["findings"] = refusing("snapshot-age")
    argv = ["upgrade", "--env", "dev", "--to", TARGET, "--yes", "--skip-check", "snapshot-age", "--output", "json"]
    assert main(argv) == EXIT_OK
    captured = capsys.readouterr()
    assert "WARNING: snapshot-age refused and is SKIPPED (--skip-check snapshot-age)" in captured.err
    doc = json.loads(captured.out)
    assert [f["skipped"] for f in doc["findings"] if f["rule"] == "snapshot-age"] == [True]
    assert doc["outcome"] == "deployed" and kinds(calls) == ["checks", "gate", "deploy"]


# --- the upgrade ------------------------------------------------------------------------------------

def test_the_deploy_runs_at_the_target_version_and_the_file_stays(edges, capsys, tmp_path):
    calls, _ = edges
    path = tmp_path / "dev.yaml"
    path.write_text(ENV_FILE)
    assert main(["upgrade", "--config", str(path), "--to", TARGET, "--yes", "--min-snapshot-age", "30"]) == EXIT_OK
    assert calls[0] == ("checks", "v1.33.5+k3s1", TARGET, 30)  # the file's environment, checked first
    assert calls[1] == ("gate", TARGET, False)
    assert calls[2] == ("deploy", TARGET, ["artifacts_dir", "confirm", "force_unlock", "on_progress"])
    assert path.read_text() == ENV_FILE
    out = capsys.readouterr().out
    assert f"now set k3s.version: {TARGET} in {path}" in out
    node_row = next(line for line in out.splitlines() if "i-0a1" in line)
    assert node_row.split() == ["i-0a1", "server", TARGET, "yes"]


def test_already_at_the_target_deploys_nothing(edges, capsys):
    calls, state = edges
    state["running"] = TARGET
    assert main(["upgrade", "--env", "dev", "--to", TARGET, "--yes"]) == EXIT_OK
    assert kinds(calls) == ["checks"] and f"already runs {TARGET}" in capsys.readouterr().out


def test_a_failed_roll_is_exit_1_and_writes_nothing(edges, tmp_path):
    calls, state = edges
    state["outcome"] = "failed"
    path = tmp_path / "dev.yaml"
    path.write_text(ENV_FILE)
    assert main(["upgrade", "--config", str(path), "--to", TARGET, "--yes", "--write"]) == EXIT_FAILED
    assert path.read_text() == ENV_FILE


def test_write_changes_the_version_and_nothing_else(edges, tmp_path):
    path = tmp_path / "dev.yaml"
    path.write_text(ENV_FILE)
    assert main(["upgrade", "--config", str(path), "--to", TARGET, "--yes", "--write"]) == EXIT_OK
    assert path.read_text() == ENV_FILE.replace('version: "v1.33.5+k3s1"', f'version: "{TARGET}"')


def test_write_refuses_a_file_that_does_not_set_the_version_itself(edges, capsys):
    calls, _ = edges  # environments/dev.yaml inherits k3s.version from defaults.yaml
    assert main(["upgrade", "--env", "dev", "--to", TARGET, "--yes", "--write"]) == EXIT_USAGE
    assert calls == [] and "sets no k3s.version on a line of its own" in capsys.readouterr().err


@pytest.mark.parametrize("text, line", [
    ("k3s:\n  version: v1.33.5+k3s1\n", 1),
    ("name: x\nk3s:\n  # comment\n\n  cluster_cidr: 10.42.0.0/16\n  version: 'v1.33.5+k3s1'\nservers: {}\n", 5),
    ("k3s:\n  etcd_snapshots:\n    version: v1\n  version: v1.33.5+k3s1\n", 3),  # a nested key is not it
])
def test_the_version_line_is_the_k3s_blocks_own(text, line):
    assert cli_upgrade.version_line(text, "x.yaml") == line


@pytest.mark.parametrize("text", ["k3s: {version: v1.33.5+k3s1}\n", "k3s:\n  disable: [traefik]\nversion: v1\n",
                                  "agents:\n  version: v1.33.5+k3s1\n"])
def test_no_version_line_of_its_own(text):
    with pytest.raises(cli_upgrade.UsageError):
        cli_upgrade.version_line(text, "x.yaml")


def test_json_of_a_deployed_upgrade(edges, capsys):
    assert main(["upgrade", "--env", "dev", "--to", TARGET, "--yes", "-o", "json"]) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    assert doc["outcome"] == "deployed" and doc["deploy"]["status"] == "UPDATE_COMPLETE"
    assert doc["nodes"] == [{"name": "i-0a1", "role": "server", "version": TARGET, "ready": True}]


def test_json_needs_yes(edges, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    assert main(["upgrade", "--env", "dev", "--to", TARGET, "-o", "json"]) == EXIT_USAGE


def test_only_the_pre_flight_leads_to_the_deploy():
    """A reviewer's question, asked of the source: cli/upgrade.py calls the deploy in one place,
    ``proceed``, which the pre-flight's result reaches only through ``run``'s action."""
    source = Path(cli_upgrade.__file__).read_text()
    assert source.count("lifecycle.deploy(") == 1 and source.count("proceed(") == 2
    body = source[source.index("def proceed("):source.index("def finish(")]
    assert body.index("checked.blocking(skip)") < body.index("lifecycle.deploy(")


# --- plan and deploy after an edit of k3s.version (cli/upgrade_gate.py) -------------------------------

@pytest.mark.parametrize("checked, passes", [
    (None, True),  # nothing to upgrade
    (upgrade_checks.UNKNOWN, True),  # the pinned version unreadable: said, not checked
    (Preflight(TARGET, (Running("the stack's pinned binary", "v1.33.5+k3s1"),), OK), True),
    (Preflight(TARGET, (Running("the stack's pinned binary", "v1.33.5+k3s1"),), refusing("etcd-health")), False),
])
def test_the_gate_plan_and_deploy_take(monkeypatch, capsys, checked, passes):
    monkeypatch.setattr(upgrade_gate.upgrade_checks, "for_plan", lambda aws, **kw: checked)
    aws = SimpleNamespace(env=SimpleNamespace(k3s=SimpleNamespace(version=TARGET)))
    if passes:
        upgrade_gate.version_change_gate(aws)
    else:
        with pytest.raises(DeployError, match="upgrade pre-flight refused"):
            upgrade_gate.version_change_gate(aws)
    out = capsys.readouterr().out
    assert ("etcd-health says no" in out) is (not passes)
    assert ("the upgrade pre-flight" in out) is (checked not in (None, upgrade_checks.UNKNOWN))
    assert ("is not checked here" in out) is (checked == upgrade_checks.UNKNOWN)


def test_the_nodes_table_lists_servers_first_and_marks_who_is_not_there_yet():
    rows = [{"name": "ip-10-0-1-21", "role": "agent", "version": "v1.33.5+k3s1", "ready": False},
            {"name": "ip-10-0-2-12", "role": "server", "version": TARGET, "ready": True},
            {"name": "ip-10-0-1-11", "role": "server", "version": TARGET, "ready": True}]
    lines = cli_upgrade.nodes_lines(rows, TARGET)
    assert [line.split()[0] for line in lines[2:]] == ["ip-10-0-1-11", "ip-10-0-2-12", "ip-10-0-1-21"]
    assert lines[-1].split() == ["ip-10-0-1-21", "agent", "v1.33.5+k3s1", "(not", "yet)", "NO"]
    assert cli_upgrade.nodes_lines([{"error": "timed out"}], TARGET) == ["nodes not listed: timed out"]
