"""k3s-infra restore: reset the cluster's etcd from a snapshot (default: the newest).
The procedure is described step by step in docs/operations.md ("Restoring from a snapshot")."""

from __future__ import annotations

import argparse

from k3s_infra.cli import EXIT_FAILED, EXIT_OK
from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli.output import say
from k3s_infra.cli.progress import Console
from k3s_infra.deploy import lock, snapshots
from k3s_infra.deploy.aws import Aws


def run(args: argparse.Namespace) -> int:
    poll = max(0.2, min(10.0, args.timeout / 100))

    def action(aws: Aws) -> int:
        def confirm(chosen: snapshots.Snapshot) -> bool:
            return cli_aws.ask(f"restore {aws.env.stack_name} from {chosen.name} "
                               f"({chosen.last_modified:%Y-%m-%d %H:%M:%S}): every change since is lost, "
                               f"the servers are replaced", args.yes)

        # Under the stack's lock, as deploy and destroy (deploy/lock.py): a deploy meanwhile would
        # roll the server groups this restore scales and replaces.
        console = Console()
        with lock.held(aws, "restore", console, force=args.force_unlock) as progress:
            restored = snapshots.restore(aws, snapshot=args.snapshot, timeout=args.timeout, poll=poll,
                                         confirm=confirm, on_progress=progress)
        if not restored:
            say("not restored")
            return EXIT_FAILED
        say("check: 'k3s-infra status' (node groups in service), then kubectl get nodes")
        return EXIT_OK

    return cli_aws.run(args, action)
