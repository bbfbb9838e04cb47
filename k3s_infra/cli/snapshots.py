"""k3s-infra snapshots: the etcd snapshots in the cluster's S3 bucket, newest first.

``--output json`` prints {"kind": "snapshots", "version": 1, "stack_name", "bucket"?, "snapshots":
[{"name", "key", "size", "last_modified"}]} (size in bytes, the table's in KiB/MiB/GiB; ISO 8601),
newest first; ``name`` is what ``k3s-infra restore --snapshot`` takes."""

from __future__ import annotations

import argparse

from k3s_infra.cli import EXIT_OK
from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli.output import document, print_json, wants_json
from k3s_infra.cli.progress import binary_size
from k3s_infra.deploy.aws import Aws
from k3s_infra.deploy.snapshots import Snapshot, list_snapshots


def run(args: argparse.Namespace) -> int:
    def show(aws: Aws) -> int:
        found = list_snapshots(aws)
        if wants_json(args):
            print_json(document("snapshots", stack_name=aws.env.stack_name, snapshots=[as_json(s) for s in found]))
        elif found:
            print(format_table(found))
        else:
            print(f"no etcd snapshots yet for {aws.env.stack_name}")
        return EXIT_OK

    return cli_aws.run(args, show)


def as_json(snapshot: Snapshot) -> dict:
    return {"name": snapshot.name, "key": snapshot.key, "size": snapshot.size,
            "last_modified": snapshot.last_modified.isoformat()}


def format_table(found: list[Snapshot]) -> str:
    rows = [("NAME", "SIZE", "LAST MODIFIED")] + [
        (s.name, binary_size(s.size), s.last_modified.strftime("%Y-%m-%d %H:%M:%S %Z").strip()) for s in found]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows)
