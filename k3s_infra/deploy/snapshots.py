"""The cluster's etcd snapshots in S3 and the restore procedure.

K3s uploads a snapshot to ``<folder>/<name>`` and its optional metadata to
``<folder>/.metadata/<name>``; it names a snapshot by the key's basename and skips
empty objects (k3s-io/k3s:pkg/etcd/s3/s3.go Upload, ListSnapshots)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import BotoCoreError, ClientError

from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.deploy import DeployError, changeset, restore_request, stack_states
from k3s_infra.deploy.groups import describe_groups, group_of, outputs, parameters
from k3s_infra.deploy.progress import (FirstServerReplaced, JoiningServersRestarted, JoiningServersStopping,
                                       Progress, RestoreRequested, RestoreWithdrawn, SnapshotRestored,
                                       WaitingForJoiningServers, WaitingForRestore, ignore)

METADATA_DIR = ".metadata"


@dataclass(frozen=True)
class Snapshot:
    name: str
    key: str
    size: int
    last_modified: datetime


def snapshot_bucket(aws, root: dict) -> str:
    bucket = outputs(root).get(o.SNAPSHOT_BUCKET)
    if not bucket:
        raise DeployError(f"{aws.env.stack_name} has no {o.SNAPSHOT_BUCKET} output")
    return bucket


def list_snapshots(aws, root: dict | None = None) -> list[Snapshot]:
    """Snapshots of this environment, newest first."""
    aws.check_account()
    bucket = snapshot_bucket(aws, root or changeset.deployed(aws))
    prefix = naming.snapshot_folder(aws.env) + "/"
    found = []
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if item.get("Size", 0) == 0 or f"/{METADATA_DIR}/" in f"/{key}":
                continue
            found.append(Snapshot(key.rsplit("/", 1)[-1], key, item["Size"], item["LastModified"]))
    return sorted(found, key=lambda s: s.last_modified, reverse=True)


# --- restore ------------------------------------------------------------------------


def _wait(what: str, done: Callable[[], bool], *, timeout: float, poll: float,
          report: Callable[[float], None]) -> None:
    """Poll ``done`` until it holds; ``report(seconds waited)`` every poll; DeployError after ``timeout``."""
    start = time.monotonic()
    while not done():
        waited = time.monotonic() - start
        if waited > timeout:
            raise DeployError(f"gave up after {timeout:.0f}s waiting for {what}")
        report(waited)
        time.sleep(poll)


def restore(aws, *, snapshot: str | None, confirm: Callable[[Snapshot], bool], on_progress: Progress = ignore,
            poll: float = 10.0, timeout: float = 1800.0) -> bool:
    """Restore the cluster from a snapshot (default: the newest) once ``confirm`` agrees:
    the joining servers are stopped, a restore request (deploy/restore_request.py) naming
    the snapshot, the first-server instances and an expiry (now + ``timeout``) is written,
    those instances are terminated and the replacing first server's boot resets etcd from
    the snapshot (cluster-reset) and deletes the request; then the joining servers rejoin.
    Agents are left alone. A run that stops after writing its request deletes it again
    (only if it still holds this run's request). Returns False when not confirmed."""
    env = aws.env
    root = changeset.deployed(aws)
    stack_states.check_restorable(env.stack_name, root["StackStatus"])  # before anything is read or changed
    snapshots = list_snapshots(aws, root)
    if not snapshots:
        raise DeployError(f"no etcd snapshot in s3://{snapshot_bucket(aws, root)}/{naming.snapshot_folder(env)}/")
    chosen = next((s for s in snapshots if s.name == snapshot), None) if snapshot else snapshots[0]
    if chosen is None:
        raise DeployError(f"no snapshot named {snapshot!r}; see 'k3s-infra snapshots' (newest: {snapshots[0].name})")
    try:
        restore_request.check_snapshot(chosen.name)
    except restore_request.RestoreRequestError as exc:
        raise DeployError(str(exc)) from None
    init_stack, init_group = group_of(aws, root["StackId"], naming.STACK_SERVER_INIT)
    servers_stack, servers_group = group_of(aws, root["StackId"], naming.STACK_SERVERS)
    if init_group is None or servers_group is None:
        raise DeployError(f"{env.stack_name}: the server groups cannot be found; is the stack complete?")
    sizes = parameters(servers_stack)
    if not confirm(chosen):
        return False
    autoscaling = aws.autoscaling
    servers_name = servers_group["AutoScalingGroupName"]
    hint = _restart_hint(servers_name, sizes)
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=servers_name, MinSize=0, DesiredCapacity=0)
    on_progress(JoiningServersStopping(servers_name))
    try:
        _wait("the joining servers to terminate", lambda: not describe_groups(
            autoscaling, [servers_name]).get(servers_name, {}).get("Instances"), timeout=timeout, poll=poll,
            report=lambda waited: on_progress(WaitingForJoiningServers(waited)))
    except DeployError as exc:
        raise DeployError(f"{exc}; no restore request was written; the joining servers stay at 0: {hint}") from None
    # The request names the instances this run terminates: listed before it is written.
    init_name = init_group["AutoScalingGroupName"]
    old = tuple(i["InstanceId"] for i in describe_groups(autoscaling, [init_name]).get(init_name, {}).get(
        "Instances", []))
    if not old:
        raise DeployError(f"{init_name} has no first server to replace, so no boot could take a restore request; "
                          f"no request was written; the joining servers stay at 0: {hint}")
    request = restore_request.new(chosen.name, old, time.time(), timeout)
    parameter = naming.restore_request_parameter(env)
    aws.ssm.put_parameter(Name=parameter, Value=request.format(), Type="String", Overwrite=True,
                          Description=restore_request.DESCRIPTION)
    try:
        on_progress(RestoreRequested(parameter, request))
        for instance in old:
            # Its group launches a replacement, whose boot finds the restore request.
            autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=instance,
                                                                 ShouldDecrementDesiredCapacity=False)
        on_progress(FirstServerReplaced(old, init_name))
        _wait(f"the new first server to restore {chosen.name} and delete {parameter}",
              lambda: not _parameter_exists(aws.ssm, parameter), timeout=timeout, poll=poll,
              report=lambda waited: on_progress(WaitingForRestore(chosen.name, parameter, waited)))
    except (DeployError, ClientError, BotoCoreError) as exc:  # AWS-side: one error that says it all
        outcome, error = restore_request.withdraw(aws.ssm, parameter, request)
        raise DeployError(f"{_failure(exc)}; {_withdrawal(parameter, env.region, outcome, error)}; the joining "
                          f"servers stay at 0 until the first server is back: check its boot messages "
                          f"('k3s-infra-boot:' lines in its console output), then {hint}") from exc
    except BaseException:  # Ctrl-C, or a fault: withdraw, say so, let it go on
        outcome, error = restore_request.withdraw(aws.ssm, parameter, request)
        on_progress(RestoreWithdrawn(parameter, env.region, outcome, error, servers_name, sizes.get(o.MIN_SIZE),
                                     sizes.get(o.DESIRED_CAPACITY), sizes.get(o.MAX_SIZE)))
        raise
    on_progress(SnapshotRestored(chosen.name))
    autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=servers_name, MinSize=int(sizes.get(o.MIN_SIZE, 0) or 0),
        MaxSize=int(sizes.get(o.MAX_SIZE, 0) or 0), DesiredCapacity=int(sizes.get(o.DESIRED_CAPACITY, 0) or 0))
    on_progress(JoiningServersRestarted(servers_name, sizes.get(o.MIN_SIZE), sizes.get(o.DESIRED_CAPACITY),
                                        sizes.get(o.MAX_SIZE)))
    return True


def _restart_hint(group: str, sizes: dict[str, str]) -> str:
    return (f"'aws autoscaling update-auto-scaling-group --auto-scaling-group-name {group} --min-size "
            f"{sizes.get(o.MIN_SIZE)} --max-size {sizes.get(o.MAX_SIZE)} --desired-capacity "
            f"{sizes.get(o.DESIRED_CAPACITY)}'")


def _failure(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', exc)}"
    return str(exc)


def _withdrawal(parameter: str, region: str, outcome: str, error: str | None) -> str:
    return {
        "deleted": f"deleted the restore request {parameter}, so no later boot acts on it",
        "absent": f"the restore request {parameter} is gone (a first server may have taken it just now: "
                  f"see 'k3s-infra status')",
        "replaced": f"left {parameter} as it is: it holds another run's restore request",
    }.get(outcome, f"could not delete the restore request {parameter} ({error}): delete it with "
                   f"'aws ssm delete-parameter --name {parameter} --region {region}'")


def _parameter_exists(ssm, name: str) -> bool:
    try:
        ssm.get_parameter(Name=name)
        return True
    except ssm.exceptions.ParameterNotFound:
        return False
