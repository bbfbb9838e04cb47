"""Every command that takes ``--output json`` prints exactly one JSON document on stdout, on
success and on error (issue 26 item 4), against the session's moto server through the real
CLI. The commands come from the parser, so a new one with --output is listed here or fails.
The success cases run in a cluster's order (render ... deploy ... destroy, file order); the
error cases are a file that does not exist (commands without AWS), an environment of another
account (read-only AWS commands: exit 2, before any call) and the stack's lock held by
another run (deploy, destroy: exit 1). The shapes: docs/commands.md "JSON output"."""

from __future__ import annotations

import argparse
import json

import pytest

from k3s_infra.cli import arguments
from k3s_infra.deploy import lock
from k3s_infra.deploy.aws import Aws
from k3s_infra.config import load_environment

STACK = "k3s-json-doc"
POOL = {"name": "general", "instance_types": ["t3.small"], "min_size": 1, "desired": 1, "max_size": 1,
        "root_volume_gb": 30}
# The argv of a success, {config} and {out} filled in, and what its document says.
SUCCESS = {
    "render": (["render", "--config", "{config}", "--out", "{out}"], {}),
    "lint": (["lint", "--config", "{config}", "--no-checkov"], {}),
    "estimate": (["estimate", "--config", "{config}"], {"stack_name": STACK}),
    "plan": (["plan", "--config", "{config}"], {"stack_name": STACK, "change_set_type": "CREATE", "has_changes": True}),
    "deploy": (["deploy", "--config", "{config}", "--yes"], {"stack_name": STACK, "outcome": "deployed"}),
    "status": (["status", "--config", "{config}"], {"stack_name": STACK, "deployed": True, "healthy": True}),
    "snapshots": (["snapshots", "--config", "{config}"], {"stack_name": STACK, "snapshots": []}),
    "diff": (["diff", "--config", "{config}"], {"stack_name": STACK, "has_changes": False}),
    "destroy": (["destroy", "--config", "{config}", "--yes"], {"stack_name": STACK, "outcome": "destroyed",
                                                               "status": "DELETE_COMPLETE"}),
}
COVERED_ELSEWHERE = {"upgrade": "tests/e2e/test_upgrade.py",  # needs a running cluster's nodes to answer
                     "drill": "tests/e2e/test_drill.py"}  # needs a restoring node and snapshots standing in
LOCKED = {"deploy", "destroy"}  # their error case: another run holds the stack's lock
WITHOUT_AWS = {"render", "lint", "estimate"}


def _with_json_output() -> list[str]:
    (commands,) = [a for a in arguments.parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return [name for name, sub in commands.choices.items()
            if any("--output" in action.option_strings for action in sub._actions)]


def one_document(stdout: str) -> dict:
    document, end = json.JSONDecoder().raw_decode(stdout)
    assert stdout[end:].strip() == "", f"more than one document: {stdout[end:]!r}"
    return document


@pytest.fixture(scope="module")
def config(write_env):
    return str(write_env("json-doc.yaml", deploy={"stack_name": STACK}, agent_pools=[POOL], servers={"count": 1}))


@pytest.fixture(scope="module")
def other_account(write_env):
    return str(write_env("json-other.yaml", deploy={"stack_name": STACK}, account_id="210987654321"))


def test_every_command_with_json_output_has_a_success_case():
    assert set(_with_json_output()) == set(SUCCESS) | set(COVERED_ELSEWHERE)


@pytest.mark.parametrize("command", [c for c in SUCCESS])
def test_success_is_one_document(cli, config, tmp_path, command):
    argv, says = SUCCESS[command]
    result = cli(*[a.format(config=config, out=tmp_path / "out") for a in argv], "--output", "json")
    assert result.code == 0, result
    document = one_document(result.out)
    assert (document["kind"], document["version"]) == (command, 1)
    assert {k: document[k] for k in says} == says
    if command in ("deploy", "destroy"):  # the result and its time, from the root's own events; each
        # nested stack's wave needs their resource events in the root, which moto 5.2.5 does not
        # write (tests/unit/deploy/test_timings.py measures them from CloudFormation's)
        assert isinstance(document["waves"], list) and document["total_seconds"] is not None, document


@pytest.mark.parametrize("command", _with_json_output())
def test_an_error_is_one_document(cli, config, other_account, tmp_path, command):
    if command in LOCKED:
        held = lock.acquire(Aws(load_environment(path=config)), "restore")
        try:
            result = cli(command, "--config", config, "--yes", "--output", "json")
        finally:
            held.release()
        code, says = 1, f"is locked: restore by {held.holder.who}"
    elif command in WITHOUT_AWS or command in COVERED_ELSEWHERE:
        missing = str(tmp_path / "typo.yaml")
        result = cli(command, "--config", missing, "--output", "json",
                     *(["--to", "v1.33.5+k3s1", "--yes"] if command == "upgrade" else
                       ["--yes"] if command == "drill" else []))
        code, says = 2, "cannot read file"
    else:
        result = cli(command, "--config", other_account, "--output", "json")
        code, says = 2, "configured for account 210987654321"
    assert result.code == code, result
    document = one_document(result.out)
    assert (document["kind"], document["command"], document["exit_code"]) == ("error", command, code)
    assert says in document["problems"][0]["message"], document
    assert result.err.startswith("error: "), result
