"""k3s-infra deploy: package, change set, confirm, execute, stream events, outputs."""

from __future__ import annotations

import argparse

from k3s_infra.cli import add_environment_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--skip-preflight", action="store_true",
                        help="skip the read-only checks of network, instance types and image (e.g. on an emulator)")
    parser.add_argument("--yes", "-y", action="store_true", help="execute the change set without asking")


def run(args: argparse.Namespace) -> int:
    from k3s_infra.deploy import command, lifecycle, preflight

    return command.run(args, lambda aws: preflight.gate(aws, args) or lifecycle.deploy(
        aws, confirm=lambda cs: command.ask(f"execute this {cs.change_set_type} change set", args.yes)))
