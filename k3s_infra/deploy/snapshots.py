"""The cluster's etcd snapshots in S3 and the restore procedure.

K3s uploads a snapshot to ``<folder>/<name>`` and its optional metadata to
``<folder>/.metadata/<name>``; it names a snapshot by the key's basename and skips
empty objects (k3s-io/k3s:pkg/etcd/s3/s3.go Upload, ListSnapshots)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.deploy import DeployError, changeset
from k3s_infra.deploy.groups import describe_groups, group_of, outputs, parameters
from k3s_infra.deploy.text import say

METADATA_DIR = ".metadata"


@dataclass(frozen=True)
class Snapshot:
    name: str
    key: str
    size: int
    last_modified: datetime

    def as_json(self) -> dict:
        return {"name": self.name, "key": self.key, "size": self.size,
                "last_modified": self.last_modified.isoformat()}


def _root(aws) -> dict:
    root = changeset.stack_state(aws.cloudformation, aws.env.stack_name)
    if root is None:
        raise DeployError(f"{aws.env.stack_name} is not deployed")
    return root


def snapshot_bucket(aws, root: dict) -> str:
    bucket = outputs(root).get(o.SNAPSHOT_BUCKET)
    if not bucket:
        raise DeployError(f"{aws.env.stack_name} has no {o.SNAPSHOT_BUCKET} output")
    return bucket


def list_snapshots(aws, root: dict | None = None) -> list[Snapshot]:
    """Snapshots of this environment, newest first."""
    aws.check_account()
    bucket = snapshot_bucket(aws, root or _root(aws))
    prefix = naming.snapshot_folder(aws.env) + "/"
    found = []
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if item.get("Size", 0) == 0 or f"/{METADATA_DIR}/" in f"/{key}":
                continue
            found.append(Snapshot(key.rsplit("/", 1)[-1], key, item["Size"], item["LastModified"]))
    return sorted(found, key=lambda s: s.last_modified, reverse=True)


def format_table(snapshots: list[Snapshot]) -> str:
    rows = [("NAME", "SIZE", "LAST MODIFIED")] + [
        (s.name, str(s.size), s.last_modified.strftime("%Y-%m-%d %H:%M:%S %Z").strip()) for s in snapshots]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows)


# --- restore ------------------------------------------------------------------------


def _wait(what: str, done: Callable[[], bool], *, timeout: float, poll: float, out: IO[str]) -> None:
    """Poll ``done`` until it holds; a progress line every poll; DeployError after ``timeout``."""
    start = time.monotonic()
    while not done():
        waited = time.monotonic() - start
        if waited > timeout:
            raise DeployError(f"gave up after {timeout:.0f}s waiting for {what}")
        say(out, f"  waiting for {what} ({waited:.0f}s)")
        time.sleep(poll)


def restore(aws, *, snapshot: str | None, confirm: Callable[[str], bool], out: IO[str] | None = None,
            poll: float = 10.0, timeout: float = 1800.0) -> int:
    """Restore the cluster from a snapshot: the cluster-init server is replaced and its boot
    resets etcd from the snapshot named in the restore-request parameter (cluster-reset);
    the joining servers are stopped meanwhile and rejoin afterwards; agents are left alone."""
    out = out or sys.stdout
    env = aws.env
    root = _root(aws)
    snapshots = list_snapshots(aws, root)
    if not snapshots:
        raise DeployError(f"no etcd snapshot in s3://{snapshot_bucket(aws, root)}/{naming.snapshot_folder(env)}/")
    chosen = next((s for s in snapshots if s.name == snapshot), None) if snapshot else snapshots[0]
    if chosen is None:
        raise DeployError(f"no snapshot named {snapshot!r}; see 'k3s-infra snapshots' (newest: {snapshots[0].name})")
    init_stack, init_group = group_of(aws, root["StackId"], naming.STACK_SERVER_INIT)
    servers_stack, servers_group = group_of(aws, root["StackId"], naming.STACK_SERVERS)
    if init_group is None or servers_group is None:
        raise DeployError(f"{env.stack_name}: the server groups cannot be found; is the stack complete?")
    sizes = parameters(servers_stack)
    question = (f"restore {env.stack_name} from {chosen.name} ({chosen.last_modified:%Y-%m-%d %H:%M:%S}): "
                f"every change since is lost, the servers are replaced")
    if not confirm(question):
        say(out, "not restored")
        return 1
    request = naming.restore_request_parameter(env)
    aws.ssm.put_parameter(Name=request, Value=chosen.name, Type="String", Overwrite=True,
                          Description="k3s-infra restore: snapshot the booting first server restores")
    say(out, f"1/5 wrote {request} = {chosen.name}")
    autoscaling = aws.autoscaling
    servers_name = servers_group["AutoScalingGroupName"]
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=servers_name, MinSize=0, DesiredCapacity=0)
    say(out, f"2/5 scaled the joining servers ({servers_name}) to 0")
    _wait("the joining servers to terminate", lambda: not describe_groups(
        autoscaling, [servers_name]).get(servers_name, {}).get("Instances"), timeout=timeout, poll=poll, out=out)
    init_name = init_group["AutoScalingGroupName"]
    old = [i["InstanceId"] for i in init_group.get("Instances", [])]
    for instance in old:
        # Its group launches a replacement, whose boot finds the restore request.
        autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance, ShouldDecrementDesiredCapacity=False)
    say(out, f"3/5 terminated the cluster-init server {', '.join(old) or '(none running)'}; {init_name} replaces it")
    try:
        _wait(f"the new first server to restore {chosen.name} and delete {request}",
              lambda: not _parameter_exists(aws.ssm, request), timeout=timeout, poll=poll, out=out)
    except DeployError as exc:
        raise DeployError(
            f"{exc}; the joining servers stay at 0 until the first server is back: check its boot messages "
            f"('k3s-infra-boot:' lines in its console output), then 'aws autoscaling update-auto-scaling-group --auto-scaling-group-name "
            f"{servers_name} --min-size {sizes.get(o.MIN_SIZE)} --max-size {sizes.get(o.MAX_SIZE)} "
            f"--desired-capacity {sizes.get(o.DESIRED_CAPACITY)}'") from None
    say(out, f"4/5 the first server restored {chosen.name}")
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=servers_name, MinSize=int(sizes.get(o.MIN_SIZE, 0) or 0),
        MaxSize=int(sizes.get(o.MAX_SIZE, 0) or 0), DesiredCapacity=int(sizes.get(o.DESIRED_CAPACITY, 0) or 0))
    say(out, f"5/5 set {servers_name} back to min {sizes.get(o.MIN_SIZE)} / desired "
                f"{sizes.get(o.DESIRED_CAPACITY)} / max {sizes.get(o.MAX_SIZE)}: they join the restored cluster")
    say(out, "check: 'k3s-infra status' (node groups in service), then kubectl get nodes")
    return 0


def _parameter_exists(ssm, name: str) -> bool:
    try:
        ssm.get_parameter(Name=name)
        return True
    except ssm.exceptions.ParameterNotFound:
        return False
