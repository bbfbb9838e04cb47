"""Re-run mutmut's survivors against the tests its fast run leaves out.

`make mutate` keeps mutmut's per-mutant runs fast by ignoring the slow test files
(`setup.cfg [mutmut] pytest_add_cli_args`: the boot sandbox, cfn-lint, the CLI builds).
A survivor there may still be killed by one of them, so this runs exactly those files
(never tests/e2e, checkov or the boot.sh mutations) with each survivor active, in
mutmut's `mutants/` copy, and prints which survive everything.

Mutants that change nothing but an IAM statement's ``Sid`` (its text, or the Sid dropped)
are reported as equivalent without a run: a Sid is an optional label that IAM does not
evaluate (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_sid.html),
and mutmut's replacements (``XX..XX``, case changes) stay valid, unique identifiers.

    .venv/bin/python tests/mutation/mutation_recheck.py ['k3s_infra.components.iam*']
    .venv/bin/python tests/mutation/mutation_recheck.py --not-sid-only 'k3s_infra.components.iam*'
    .venv/bin/python tests/mutation/mutation_recheck.py --tests tests/a.py,tests/b.py ['pattern']
"""

from __future__ import annotations

import ast
import configparser
import fnmatch
import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MUTANTS = ROOT / "mutants"
NEVER = ("tests/e2e", "tests/properties/test_checkov_clean.py", "tests/unit/render/test_checkov.py",
         "tests/mutation/test_boot_mutations.py", "tests/properties/test_wheel_contents.py")


def left_out_by_mutmut() -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    args = parser["mutmut"]["pytest_add_cli_args"].split()
    ignored = [a.removeprefix("--ignore=") for a in args if a.startswith("--ignore=")]
    return [path for path in ignored if path not in NEVER]


def survivors(pattern: str) -> list[str]:
    found = []
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        for name, exit_code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if exit_code == 0 and fnmatch.fnmatch(name, pattern):
                found.append(name)
    return found


SID = re.compile(r'Sid=f?"[^"]*",\s*|Sid=None,\s*')


@functools.cache
def function_bodies(source_file: Path) -> dict[str, str]:
    lines = source_file.read_text().splitlines()
    return {node.name: "\n".join(lines[node.lineno:node.end_lineno])  # without the def line
            for node in ast.walk(ast.parse("\n".join(lines))) if isinstance(node, ast.FunctionDef)}


def only_a_sid_changes(name: str) -> bool:
    """Whether mutant ``name`` differs from its original function only in a Sid."""
    module, _, function = name.rpartition(".")
    bodies = function_bodies(MUTANTS / (module.replace(".", "/") + ".py"))
    original = bodies[function.rsplit("__mutmut_", 1)[0] + "__mutmut_orig"]
    return SID.sub("", original) == SID.sub("", bodies[function])


def killed_by_left_out_tests(name: str, tests: list[str]) -> bool:
    env = dict(os.environ, MUTANT_UNDER_TEST=name)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                          cwd=MUTANTS, env=env, capture_output=True, text=True)
    return proc.returncode == 1


def all_mutants(pattern: str) -> list[str]:
    return [name for meta in sorted(MUTANTS.rglob("*.py.meta"))
            for name in json.loads(meta.read_text())["exit_code_by_key"] if fnmatch.fnmatch(name, pattern)]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--not-sid-only"]:
        # The names `mutmut run` needs to skip the Sid-only mutants: mutmut run $(... --not-sid-only 'x*')
        print(" ".join(name for name in all_mutants(argv[1]) if not only_a_sid_changes(name)))
        return 0
    tests = left_out_by_mutmut()
    if argv[:1] == ["--tests"]:
        # Tests written after mutmut copied the tree: copy them into mutants/tests first.
        tests, argv = argv[1].split(","), argv[2:]
    pattern = argv[0] if argv else "*"
    names = survivors(pattern)
    labels = [name for name in names if only_a_sid_changes(name)]
    still = []
    for index, name in enumerate(names, 1):
        if name in labels:
            verdict = "sid only"
        else:
            verdict = "killed" if killed_by_left_out_tests(name, tests) else "survived"
        print(f"{index:>4}/{len(names)}  {verdict:<8}  {name}", flush=True)
        if verdict == "survived":
            still.append(name)
    print(f"{len(names)} mutmut survivors: {len(labels)} change only an IAM Sid, "
          f"{len(names) - len(labels) - len(still)} killed by the left-out tests, {len(still)} survive everything")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
