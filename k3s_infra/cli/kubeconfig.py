"""k3s-infra kubeconfig: write the admin kubeconfig (mode 0600) from its secret."""

from __future__ import annotations

import argparse

from k3s_infra.cli import add_environment_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--out", metavar="PATH", help="where to write it (default: ./<env>.kubeconfig)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from k3s_infra.cli import load
    from k3s_infra.deploy import command, lifecycle

    path = Path(args.out) if args.out else Path(f"{load(args).name}.kubeconfig")
    return command.run(args, lambda aws: lifecycle.kubeconfig(aws, path))
