"""The upgrade pre-flight's gate and table, shared by ``upgrade``, ``plan`` and ``deploy``: an edit
of k3s.version in the environment file meets the same checks as ``k3s-infra upgrade --to``."""

from __future__ import annotations

from k3s_infra.cli.output import aligned, say
from k3s_infra.deploy import DeployError, upgrade_checks
from k3s_infra.deploy.aws import Aws
from k3s_infra.deploy.upgrade_checks import Finding


def version_change_gate(aws: Aws, *, out=None, skip: frozenset[str] = frozenset(),
                        min_snapshot_minutes: int = upgrade_checks.DEFAULT_SNAPSHOT_MINUTES) -> None:
    """For ``plan`` and ``deploy`` after an edit of k3s.version: when the file's version is not the
    one the stack pins, the upgrade pre-flight runs and its table shows on ``out``; a refusal raises
    DeployError before anything is uploaded (exit 1, and under --output json the error document)."""
    checked = upgrade_checks.for_plan(aws, min_snapshot_minutes=min_snapshot_minutes)
    if checked is None:
        return
    if checked == upgrade_checks.UNKNOWN:
        say(f"note: the K3s version the stack runs could not be read (its staged binary's metadata): a change of "
            f"k3s.version to {aws.env.k3s.version} is not checked here; 'k3s-infra upgrade --to VERSION' checks it "
            "through the cluster's API", out)
        return
    say(f"k3s.version is {checked.target}, not the version the stack runs: the upgrade pre-flight", out)
    for line in findings_table(checked.findings, set(skip)):
        say(line, out)
    if checked.blocking(skip):
        raise DeployError(f"the upgrade pre-flight refused k3s.version {checked.target}: nothing was changed "
                          f"('k3s-infra upgrade --to {checked.target}' runs the same checks and takes --skip-check RULE)")


def findings_table(findings: tuple[Finding, ...], skip: set[str]) -> list[str]:
    rows = [("RULE", "VERDICT", "MESSAGE")]
    rows += [(f.rule, f"{f.verdict} (SKIPPED)" if f.verdict == "refuse" and f.rule in skip else f.verdict,
              f.message) for f in findings]
    return aligned(rows)
