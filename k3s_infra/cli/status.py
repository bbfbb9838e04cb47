"""k3s-infra status: root and nested stack states, outputs, node group counts, a pending
restore request; exit 1 unless the root's last operation succeeded (not deployed, failed,
rolled back, still running: deploy/stack_states.py healthy), so a pipeline can gate on it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from k3s_infra.cli import EXIT_FAILED, EXIT_OK
from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli.output import aligned, document, print_json, say, wants_json
from k3s_infra.cli.progress import Console, restore_request_line
from k3s_infra.deploy import stack_states, status
from k3s_infra.deploy.aws import Aws
from k3s_infra.model import naming


def run(args: argparse.Namespace) -> int:
    return cli_aws.run(args, lambda aws: show(aws, as_json=wants_json(args), follow=args.watch))


def show(aws: Aws, *, as_json: bool = False, follow: bool = False, poll: float = 2.0) -> int:
    """``follow`` (--watch): first stream the running operation (on stderr with --output json)."""
    if follow:
        status.watch(aws, on_progress=Console(sys.stderr if as_json else sys.stdout), poll=poll)
    found = status.collect(aws)
    if as_json:
        print_json(document("status", **found))
    else:
        say(format_text(found))
    return EXIT_OK if found["deployed"] and found["healthy"] else EXIT_FAILED


def format_text(found: dict[str, Any]) -> str:
    request = found.get("restore_request")
    pending = [restore_request_line(request, found["region"])] if request else []
    if not found["deployed"]:
        return "\n".join([f"{found['stack_name']}: not deployed (no such stack in {found['region']})",
                          *(f"warning: {w}" for w in found["warnings"]), *pending])
    protection = "on" if found["termination_protection"] else "off"
    lines = [f"{found['stack_name']}  {found['status']}  (termination protection {protection})"]
    lines += [f"warning: {w}" for w in found["warnings"]]
    lines += pending
    rows = [("STACK", "STATUS", "UPDATED")]
    rows += [(s["stack"], s["status"], f"{s['updated']:%Y-%m-%d %H:%M:%S}" if s["updated"] else "")
             for s in found["stacks"]]
    lines += aligned(rows)
    if found["outputs"]:
        lines.append("outputs:")
        lines += aligned(sorted(found["outputs"].items()))
    if found["node_groups"]:
        rows = [("NODE GROUP", "DESIRED", "IN SERVICE", "MIN", "MAX")]
        rows += [(g["stack"], *("-" if g[k] is None else str(g[k]) for k in ("desired", "in_service", "min", "max")))
                 for g in found["node_groups"]]
        lines.append("node groups:")
        lines += aligned(rows)
    if not found["healthy"]:
        lines += _unhealthy(found["stacks"])
    return "\n".join(lines)


def _unhealthy(stacks: list[dict[str, Any]]) -> list[str]:
    """Why 'status' exits 1 for a deployed stack, one line per kind of reason."""
    bad = [s for s in stacks if not stack_states.healthy(s["status"], root=s["stack"] == naming.ROOT)]
    running = [f"{s['stack']} ({s['status']})" for s in bad if stack_states.running(s["status"])]
    review = [s["stack"] for s in bad if s["status"] == stack_states.REVIEW_IN_PROGRESS]
    other = [s["stack"] for s in bad if not stack_states.running(s["status"]) and s["stack"] not in review]
    lines = [f"error: failed or rolled back: {', '.join(other)}"] if other else []
    if running:
        lines.append(f"error: not settled: {', '.join(running)}; 'k3s-infra status --watch' follows it to the end")
    if review:
        lines.append(f"error: {', '.join(review)}: a change set was created and never executed: nothing is deployed")
    return lines
