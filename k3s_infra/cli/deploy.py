"""k3s-infra deploy: package, change set, confirm, execute, stream events, outputs, the time
each nested stack took (``--output json``: one document, the rest on stderr). ``deploy
PLANFILE`` executes the change set ``plan --out PLANFILE`` kept, and nothing else."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from k3s_infra.cli import EXIT_FAILED, EXIT_OK, UsageError, source_of
from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli.estimate import clock
from k3s_infra.cli.output import aligned, document, print_json, say, wants_json
from k3s_infra.cli.progress import Console
from k3s_infra.cli.upgrade_gate import version_change_gate
from k3s_infra.deploy import lifecycle, planfile, preflight
from k3s_infra.deploy.aws import Aws
from k3s_infra.deploy.changeset import ChangeSet
from k3s_infra.deploy.timings import Measured


def run(args: argparse.Namespace) -> int:
    planned = read_plan(args) if args.plan_file else None
    if planned is None and not (args.env or args.config):
        raise UsageError("deploy: give --env NAME or --config PATH, or the PLANFILE 'k3s-infra plan --out' wrote")
    # Refuse before anything is uploaded or created: there will be nobody to answer.
    if not args.yes and not sys.stdin.isatty():
        raise UsageError("deploy: no terminal to ask on; pass --yes to execute the change set")
    if wants_json(args) and not args.yes:
        raise UsageError("deploy --output json: pass --yes (a question would mix with the JSON document)")

    def confirm(change_set: ChangeSet) -> bool:
        return cli_aws.ask(f"execute this {change_set.change_set_type} change set", args.yes)

    def action(aws: Aws) -> int:
        console = Console(sys.stderr if wants_json(args) else sys.stdout)
        if planned is not None:
            # Judged again now, not only when the plan was made: etcd's health and the snapshot's age.
            version_change_gate(aws, out=console.out)
            result = lifecycle.deploy_planned(aws, planned, source=source_of(args), confirm=confirm,
                                              on_progress=console, allow_quorum_loss=args.allow_quorum_loss,
                                              force_unlock=args.force_unlock)
            return report(result, as_json=wants_json(args), plan_file=args.plan_file)
        preflight.gate(aws, source=source_of(args), update_image=args.update_image, skip=args.skip_preflight,
                       on_progress=console)
        version_change_gate(aws, out=console.out)  # k3s.version edited: the upgrade pre-flight
        result = lifecycle.deploy(aws, confirm=confirm, on_progress=console, update_image=args.update_image,
                                  allow_quorum_loss=args.allow_quorum_loss,
                                  artifacts_dir=Path(args.artifacts) if args.artifacts else None,
                                  force_unlock=args.force_unlock)
        return report(result, as_json=wants_json(args))

    return cli_aws.run(args, action)


def read_plan(args: argparse.Namespace) -> planfile.PlanFile:
    """The plan file; the environment flags the plan was made with, unless given again (the
    plan's digests of the environment file decide whether it is still the same)."""
    if args.update_image or args.artifacts:
        raise UsageError("deploy PLANFILE: --update-image and --artifacts belong to 'k3s-infra plan'; the plan "
                         "decided the images and the K3s files")
    path = Path(args.plan_file)
    try:
        if path.stat().st_size > planfile.MAX_BYTES:
            raise UsageError(f"{path}: larger than a plan file can be; give the file 'k3s-infra plan --out' wrote")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the plan file ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        planned = planfile.PlanFile.from_json(text, str(path))
    except planfile.PlanFileError as exc:
        raise UsageError(str(exc)) from None
    if not (args.env or args.config):
        args.env, args.config = planned.env, planned.config
    if args.region is None:
        args.region = planned.region_override
    return planned


def report(result: lifecycle.DeployResult, *, as_json: bool = False, plan_file: str | None = None) -> int:
    """The last lines of a deploy (what happened on the way was reported as it happened)."""
    if as_json:
        print_json(document("deploy", stack_name=result.stack_name, outcome=result.outcome, status=result.status,
                            termination_protection=result.protected, outputs=result.outputs,
                            change_set_id=result.change_set_id, plan_file=plan_file,
                            **timings_json(result.timings)))
        return EXIT_OK if result.outcome in ("deployed", "up to date") else EXIT_FAILED
    if result.outcome == "up to date":
        say(f"{result.stack_name} is up to date: nothing to deploy")
        return EXIT_OK
    if result.outcome != "deployed":  # declined or failed: said as it happened
        return EXIT_FAILED
    say(f"{result.stack_name}: {result.status}" + ("  (termination protection on)" if result.protected else ""))
    if result.outputs:
        say("outputs:")
        for line in aligned(sorted(result.outputs.items())):
            say(line)
    for line in timing_lines(result.timings):
        say(line)
    say("admin kubeconfig, once the first server has published it: k3s-infra kubeconfig (same --env or --config)")
    return EXIT_OK


def timing_lines(measured: Measured | None) -> list[str]:
    """Each nested stack's wave as CloudFormation's events timed it (deploy/timings.py)."""
    if measured is None or not measured.stacks:
        return []
    rows = [("STACK", "START", "TOOK", "STATUS")]
    rows += [(s.stack, clock(measured.offset(s.started)), clock(s.seconds), s.status) for s in measured.stacks]
    total = f" (total {clock(measured.seconds)})" if measured.seconds is not None else ""
    return [f"time per nested stack, from the stack events{total}; 'k3s-infra estimate' has the model's:",
            *aligned(rows)]


def timings_json(measured: Measured | None) -> dict:
    """``started``/``ended``/``total_seconds`` of the root and its ``waves``, for the deploy document."""
    if measured is None:
        return {"started": None, "ended": None, "total_seconds": None, "waves": []}
    return {"started": measured.started, "ended": measured.ended, "total_seconds": measured.seconds,
            "waves": [{"stack": s.stack, "started": s.started, "ended": s.ended,
                       "start_seconds": measured.offset(s.started), "seconds": s.seconds, "status": s.status}
                      for s in measured.stacks]}
