"""k3s-infra deploy: package, change set, confirm, execute, stream events, outputs."""

from __future__ import annotations

import argparse
import sys

from k3s_infra.cli import UsageError, add_environment_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--skip-preflight", action="store_true",
                        help="skip the read-only checks of network, instance types and image (e.g. on an emulator)")
    parser.add_argument("--yes", "-y", action="store_true", help="execute the change set without asking")
    parser.add_argument("--update-image", action="store_true",
                        help="re-resolve nodes.ami_parameter and take the newest image (replaces the nodes); "
                             "otherwise the deployed image stays pinned")
    parser.add_argument("--allow-quorum-loss", action="store_true",
                        help="override the quorum guard: remove more servers at once than etcd can lose "
                             "(then 'k3s-infra restore' from a snapshot)")


def run(args: argparse.Namespace) -> int:
    # Refuse before anything is uploaded or created: there will be nobody to answer.
    if not args.yes and not sys.stdin.isatty():
        raise UsageError("deploy: no terminal to ask on; pass --yes to execute the change set")
    from k3s_infra.deploy import command, lifecycle, preflight

    return command.run(args, lambda aws: preflight.gate(aws, args) or lifecycle.deploy(
        aws, update_image=args.update_image, allow_quorum_loss=args.allow_quorum_loss,
        confirm=lambda cs: command.ask(f"execute this {cs.change_set_type} change set", args.yes)))
