"""k3s-infra snapshots: the etcd snapshots in the cluster's S3 bucket, newest first.

``--output json`` prints {"kind": "snapshots", "version": 1, "stack_name", "bucket"?, "snapshots":
[{"name", "key", "size", "last_modified"}]} (ISO 8601), newest first; ``name`` is what
``k3s-infra restore --snapshot`` takes."""

from __future__ import annotations

import argparse

from k3s_infra.cli import add_environment_arguments
from k3s_infra.cli.output import add_output_argument, document, print_json, wants_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    add_output_argument(parser)


def run(args: argparse.Namespace) -> int:
    from k3s_infra.deploy import command, snapshots

    def show(aws) -> int:
        found = snapshots.list_snapshots(aws)
        if wants_json(args):
            print_json(document("snapshots", stack_name=aws.env.stack_name, snapshots=[s.as_json() for s in found]))
        elif found:
            print(snapshots.format_table(found))
        else:
            print(f"no etcd snapshots yet for {aws.env.stack_name}")
        return 0

    return command.run(args, show)
