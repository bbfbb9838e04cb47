"""k3s-infra snapshots: the etcd snapshots in the cluster's S3 bucket, newest first; ``snapshots
create`` takes one now (deploy/snapshot_now.py: Run Command on a server) and waits for it.

``--output json`` prints {"kind": "snapshots", "version": 1, "stack_name", "bucket"?, "snapshots":
[{"name", "key", "size", "last_modified"}]} (size in bytes, the table's in KiB/MiB/GiB; ISO 8601),
newest first; ``name`` is what ``k3s-infra restore --snapshot`` takes. ``create --output json``
prints {"kind": "snapshot", "version": 1, "stack_name", "snapshot": {the same four keys}}.

No stack lock: a snapshot changes no stack, group or parameter (K3s reads etcd and writes one
new object), and K3s itself refuses a second save while one runs ("snapshot save already in
progress", k3s-io/k3s pkg/etcd/snapshot.go). A deploy rolling the chosen server meanwhile
fails the command, which is reported; taking the lock would also ask for write rights on
the artifact bucket that a snapshot does not otherwise need."""

from __future__ import annotations

import argparse
import sys

from k3s_infra.cli import EXIT_OK, UsageError, load, source_of
from k3s_infra.cli import aws as cli_aws
from k3s_infra.config import ConfigError
from k3s_infra.cli.output import document, print_json, say, wants_json
from k3s_infra.cli.progress import binary_size
from k3s_infra.deploy.aws import Aws
from k3s_infra.deploy.snapshot_now import take_snapshot
from k3s_infra.deploy.snapshots import Snapshot, list_snapshots

CREATE_TIMEOUT = 900.0  # seconds: a K3s save and upload of a small cluster's etcd takes well under one
POLL = 5.0


def run(args: argparse.Namespace) -> int:
    if getattr(args, "action", None) == "create":
        return _create(args)
    if getattr(args, "timeout", None) is not None:
        raise UsageError("--timeout belongs to 'k3s-infra snapshots create'")

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


def _create(args: argparse.Namespace) -> int:
    # What the file turns off is the file's mistake: exit 2 before any AWS call, as drill and shell.
    env = load(args)
    off = [(field, why) for field, on, why in (
        ("k3s.etcd_snapshots.enabled", env.k3s.etcd_snapshots.enabled,
         "false: the servers have no S3 settings to upload a snapshot to"),
        ("node_access.run_command", env.node_access.run_command,
         "false: the servers' SSM Agent cannot take the command that saves a snapshot")) if not on]
    if off:
        raise ConfigError(source_of(args), off)
    timeout = args.timeout if args.timeout is not None else CREATE_TIMEOUT
    # Progress for people: on stderr when stdout carries the JSON document.
    out = sys.stderr if wants_json(args) else None

    def create(aws: Aws) -> int:
        snapshot = take_snapshot(aws, timeout=timeout, poll=POLL, on_progress=lambda text: say(text, out))
        if wants_json(args):
            print_json(document("snapshot", stack_name=aws.env.stack_name, snapshot=as_json(snapshot)))
        else:
            say(f"snapshot {snapshot.name} taken ({binary_size(snapshot.size)})")
        return EXIT_OK

    return cli_aws.run(args, create)


def as_json(snapshot: Snapshot) -> dict:
    return {"name": snapshot.name, "key": snapshot.key, "size": snapshot.size,
            "last_modified": snapshot.last_modified.isoformat()}


def format_table(found: list[Snapshot]) -> str:
    rows = [("NAME", "SIZE", "LAST MODIFIED")] + [
        (s.name, binary_size(s.size), s.last_modified.strftime("%Y-%m-%d %H:%M:%S %Z").strip()) for s in found]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows)
