"""k3s-infra plan: package (uploads the children), then show the change set of the root
stack; nothing runs. ``k3s-infra diff`` is the read-only comparison."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli import EXIT_CHANGES, EXIT_OK, source_of
from k3s_infra.cli import estimate
from k3s_infra.cli.output import document, print_json, say, wants_json
from k3s_infra.cli.progress import Console, change_table
from k3s_infra.deploy import lifecycle, preflight
from k3s_infra.deploy.aws import Aws


def run(args: argparse.Namespace) -> int:
    def action(aws: Aws) -> int:
        preflight.gate(aws, source=source_of(args), update_image=args.update_image, skip=args.skip_preflight,
                       on_progress=Console(sys.stderr if wants_json(args) else sys.stdout))
        return show(aws, as_json=wants_json(args), update_image=args.update_image,
                    detailed_exitcode=args.detailed_exitcode,
                    artifacts_dir=Path(args.artifacts) if args.artifacts else None)

    return cli_aws.run(args, action)


def show(aws: Aws, *, as_json: bool = False, update_image: bool = False, detailed_exitcode: bool = False,
         artifacts_dir: Path | None = None) -> int:
    """Exit 0; with ``detailed_exitcode`` as Terraform's plan: 0 no changes, 2 changes.
    With ``as_json`` the one JSON document goes to stdout and the rest to stderr."""
    planned = lifecycle.plan(aws, on_progress=Console(sys.stderr if as_json else sys.stdout),
                             update_image=update_image, artifacts_dir=artifacts_dir)
    change_set = planned.change_set
    # How long executing it should take: a create's critical path, or the roll of the node
    # groups whose launch template changes (None: nothing replaces nodes).
    expected = estimate.for_change_set(change_set, planned.package.rendering)
    if as_json:
        print_json(document("plan", stack_name=change_set.stack_name, change_set_type=change_set.change_set_type,
                            has_changes=not change_set.empty, changes=[asdict(c) for c in change_set.changes],
                            uploaded=planned.package.uploaded, reused=planned.package.reused,
                            estimate=estimate.as_json(expected) if expected else None))
    else:
        say(f"{change_set.stack_name} is up to date: no changes" if change_set.empty else change_table(change_set))
        for line in estimate.lines(expected, change_set.stack_name) if expected else ():
            say(line)
    return EXIT_CHANGES if detailed_exitcode and not change_set.empty else EXIT_OK
