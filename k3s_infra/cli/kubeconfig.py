"""k3s-infra kubeconfig: the admin kubeconfig from its secret, named after the cluster,
as its own file (mode 0600) or merged into your kubeconfig (--merge)."""

from __future__ import annotations

import argparse

from k3s_infra.cli import add_environment_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--out", metavar="PATH",
                        help="file to write (default: ./<env>.kubeconfig; with --merge: first $KUBECONFIG path "
                             "or ~/.kube/config)")
    parser.add_argument("--merge", action="store_true",
                        help="add the cluster to an existing kubeconfig (backup kept, other entries kept)")
    parser.add_argument("--set-context", action="store_true", help="with --merge: make it the current context")
    parser.add_argument("--force", action="store_true", help="without --merge: replace an existing file")


def run(args: argparse.Namespace) -> int:
    from k3s_infra.cli import UsageError
    from k3s_infra.deploy import command
    from k3s_infra.deploy.kubeconfig import kubeconfig

    if args.set_context and not args.merge:
        raise UsageError("--set-context only applies with --merge")

    def action(aws) -> int:
        try:
            return kubeconfig(aws, args.out, merge_into=args.merge, force=args.force, set_context=args.set_context)
        except FileExistsError as exc:
            raise UsageError(str(exc)) from None

    return command.run(args, action)
