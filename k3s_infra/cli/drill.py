"""k3s-infra drill: restore a snapshot into a throwaway stack of the same environment, wait for its API
to answer with every server Ready and the marker, report recovery time (RTO) and data age (RPO), and
delete the stack (deploy/drill.py; docs/operations.md "Restore drills").

Exit codes: 0 passed (and every --max-rto/--max-rpo met); 1 failed, declined, or an objective
missed; 2 bad input (node_access.run_command false included: the drill reads its cluster through
Run Command) or a stack of the drill's name that is no drill. With --detailed-exitcode: 0
passed, 2 restored but an objective missed, 1 every error (as plan's). 130 interrupted.

``--output json``: {"kind": "drill", "version": 1, "stack_name", "drill_stack", "outcome": "passed" |
"missed" | "failed" | "declined", "fresh", "snapshot": {"name", "key", "size", "last_modified"} | null,
"started", "ended", "restore_started", "rto_seconds", "rpo_seconds", "marker": {"namespace", "name",
"written_at", "age_seconds"} | null, "nodes": {"expected", "ready", "restored_from_snapshot"},
"steps": {step: seconds}, "objectives": [{"name", "limit_seconds", "actual_seconds", "met"}],
"failure", "cleanup": {"outcome", "status", "error"}}; progress goes to stderr.
``--cleanup --output json``: the destroy document (kind "destroy") of the drill stack."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from k3s_infra.cli import EXIT_CHANGES, EXIT_FAILED, EXIT_OK, UsageError, load, source_of
from k3s_infra.cli import aws as cli_aws
from k3s_infra.config import ConfigError
from k3s_infra.cli.deploy import timings_json
from k3s_infra.cli.destroy import question
from k3s_infra.cli.output import aligned, document, print_json, say, wants_json
from k3s_infra.cli.progress import Console, binary_size
from k3s_infra.cli.snapshots import as_json as snapshot_json
from k3s_infra.deploy import drill
from k3s_infra.deploy import drill_progress as dp
from k3s_infra.deploy.aws import Aws
from k3s_infra.deploy.progress import Message
from k3s_infra.model import naming

REPEAT_EVERY = 30.0  # seconds: an unchanged wait is said again at most this often


def run(args: argparse.Namespace) -> int:
    if wants_json(args) and not args.yes:
        raise UsageError("drill --output json: pass --yes (a question would mix with the JSON document)")
    if not args.cleanup and not load(args).node_access.run_command:
        raise ConfigError(source_of(args), [("node_access.run_command", (
            "false: a drill reads its restored cluster through Run Command on one of its servers (the drill's "
            "API is internal, out of this machine's reach), so 'k3s-infra drill' cannot check it"))])
    out = sys.stderr if wants_json(args) else sys.stdout
    show = Shown(Console(out), out)

    def action(aws: Aws) -> int:
        if args.cleanup:
            return cleanup(args, aws, show)
        result = drill.run(aws, snapshot=args.snapshot, fresh=args.fresh, on_progress=show,
                           poll=max(0.2, min(10.0, args.timeout / 100)), timeout=args.timeout,
                           objectives=objectives(args), artifacts_dir=Path(args.artifacts) if args.artifacts else None,
                           confirm=lambda request: cli_aws.ask(ask_text(request), args.yes))
        if wants_json(args):
            print_json(document("drill", **as_json(result)))
        else:
            for line in summary(result):
                say(line)
        return exit_code(result, args.detailed_exitcode)

    return cli_aws.run(args, action)


def objectives(args: argparse.Namespace) -> dict[str, float]:
    return {name: minutes * 60.0 for name, minutes in (("rto", args.max_rto), ("rpo", args.max_rpo))
            if minutes is not None}


def exit_code(result: drill.DrillResult, detailed: bool) -> int:
    if result.outcome == "passed":
        return EXIT_OK
    return EXIT_CHANGES if detailed and result.outcome == "missed" else EXIT_FAILED


def ask_text(request: drill.DrillRequest) -> str:
    what = f"snapshot {request.snapshot.name}" if request.snapshot else \
        "a snapshot taken now (--fresh: writes the marker to the cluster's API first)"
    return (f"drill: create stack {request.drill_stack} ({request.servers} servers, as {request.stack_name}) in "
            f"{request.account_id}/{request.region}, restore {what} into it, delete it at the end")


def cleanup(args: argparse.Namespace, aws: Aws, show) -> int:
    result = drill.cleanup(aws, on_progress=show, timeout=args.timeout,
                           confirm=lambda request: cli_aws.ask(question(request), args.yes))
    if wants_json(args):
        print_json(document("destroy", dry_run=False, stack_name=result.stack_name, outcome=result.outcome,
                            status=result.status, **timings_json(result.timings)))
    elif result.outcome == "absent":
        say(f"no drill stack {result.stack_name}: nothing to clean up")
    return EXIT_OK if result.outcome in ("destroyed", "absent") else EXIT_FAILED


# --- progress -------------------------------------------------------------------------

class Shown:
    """The drill's messages in its own words; every other one as the Console says it."""

    def __init__(self, console: Console, out):
        self.console, self.out = console, out
        self._wait: tuple[tuple, float] | None = None

    def __call__(self, message: Message) -> None:
        if not isinstance(message, dp.DrillMessage):
            self.console(message)
            return
        if isinstance(message, dp.WaitingForApi):
            seen = message.check
            what = (len(seen.ready), seen.error is None, seen.marker_found)
            if self._wait and self._wait[0] == what and message.waited < self._wait[1] + REPEAT_EVERY:
                return
            self._wait = (what, message.waited)
        for line in lines(message):
            say(line, self.out)


STEPS = {
    "fresh": "writing the drill marker through {stack}'s API, then taking a snapshot (--fresh)",
    "deploy": "creating the drill stack {stack} (deleted at the end, whatever happens)",
    "copy": "copying the snapshot into {stack}'s bucket",
    "token": "putting the cluster's server token into {stack}'s token secret (K3s restores with the same token)",
    "restore": "restoring the snapshot into {stack}",
    "api": "waiting for {stack}'s API: every server Ready and the marker",
    "cleanup": "deleting the drill stack {stack}",
}


def lines(message: dp.DrillMessage) -> list[str]:
    match message:
        case dp.DrillStep(step=step, stack=stack):
            return [f"drill: {STEPS[step].format(stack=stack)}"]
        case dp.MarkerWritten(marker=marker):
            return [f"  marker {naming.DRILL_MARKER_NAMESPACE}/{naming.DRILL_MARKER_NAME} written at "
                    f"{marker.written_at:%Y-%m-%d %H:%M:%S %Z}"]
        case dp.FreshSnapshot(text=text):
            return [f"  {text}"]
        case dp.SnapshotCopied(source=source, target=target, size=size):
            return [f"  copied {source} -> {target} ({binary_size(size)})"]
        case dp.TokenSeeded(secret=secret):
            return [f"  wrote {secret}"]
        case dp.WaitingForApi(check=seen, waited=waited):
            state = f"no answer yet ({seen.error})" if seen.error else \
                f"{len(seen.ready)} of {len(seen.ready) + len(seen.missing)} servers Ready"
            return [f"  waiting: {state}  ({clock(waited)})"]
        case dp.DrillLeft(stack=stack, reason=reason):
            return [f"warning: the drill stack {stack} remains ({reason}): delete it with "
                    f"'k3s-infra drill --cleanup' (same --env or --config)"]
    return []


# --- result ---------------------------------------------------------------------------

def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def as_json(result: drill.DrillResult) -> dict:
    seen, marker = result.api, result.marker
    return {
        "stack_name": result.stack_name, "drill_stack": result.drill_stack, "outcome": result.outcome,
        "fresh": result.fresh, "snapshot": snapshot_json(result.snapshot) if result.snapshot else None,
        "started": result.started, "ended": result.ended, "restore_started": result.restore_started,
        "rto_seconds": _rounded(result.rto_seconds), "rpo_seconds": _rounded(result.data_age_seconds),
        "marker": None if marker is None else {
            "namespace": naming.DRILL_MARKER_NAMESPACE, "name": naming.DRILL_MARKER_NAME,
            "written_at": marker.written_at, "age_seconds": _rounded(result.marker_age_seconds)},
        "nodes": {"expected": list(seen.ready + seen.missing) if seen else [],
                  "ready": list(seen.ready) if seen else [],
                  "restored_from_snapshot": seen.others if seen else None},
        "steps": {name: _rounded(seconds) for name, seconds in result.steps.items()},
        "objectives": [{"name": x.name, "limit_seconds": x.limit_seconds, "actual_seconds": _rounded(x.actual_seconds),
                        "met": x.met} for x in result.objectives],
        "failure": result.failure,
        "cleanup": {"outcome": result.cleanup.outcome if result.cleanup else None,
                    "status": result.cleanup.status if result.cleanup else None, "error": result.cleanup_error},
    }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def summary(result: drill.DrillResult) -> list[str]:
    if result.outcome == "declined":
        return ["not drilled: nothing was created"]
    head = f"drill of {result.stack_name}: {result.outcome.upper()}"
    rows: list[tuple[str, str]] = []
    snap = result.snapshot
    if snap:
        rows.append(("snapshot", f"{snap.name} ({binary_size(snap.size)}, uploaded "
                                 f"{snap.last_modified:%Y-%m-%d %H:%M:%S %Z}".rstrip() + ")"))
    rows.append(("recovery time", f"{clock(result.rto_seconds)}  (RTO: restore start to the API answering with "
                                  f"every server Ready and the marker)"))
    rows.append(("data age", f"{clock(result.data_age_seconds)}  (RPO: restore start minus the snapshot's upload)"))
    if result.marker:
        rows.append(("marker", f"written {result.marker.written_at:%Y-%m-%d %H:%M:%S %Z}, "
                               f"{clock(result.marker_age_seconds)} before the restore"))
    if result.api:
        rows.append(("nodes", f"{len(result.api.ready)} drill servers Ready; {result.api.others} nodes of "
                              f"{result.stack_name} restored from the snapshot"))
    if result.steps:
        rows.append(("steps", ", ".join(f"{name} {clock(seconds)}" for name, seconds in result.steps.items())))
    for x in result.objectives:
        rows.append((f"objective {x.name}", f"<= {clock(x.limit_seconds)}: {'met' if x.met else 'MISSED'}"))
    if result.failure:
        rows.append(("failure", result.failure))
    cleaned = result.cleanup.outcome if result.cleanup else None
    rows.append(("drill stack", f"{result.drill_stack} deleted" if cleaned in ("destroyed", "absent") else
                 f"{result.drill_stack} REMAINS: {result.cleanup_error}" if result.cleanup_error else
                 f"{result.drill_stack} was not created"))
    return [head, *aligned(rows)]
