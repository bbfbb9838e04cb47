"""k3s-infra plan: package, then show the change set of the root stack; nothing runs."""

from __future__ import annotations

import argparse

from k3s_infra.cli import add_environment_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--update-image", action="store_true",
                        help="show the change with the newest image of nodes.ami_parameter (as deploy --update-image)")


def run(args: argparse.Namespace) -> int:
    from k3s_infra.deploy import command, lifecycle

    return command.run(args, lambda aws: lifecycle.plan(aws, update_image=args.update_image))
