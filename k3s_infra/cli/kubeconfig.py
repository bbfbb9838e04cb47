"""k3s-infra kubeconfig: the admin kubeconfig from its secret, named after the cluster,
as its own file (mode 0600) or merged into your kubeconfig (--merge)."""

from __future__ import annotations

import argparse

from k3s_infra.cli import EXIT_OK, UsageError
from k3s_infra.cli import aws as cli_aws
from k3s_infra.deploy.aws import Aws
from k3s_infra.deploy.kubeconfig import Written, kubeconfig


def run(args: argparse.Namespace) -> int:
    if args.set_context and not args.merge:
        raise UsageError("--set-context only applies with --merge")

    def action(aws: Aws) -> int:
        try:
            written = kubeconfig(aws, args.out, merge_into=args.merge, force=args.force, set_context=args.set_context)
        except FileExistsError as exc:
            raise UsageError(str(exc)) from None
        for line in lines(written):
            print(line)
        return EXIT_OK

    return cli_aws.run(args, action)


def lines(written: Written) -> list[str]:
    servers = ", ".join(written.servers) or "?"
    if not written.merged:
        return [f"wrote the admin kubeconfig of {written.stack_name} to {written.target} (mode 0600); "
                f"context {written.context}; API server {servers}",
                f"  export KUBECONFIG={written.target}"]
    current = ("current context set to it" if written.current_context_set
               else "current context unchanged (--set-context to switch)")
    result = [f"backup of {written.target}: {written.backup}"] if written.backup else []
    return result + [f"merged context {written.context} of {written.stack_name} into {written.target} (mode 0600); "
                     f"{current}; API server {servers}",
                     f"  kubectl --context {written.context} get nodes"]
