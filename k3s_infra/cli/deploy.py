"""k3s-infra deploy: package, change set, confirm, execute, stream events, outputs."""

from __future__ import annotations

import argparse
import sys

from k3s_infra.cli import EXIT_FAILED, EXIT_OK, UsageError, source_of
from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli.output import aligned, say
from k3s_infra.cli.progress import Console
from k3s_infra.deploy import lifecycle, preflight
from k3s_infra.deploy.aws import Aws
from k3s_infra.deploy.changeset import ChangeSet


def run(args: argparse.Namespace) -> int:
    # Refuse before anything is uploaded or created: there will be nobody to answer.
    if not args.yes and not sys.stdin.isatty():
        raise UsageError("deploy: no terminal to ask on; pass --yes to execute the change set")

    def confirm(change_set: ChangeSet) -> bool:
        return cli_aws.ask(f"execute this {change_set.change_set_type} change set", args.yes)

    def action(aws: Aws) -> int:
        preflight.gate(aws, source=source_of(args), update_image=args.update_image, skip=args.skip_preflight)
        result = lifecycle.deploy(aws, confirm=confirm, on_progress=Console(), update_image=args.update_image,
                                  allow_quorum_loss=args.allow_quorum_loss)
        return report(result)

    return cli_aws.run(args, action)


def report(result: lifecycle.DeployResult) -> int:
    """The last lines of a deploy (what happened on the way was reported as it happened)."""
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
    say("admin kubeconfig, once the first server has published it: k3s-infra kubeconfig (same --env or --config)")
    return EXIT_OK
