"""k3s-infra status: root and nested stack states, outputs, node group counts; exit 1
when not deployed or when a stack failed or rolled back."""

from __future__ import annotations

import argparse

from k3s_infra.cli import add_environment_arguments
from k3s_infra.cli.output import add_output_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    add_output_argument(parser)
    parser.add_argument("--watch", "-w", action="store_true",
                        help="re-attach to a running deploy/destroy and stream its events until it settles")


def run(args: argparse.Namespace) -> int:
    from k3s_infra.cli.output import wants_json
    from k3s_infra.deploy import command, status

    return command.run(args, lambda aws: status.status(aws, as_json=wants_json(args), follow=args.watch))
