"""k3s-infra restore: reset the cluster's etcd from a snapshot (default: the newest).
The procedure is described step by step in the README ("Restoring from a snapshot")."""

from __future__ import annotations

import argparse

from k3s_infra.cli import add_environment_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--snapshot", metavar="NAME", help="snapshot name as 'k3s-infra snapshots' lists it "
                                                          "(default: the newest)")
    parser.add_argument("--yes", "-y", action="store_true", help="restore without asking")
    parser.add_argument("--timeout", type=float, default=1800.0, metavar="SECONDS",
                        help="how long to wait for each step (default 1800)")


def run(args: argparse.Namespace) -> int:
    from k3s_infra.deploy import command, snapshots

    poll = max(0.2, min(10.0, args.timeout / 100))
    return command.run(args, lambda aws: snapshots.restore(
        aws, snapshot=args.snapshot, timeout=args.timeout, poll=poll,
        confirm=lambda question: command.ask(question, args.yes)))
