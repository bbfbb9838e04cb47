"""k3s-infra plan: package (uploads the children), then show the change set of the root
stack; nothing runs. ``--out PLANFILE`` keeps the change set for ``deploy PLANFILE``
(deploy/planfile.py). ``k3s-infra diff`` is the read-only comparison."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli import EXIT_CHANGES, EXIT_OK, source_of
from k3s_infra.cli import estimate
from k3s_infra.cli.output import check_private_file, document, print_json, say, wants_json, write_private
from k3s_infra.cli.progress import Console, change_table
from k3s_infra.cli.upgrade_gate import version_change_gate
from k3s_infra.deploy import lifecycle, planfile, preflight
from k3s_infra.deploy.aws import Aws


def looks_like_plan_file(head: str) -> bool:
    """A previous plan file (the only file --out replaces)."""
    return f'"kind": "{planfile.KIND}"' in head


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    if out is not None:  # refused before anything is uploaded
        check_private_file(out, looks_like_plan_file, source_of(args))

    def action(aws: Aws) -> int:
        out_stream = sys.stderr if wants_json(args) else sys.stdout
        preflight.gate(aws, source=source_of(args), update_image=args.update_image, skip=args.skip_preflight,
                       on_progress=Console(out_stream))
        version_change_gate(aws, out=out_stream)  # k3s.version edited: the upgrade pre-flight
        return show(aws, as_json=wants_json(args), update_image=args.update_image,
                    detailed_exitcode=args.detailed_exitcode,
                    artifacts_dir=Path(args.artifacts) if args.artifacts else None,
                    plan_file=out, keep=_writer(args, out) if out is not None else None)

    return cli_aws.run(args, action)


def _writer(args: argparse.Namespace, out: Path) -> Callable[[lifecycle.PlanResult], None]:
    """Writes the plan file while the change set exists (lifecycle.plan deletes it should this fail)."""
    def keep(planned: lifecycle.PlanResult) -> None:
        write_private(out, planfile.of(planned, env_name=args.env, config=args.config, region_override=args.region,
                                       source=source_of(args)).to_json())
    return keep


def show(aws: Aws, *, as_json: bool = False, update_image: bool = False, detailed_exitcode: bool = False,
         artifacts_dir: Path | None = None, plan_file: Path | None = None,
         keep: Callable[[lifecycle.PlanResult], None] | None = None) -> int:
    """Exit 0; with ``detailed_exitcode`` as Terraform's plan: 0 no changes, 2 changes.
    With ``as_json`` the one JSON document goes to stdout and the rest to stderr."""
    planned = lifecycle.plan(aws, on_progress=Console(sys.stderr if as_json else sys.stdout),
                             update_image=update_image, artifacts_dir=artifacts_dir, keep=keep)
    change_set = planned.change_set
    kept = plan_file is not None and not change_set.empty
    # How long executing it should take: a create's critical path, or the roll of the node
    # groups whose launch template changes (None: nothing replaces nodes).
    expected = estimate.for_change_set(change_set, planned.package.rendering)
    # What the environment costs a month, offline prices (no further AWS call): estimate --cost itemises it.
    bill = estimate.cost_of(aws.env, planned.package.rendering, estimate.price_book(aws.env, "offline"))
    if as_json:
        print_json(document("plan", stack_name=change_set.stack_name, change_set_type=change_set.change_set_type,
                            has_changes=not change_set.empty, changes=[asdict(c) for c in change_set.changes],
                            uploaded=planned.package.uploaded, reused=planned.package.reused,
                            estimate=estimate.as_json(expected) if expected else None,
                            cost=estimate.cost_json(bill),
                            plan_file=str(plan_file) if plan_file else None,
                            change_set_id=change_set.change_set_id if kept else None))
    else:
        say(f"{change_set.stack_name} is up to date: no changes" if change_set.empty else change_table(change_set))
        for line in estimate.lines(expected, change_set.stack_name) if expected else ():
            say(line)
        say(estimate.cost_summary(bill, change_set.stack_name))
        if plan_file is not None:
            say(f"plan written to {plan_file}: 'k3s-infra deploy {plan_file}' executes exactly this change set"
                if kept else f"plan written to {plan_file}: nothing to change")
    return EXIT_CHANGES if detailed_exitcode and not change_set.empty else EXIT_OK
