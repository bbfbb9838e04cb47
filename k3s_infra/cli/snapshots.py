"""k3s-infra snapshots: the etcd snapshots in the cluster's S3 bucket, newest first.

``--output json`` prints a list of {"name", "key", "size", "last_modified"} (ISO 8601),
newest first; ``name`` is what ``k3s-infra restore --snapshot`` takes."""

from __future__ import annotations

import argparse
import json

from k3s_infra.cli import add_environment_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--output", choices=("text", "json"), default="text", help="table (default) or JSON")


def run(args: argparse.Namespace) -> int:
    from k3s_infra.deploy import command, snapshots

    def show(aws) -> int:
        found = snapshots.list_snapshots(aws)
        if args.output == "json":
            print(json.dumps([s.as_json() for s in found], indent=2))
        elif found:
            print(snapshots.format_table(found))
        else:
            print(f"no etcd snapshots yet for {aws.env.stack_name}")
        return 0

    return command.run(args, show)
