"""k3s-infra plan: package (uploads the children), then show the change set of the root
stack; nothing runs. ``k3s-infra diff`` is the read-only comparison."""

from __future__ import annotations

import argparse

from k3s_infra.cli import add_environment_arguments
from k3s_infra.cli.output import add_output_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--update-image", action="store_true",
                        help="show the change with the newest image of nodes.ami_parameter (as deploy --update-image)")
    add_output_argument(parser)
    parser.add_argument("--detailed-exitcode", action="store_true",
                        help="exit 0 when there is nothing to change, 2 when there is, 1 on error (as Terraform)")
    parser.add_argument("--skip-preflight", action="store_true",
                        help="skip the read-only checks of network, instance types and image (e.g. on an emulator)")


def run(args: argparse.Namespace) -> int:
    from k3s_infra.cli.output import wants_json
    from k3s_infra.deploy import command, lifecycle, preflight

    return command.run(args, lambda aws: preflight.gate(aws, args) or lifecycle.plan(
        aws, update_image=args.update_image, as_json=wants_json(args), detailed_exitcode=args.detailed_exitcode))
