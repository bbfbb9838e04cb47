"""k3s-infra lint: cfn-lint (in-process, one rule set) and checkov on an environment's templates."""

from __future__ import annotations

import argparse
import difflib
import re
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from k3s_infra.cli import UsageError, load, source_of
from k3s_infra.config import addons as addons_config
from k3s_infra.cli.output import document, print_json, wants_json, write_rendering
from k3s_infra.render import checkov, render
from k3s_infra.render.lint import Finding, Linter

# checkov pins an old boto3, so it gets an environment of its own (never a pip extra of the
# deployer's): pipx outside a clone, `make checkov` inside one. The version is the Makefile's
# CHECKOV_VERSION (tests/unit/cli/test_lint.py keeps the two equal).
CHECKOV_VERSION = "3.2.533"
CHECKOV_INSTALL = f"pipx install checkov=={CHECKOV_VERSION}, or make checkov in a clone"
# cfn-lint's allowed-values messages list every choice (1,228 instance types): a count and this many
EXAMPLES = 3


def _cfn_lint_installed() -> bool:
    try:  # why: cfn-lint is an optional extra (k3s-infra[lint]), asked for when lint runs
        import cfnlint  # noqa: F401
    except ImportError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    if not _cfn_lint_installed():
        raise UsageError("lint needs cfn-lint: pip install 'k3s-infra[lint]'")
    env = load(args)
    rendering = render(env)
    with tempfile.TemporaryDirectory(prefix="k3s-infra-lint-") as scratch:
        folder = write_rendering(rendering, Path(scratch) / env.name)
        started = time.perf_counter()
        findings = _secret_shaped(args, env) + Linter().lint_rendering(rendering, folder)
        elapsed = time.perf_counter() - started
        count = len(rendering.stacks)
        summary = [f"cfn-lint  {count} templates in {elapsed:.2f}s ({elapsed / count * 1000:.0f} ms per template)"]
        executable = None if args.no_checkov else checkov.find()
        if executable:
            started = time.perf_counter()
            findings += checkov.scan(folder, executable)
            summary.append(f"checkov   {count} templates in {time.perf_counter() - started:.2f}s")
        else:
            summary.append(f"checkov   skipped (not installed: {CHECKOV_INSTALL})" if not args.no_checkov
                           else "checkov   skipped (--no-checkov)")
    if wants_json(args):
        print_json(document("lint", environment=env.name,
                            findings=[{**asdict(f), "message": concise(f.message)} for f in findings],
                            checkov=bool(executable)))
        return 1 if findings else 0
    _print(findings)
    for line in summary:
        print(line)
    print(f"{env.name}: {'no findings' if not findings else f'{len(findings)} finding(s)'}")
    return 1 if findings else 0


def _secret_shaped(args: argparse.Namespace, env) -> list[Finding]:
    """Add-on values that look like secrets: a warning each, naming the field, never the value."""
    return [Finding(file=source_of(args), rule="k3s-infra:secret-shaped-value", severity="warning", resource=field,
                    message=f"{reason}; put it in Secrets Manager and name it in "
                            f"{field.split('.values', 1)[0]}.secret_values", line=0)
            for field, reason in addons_config.secret_shaped_values(env.addons)]


def _print(findings: list[Finding]) -> None:
    by_file: dict[str, list[Finding]] = {}
    for finding in findings:
        by_file.setdefault(finding.file, []).append(finding)
    for file_name in sorted(by_file):
        print(file_name)
        items = sorted(by_file[file_name], key=lambda f: (f.resource, f.rule))
        width = max(len(f.resource or "-") for f in items)
        for f in items:
            message = concise(f.message)
            message = message if len(message) <= 240 else message[:237] + "..."
            print(f"  {f.resource or '-':<{width}}  {f.rule:<11} {f.severity:<7} line {f.line:<5} {message}")


def concise(message: str) -> str:
    """cfn-lint spells out every valid choice ('x' is not one of ['A', 'B', ...]): their count and
    the few closest to the value given (or the first few), in text and JSON alike."""
    given = re.match(r"'([^'\n]*)' is not one of \[", message)

    def shorten(choices_text: re.Match) -> str:
        choices = re.findall(r"'([^'\n]*)'", choices_text[0])
        if given:
            shown = difflib.get_close_matches(given[1], choices, n=EXAMPLES, cutoff=0)
            return f"{len(choices):,} allowed values (closest: {', '.join(map(repr, shown))})"
        return f"{len(choices):,} allowed values (e.g. {', '.join(map(repr, choices[:EXAMPLES]))})"

    return re.sub(r"\[('[^'\n]*', ){5,}'[^'\n]*'\]", shorten, message)
