"""k3s-infra upgrade --to VERSION: the upgrade pre-flight (deploy/upgrade_checks.py), its findings
as a table, then, when nothing refuses, a deploy of the environment at VERSION (rolling servers
one at a time, then agents, as any deploy of a new k3s.version) and the version each node reports.

The new version reaches the deploy as an override of k3s.version (the file is left as it is unless
``--write``): every later deploy reads the file again, so it must say VERSION too. Exit 1 when a
check refuses (nothing changed), 2 on bad input. ``--skip-check RULE`` lets one refused rule pass,
said on stderr and in the JSON; version-skew cannot be skipped (a skipped minor or a downgrade has no
way back but a restore).

``--output json``: {"kind": "upgrade", "version": 1, "stack_name", "target", "running": [{"where",
"version"}], "findings": [{"rule", "verdict", "message", "source", "skipped"}], "outcome": "refused" |
"up to date" | "deployed" | "declined" | "failed", "deploy": the deploy document's fields or null,
"nodes": [{"name", "role", "version", "ready"}]}."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

from k3s_infra.cli import EXIT_FAILED, EXIT_OK, UsageError, region_override, source_of
from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli.deploy import report as deploy_report
from k3s_infra.cli.deploy import timings_json
from k3s_infra.cli.output import aligned, document, print_json, say, wants_json
from k3s_infra.cli.progress import Console
from k3s_infra.config import Environment, load_environment, read_document
from k3s_infra.deploy import DeployError, kubeapi, lifecycle, preflight, upgrade_checks
from k3s_infra.deploy.aws import Aws
from k3s_infra.deploy.changeset import ChangeSet
from k3s_infra.deploy.kubeconfig import NotPublished
from k3s_infra.cli.upgrade_gate import findings_table
from k3s_infra.deploy.upgrade_checks import Finding, Preflight

# K3s labels its servers' Node objects so (ROLES control-plane,etcd,master in kubectl get nodes).
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
# The one rule no flag lets pass (see the module's doc).
UNSKIPPABLE = "version-skew"
SKIPPABLE = tuple(rule for rule in upgrade_checks.RULES if rule != UNSKIPPABLE)
# k3s.version on one line of the file's top-level k3s: block (--write edits only that line).
_K3S_BLOCK = re.compile(r"^k3s:[ \t]*(#.*)?$")
_VERSION_LINE = re.compile(r"^(?P<indent>[ \t]+)version:[ \t]*(?P<q>[\"']?)(?P<value>[^\s\"'#]+)(?P=q)"
                           r"(?P<rest>[ \t]*(#.*)?)$")


def run(args: argparse.Namespace) -> int:
    try:
        upgrade_checks.parse(args.to)
    except ValueError as exc:
        raise UsageError(f"--to: {exc}") from None
    if not args.yes and not sys.stdin.isatty():
        raise UsageError("upgrade: no terminal to ask on; pass --yes to execute the change set")
    if wants_json(args) and not args.yes:
        raise UsageError("upgrade --output json: pass --yes (a question would mix with the JSON document)")
    source = source_of(args)
    if args.write and Path(source).is_file():  # refused before anything is read (a missing file: load says so)
        version_line(Path(source).read_text(encoding="utf-8"), source)
    out = sys.stderr if wants_json(args) else sys.stdout

    def action(aws: Aws) -> int:
        say(f"pre-flight of {aws.env.stack_name} -> {args.to}: the stacks, the snapshots and the cluster's API",
            out)
        checked = upgrade_checks.run(aws, args.to, min_snapshot_minutes=args.min_snapshot_age)
        return proceed(args, aws, checked, source, out)

    return cli_aws.run(args, action)


def proceed(args: argparse.Namespace, aws: Aws, checked: Preflight, source: str, out) -> int:
    """Show the findings; deploy only when nothing refuses (skipped rules aside)."""
    skip = set(args.skip_check or ())
    for line in findings_table(checked.findings, skip):
        say(line, out)
    for finding in (f for f in checked.blocking() if f.rule in skip):
        print(f"WARNING: {finding.rule} refused and is SKIPPED (--skip-check {finding.rule}): "
              f"{finding.message}", file=sys.stderr, flush=True)
    result = {"checked": checked, "skip": skip, "deploy": None, "nodes": []}
    if checked.up_to_date:  # nothing would change: no check stands in the way of nothing
        say(f"{aws.env.stack_name} already runs {args.to}: nothing to upgrade", out)
        if args.write and aws.env.k3s.version != args.to:
            write_version(Path(source), args.to)
        return finish(args, aws, "up to date", result)
    if checked.blocking(skip):
        say(f"refused: nothing was changed ({len(checked.blocking(skip))} check(s) refused)", out)
        return finish(args, aws, "refused", result)
    upgraded = Aws(upgraded_environment(args, source), aws.session)
    console = Console(out)
    preflight.gate(upgraded, source=source, skip=args.skip_preflight, on_progress=console)

    def confirm(change_set: ChangeSet) -> bool:
        return cli_aws.ask(f"upgrade to {args.to}: execute this {change_set.change_set_type} change set", args.yes)

    deployed = lifecycle.deploy(upgraded, confirm=confirm, on_progress=console,
                                artifacts_dir=Path(args.artifacts) if args.artifacts else None,
                                force_unlock=args.force_unlock)
    result["deploy"] = deployed
    if deployed.outcome in ("deployed", "up to date"):
        result["nodes"] = node_rows(upgraded)
        if args.write:
            write_version(Path(source), args.to)
    return finish(args, aws, deployed.outcome, result)


def finish(args: argparse.Namespace, aws: Aws, outcome: str, result: dict) -> int:
    checked: Preflight = result["checked"]
    deployed: lifecycle.DeployResult | None = result["deploy"]
    code = EXIT_OK if outcome in ("deployed", "up to date") else EXIT_FAILED
    if wants_json(args):
        print_json(document(
            "upgrade", stack_name=aws.env.stack_name, target=args.to,
            running=[{"where": r.where, "version": r.version} for r in checked.running],
            findings=[{"rule": f.rule, "verdict": f.verdict, "message": f.message, "source": f.source,
                       "skipped": f.verdict == "refuse" and f.rule in result["skip"]} for f in checked.findings],
            outcome=outcome, nodes=result["nodes"],
            deploy=None if deployed is None else {
                "outcome": deployed.outcome, "status": deployed.status, "outputs": deployed.outputs,
                **timings_json(deployed.timings)}))
        return code
    if deployed is not None:
        code = deploy_report(deployed)
    for line in nodes_lines(result["nodes"], args.to):
        say(line)
    if outcome in ("deployed", "up to date") and not args.write and aws.env.k3s.version != args.to:
        say(f"now set k3s.version: {args.to} in {source_of(args)} (or run with --write): every deploy reads "
            f"the file, and until it says {args.to} one would take the nodes back to {aws.env.k3s.version}")
    return code


def upgraded_environment(args: argparse.Namespace, source: str) -> Environment:
    """The environment with k3s.version = --to: the file's merged k3s section (its extends chain
    included) with the version replaced, validated as the file would be."""
    section = read_document(source).get("k3s") or {}
    overrides = {"k3s": {**section, "version": args.to}}
    region = region_override(args)
    if region is not None:
        overrides["region"] = region
    return load_environment(args.env, path=args.config, overrides=overrides)


def node_rows(aws: Aws) -> list[dict]:
    """Every node's name, role, reported version and readiness, through the API (best effort: the
    deploy is done; a private API only means no table)."""
    try:
        doc = kubeapi.get_json(kubeapi.admin(aws), "/api/v1/nodes")
    except (kubeapi.KubeApiError, DeployError, NotPublished) as exc:
        return [{"error": str(exc)}]
    items = doc.get("items") if isinstance(doc, dict) else None
    return [{"name": n.get("metadata", {}).get("name"),
             "role": "server" if (n.get("metadata", {}).get("labels") or {}).get(CONTROL_PLANE) == "true"
             else "agent",
             "version": n.get("status", {}).get("nodeInfo", {}).get("kubeletVersion"),
             "ready": upgrade_checks.node_ready(n)} for n in items or []]


def nodes_lines(rows: list[dict], target: str) -> list[str]:
    """Servers first (they roll first), then agents."""
    if not rows:
        return []
    if "error" in rows[0]:
        return [f"nodes not listed: {rows[0]['error']}"]
    table = [("NODE", "ROLE", "VERSION", "READY")]
    table += [(str(r["name"]), r["role"], str(r["version"]) + ("" if r["version"] == target else "  (not yet)"),
               "yes" if r["ready"] else "NO")
              for r in sorted(rows, key=lambda r: (r["role"] != "server", str(r["name"])))]
    return ["nodes, as the API reports them:", *aligned(table)]


def version_line(text: str, source: str) -> int:
    """The index of the line holding k3s.version in the file's top-level k3s: block."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _K3S_BLOCK.match(line)), None)
    if start is not None:
        for i in range(start + 1, len(lines)):
            line = lines[i]
            if line.strip() and not line[0].isspace() and not line.lstrip().startswith("#"):
                break  # the next top-level key: the block ended
            if _VERSION_LINE.match(line) and len(line) - len(line.lstrip()) == _indent(lines, start):
                return i
    raise UsageError(f"--write: {source} sets no k3s.version on a line of its own under k3s: (inherited from a "
                     f"parent file, or written another way): set it there by hand")


def _indent(lines: list[str], start: int) -> int:
    """The indentation of the k3s: block's keys (its first key line)."""
    first = next(line for line in lines[start + 1:] if line.strip() and not line.lstrip().startswith("#"))
    return len(first) - len(first.lstrip())


def write_version(path: Path, target: str) -> None:
    """k3s.version: target in ``path``, everything else (comments, order, quotes) as it was; written
    to a temporary file beside it and renamed over it (never half-written)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    i = version_line(text, str(path))
    match = _VERSION_LINE.match(lines[i].rstrip("\r\n"))
    ending = lines[i][len(lines[i].rstrip("\r\n")):]
    lines[i] = f"{match['indent']}version: {match['q']}{target}{match['q']}{match['rest']}{ending}"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("".join(lines))
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    say(f"{path}: k3s.version is now {target}")
