"""An etcd snapshot to S3 now: `k3s etcd-snapshot save` on one server through AWS Systems
Manager Run Command, then wait for its object in the snapshot bucket.

Why it lands in the cluster's bucket with no flag: `k3s etcd-snapshot` reads the server's
/etc/rancher/k3s/config.yaml and its config.yaml.d drop-ins, keeping the keys that are
etcd-snapshot flags (k3s-io/k3s pkg/configfilearg/defaultparser.go: ``etcd-snapshot:1`` in
After, ValidFlags ``cmds.EtcdSnapshotFlags``; parser.go readConfigFile, dotDFiles), and
``etcd-s3``, ``etcd-s3-bucket``, ``etcd-s3-region`` and ``etcd-s3-folder`` are aliases of those
flags (pkg/cli/cmds/etcd_snapshot.go): bootstrap/k3s_config.py writes exactly them. `save` asks
the running server (https://127.0.0.1:6443, /db/snapshot, with the server token it reads from
its data dir) to take the snapshot (pkg/cli/etcdsnapshot/etcd_snapshot.go save), which names it
``<name>-<node name>-<unix seconds>`` and uploads it to ``<etcd-s3-folder>/<that name>``
(pkg/etcd/snapshot.go Snapshot; pkg/etcd/s3/s3.go Upload). Nodes are named by instance ID
(boot.sh discover). A failed upload does not fail `save` (Snapshot logs it and goes on), so
the object itself is what this waits for (deploy/snapshots.list_snapshots).

Retention is per name prefix: after every S3 upload the server prunes the objects under
``<etcd-s3-folder>/<the request's name>``, all servers' alike, to the newest ``etcd-s3-retention``
(pkg/etcd/snapshot.go snapshot -> s3.Client.SnapshotRetention(ctx, EtcdSnapshotName), pkg/etcd/s3/s3.go).
So a save never touches the schedule's ``etcd-snapshot-*`` objects, nor the schedule ours. `save`
zeroes etcd-snapshot-retention (pkg/cli/etcdsnapshot/etcd_snapshot.go save), which before
v1.33.4 also held S3's count; since etcd-s3-retention exists (k3s-io/k3s#12669), which the
servers' config sets to k3s.etcd_snapshots.retention, expect at most that many ``on-demand-*``
objects to survive. The bucket's lifecycle (k3s.etcd_snapshots.expire_days) expires the rest."""

from __future__ import annotations

import time
from collections.abc import Callable

from k3s_infra.bootstrap.k3s_config import K3S_BINARY
from k3s_infra.deploy import DeployError, changeset, node_access, snapshots
from k3s_infra.deploy.aws import Aws
from k3s_infra.model import naming

# K3s's default on-demand name (docs.k3s.io/cli/etcd-snapshot, "On-demand"), said explicitly.
NAME = "on-demand"
COMMAND = f"{K3S_BINARY} etcd-snapshot save --name {NAME}"
ERROR_TAIL = 800  # characters of the command's stderr an error quotes


def take_snapshot(aws: Aws, *, timeout: float, poll: float,
                  on_progress: Callable[[str], None] | None = None) -> snapshots.Snapshot:
    """Take an etcd snapshot on one server whose SSM Agent is online and return it once its
    object is in the snapshot bucket. DeployError when snapshots are off, no server can be
    reached, the command fails, or nothing appears within ``timeout`` seconds (in all)."""
    say = on_progress or (lambda _text: None)
    env = aws.env
    if not env.k3s.etcd_snapshots.enabled:
        raise DeployError(f"{env.name} takes no etcd snapshots (k3s.etcd_snapshots.enabled is false): the servers "
                          f"have no S3 settings to upload one to")
    if not env.node_access.run_command:
        raise DeployError(f"{env.name} turns Run Command off (node_access.run_command: false): "
                          f"the servers' SSM Agent cannot take the command")
    deadline = time.monotonic() + timeout
    root = changeset.deployed(aws)
    server = node_access.pick_online(aws, node_access.in_service(aws, root["StackId"], node_access.SERVER_STACKS),
                                     "server")
    before = {s.key for s in snapshots.list_snapshots(aws, root)}
    clock = (deadline, poll, timeout)
    command_id = node_access.send_shell(aws, server.instance_id, ["set -eu", COMMAND], timeout=timeout,
                                        comment="k3s-infra snapshots create")
    say(f"{server.instance_id} ({server.stack}): {COMMAND} (command {command_id})")
    shell = node_access.wait_shell(aws, command_id, server.instance_id, clock=clock,
                                   on_status=lambda status: say(f"command {command_id}: {status}"))
    if shell.status != "Success":
        raise DeployError(_failed(shell))
    prefix = f"{naming.snapshot_folder(env)}/{NAME}-{server.instance_id}-"
    while True:
        new = [s for s in snapshots.list_snapshots(aws, root) if s.key not in before and s.key.startswith(prefix)]
        if new:
            say(f"{new[0].name} is in s3://{snapshots.snapshot_bucket(aws, root)}/{new[0].key}")
            return new[0]  # newest first
        node_access.tick(clock, f"the snapshot under s3://{snapshots.snapshot_bucket(aws, root)}/{prefix}* "
                         f"(the command succeeded: the server's K3s log says why the upload failed: journalctl -u k3s)")
        say(f"waiting for {prefix}* in the snapshot bucket")


def _failed(shell: node_access.Shell) -> str:
    stderr = (shell.stderr or shell.stdout).strip()
    said = f": {stderr[-ERROR_TAIL:]}" if stderr else ""
    return (f"`{COMMAND}` on {shell.instance_id} ended {shell.details}"
            + (f" (exit {shell.code})" if shell.code is not None else "") + f"{said} (command {shell.command_id})")
