"""Under ``--output json`` a command that fails still prints exactly one JSON document on
stdout, and nothing else there: ``{"kind": "error", "version": 1, "command", "exit_code",
"problems": [{"source", "path", "message"}], "hint"}`` (docs/commands.md "JSON output"); the
message for people stays on stderr. One test per kind of failure: a configuration file's
problems (each its own entry, from the file written here), a usage error, an AWS failure,
Ctrl-C (and Ctrl-C once CloudFormation runs the operation), a disk error and a bad flag."""

from __future__ import annotations

import json

import pytest
import yaml

from k3s_infra.cli import main
from k3s_infra.deploy import HandedOver


def one_document(stdout: str) -> dict:
    """stdout holds one JSON document and nothing else."""
    document, end = json.JSONDecoder().raw_decode(stdout)
    assert stdout[end:].strip() == "", stdout[end:]
    return document


def _error(stdout: str, command: str, code: int) -> dict:
    document = one_document(stdout)
    assert {k: document[k] for k in ("kind", "version", "command", "exit_code")} == \
        {"kind": "error", "version": 1, "command": command, "exit_code": code}
    assert document["problems"] and all(set(p) == {"source", "path", "message"} for p in document["problems"])
    return document


def test_a_configuration_file_with_two_problems_gives_two_entries(tmp_path, env_document, capsys):
    document = env_document("dev")
    document["region"] = "moon-1"
    document["k3s"]["no_such_key"] = True
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(document))
    assert main(["render", "--config", str(path), "--output", "json", "--out", str(tmp_path / "out")]) == 2
    out, err = capsys.readouterr()
    found = _error(out, "render", 2)
    assert {p["source"] for p in found["problems"]} == {str(path)}
    assert {"region", "k3s.no_such_key"} <= {p["path"] for p in found["problems"]}
    assert err.startswith(f"error: {path}:")
    assert not (tmp_path / "out").exists()


def test_a_file_that_does_not_exist(capsys, tmp_path):
    assert main(["render", "--config", str(tmp_path / "typo.yaml"), "-o", "json"]) == 2
    found = _error(capsys.readouterr().out, "render", 2)
    assert found["problems"][0]["source"] == str(tmp_path / "typo.yaml")


def test_a_usage_error(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    assert main(["deploy", "--env", "dev", "--output", "json"]) == 2
    found = _error(capsys.readouterr().out, "deploy", 2)
    assert "pass --yes" in found["problems"][0]["message"] and found["problems"][0]["source"] is None


@pytest.mark.parametrize("name, code, says", [
    ("AWS error", 1, "CreateChangeSet: AccessDenied: not authorized"),
    ("deploy error", 1, "is busy (UPDATE_IN_PROGRESS)"),
    ("pre-flight failure", 2, "vpc-0a1b2c3d4e5f60718 does not exist"),
    ("Ctrl-C", 130, "interrupted"),
])
def test_a_failure_of_the_command(outcome, capsys, name, code, says):
    outcome(name)
    assert main(["plan", "--env", "dev", "-o", "json"]) == code
    found = _error(capsys.readouterr().out, "plan", code)
    assert says in found["problems"][0]["message"]
    if name == "pre-flight failure":
        assert found["problems"][0]["path"] == "network.vpc_id" and found["hint"] == "nothing was changed"


def test_ctrl_c_once_cloudformation_runs_it_says_how_to_follow_it(outcome, capsys):
    outcome("handed over", HandedOver("k3s-dev", "UPDATE", "UPDATE_IN_PROGRESS", "eu-west-1"))
    assert main(["plan", "--env", "dev", "-o", "json"]) == 130
    out, err = capsys.readouterr()
    message = _error(out, "plan", 130)["problems"][0]["message"]
    assert "k3s-infra status --env dev --watch" in message and "cancel-update-stack --stack-name k3s-dev" in message
    assert err.count("CloudFormation carries on") == 1


def test_a_disk_error(outcome, capsys, monkeypatch, tmp_path):
    outcome("no changes")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "plan.json"))

    monkeypatch.setattr("k3s_infra.cli.plan.show", full)
    assert main(["plan", "--env", "dev", "-o", "json"]) == 1
    found = _error(capsys.readouterr().out, "plan", 1)
    assert found["problems"][0] == {"source": str(tmp_path / "plan.json"), "path": "",
                                    "message": "No space left on device"}


@pytest.mark.parametrize("detailed, code", [(False, 2), (True, 1)])
def test_a_bad_flag(capsys, detailed, code):
    with pytest.raises(SystemExit) as stopped:
        main(["plan", "--env", "dev", "--output", "json", "--no-such-flag"] + ["--detailed-exitcode"] * detailed)
    assert stopped.value.code == code
    out, err = capsys.readouterr()
    assert _error(out, "plan", code)["problems"][0]["message"] == "unrecognized arguments: --no-such-flag"
    assert "unrecognized arguments: --no-such-flag" in err  # argparse's usage, as without --output json


def test_without_json_nothing_is_on_stdout(capsys, tmp_path):
    assert main(["render", "--config", str(tmp_path / "typo.yaml")]) == 2
    assert capsys.readouterr().out == ""
