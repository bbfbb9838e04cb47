"""Exit codes of ``plan`` and ``diff``, with and without ``--detailed-exitcode``, for every kind
of outcome, through ``main`` (parser, command module, error handling). The table is
Terraform's plan: "-detailed-exitcode: 0 = Succeeded with empty diff (no changes), 1 =
Error, 2 = Succeeded with non-empty diff (changes present)"
(https://developer.hashicorp.com/terraform/cli/commands/plan); without the flag,
docs/commands.md "Exit codes": 0 success, 1 failure, 2 a usage or configuration error,
130 interrupted. AWS is replaced by fakes below the command (the library's plan and diff,
pre-flight), so each row is only about how an outcome becomes a code."""

from __future__ import annotations

import pytest

from k3s_infra.cli import main

#            outcome            detailed  without (the outcomes: tests/unit/cli/conftest.py)
TABLE = {"no changes":          (0, 0),
         "changes":             (2, 0),
         "pre-flight failure":  (1, 2),
         "configuration error": (1, 2),
         "bad flag":            (1, 2),
         "AWS error":           (1, 1),
         "deploy error":        (1, 1),
         "Ctrl-C":              (1, 130)}


ROWS = [pytest.param(command, name, detailed, TABLE[name][0 if detailed else 1],
                     id=f"{command}-{name}-{'detailed' if detailed else 'plain'}")
        for command in ("plan", "diff") for name in TABLE for detailed in (True, False)
        if not (command == "diff" and name == "pre-flight failure")]  # diff is read-only: no pre-flight


@pytest.mark.parametrize("command, name, detailed, code", ROWS)
def test_exit_code(outcome, capsys, command, name, detailed, code):
    outcome(name)
    argv = [command, "--config", "missing.yaml"] if name == "configuration error" else [command, "--env", "dev"]
    argv += ["--detailed-exitcode"] * detailed + ["--no-such-flag"] * (name == "bad flag")
    if name == "bad flag":
        with pytest.raises(SystemExit) as stopped:
            main(argv)
        assert stopped.value.code == code
    else:
        assert main(argv) == code
    err = capsys.readouterr().err
    if name not in ("no changes", "changes"):
        assert err.strip(), "an error always says why on stderr"
    assert "Traceback" not in err
