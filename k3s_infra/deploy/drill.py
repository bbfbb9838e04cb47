"""k3s-infra drill as a library function: rehearse a restore in a throwaway stack and measure it.

1. Read the cluster (deploy/drill_env.py ``read_only``: its clients refuse any call that is not a
   Describe/Get/List/Head): its stack, its snapshots; choose ``snapshot`` or the newest.
   With ``fresh``: first write the marker ConfigMap through the cluster's API and take an
   on-demand snapshot (deploy/snapshot_now.py) -- the only writes on the cluster's side, asked for.
2. Create the drill stack, ``<stack>-drill`` (drill_env.drill_environment), through the normal
   deploy (lifecycle.deploy: render, package, CREATE change set, wait for the nodes); only a CREATE
   change set of that name is executed, so an existing stack is never updated.
3. Copy the snapshot object into the drill's bucket (CopyObject: the cluster's bucket is the
   source, read) and put the cluster's server token into the drill's token secret (read from the
   cluster's, written to the drill's): K3s decrypts the snapshot's bootstrap data with it
   ("If you do not use the same token value when restoring, the snapshot will be unusable, as the
   token is used to encrypt confidential data within the datastore itself",
   https://docs.k3s.io/datastore/backup-restore; k3s-io/k3s docs/adrs/token-rotation.md).
4. Restore it with the tested path, snapshots.restore, against the drill (under the drill's lock).
5. Wait until the drill's API answers with every drill server's Node Ready and the marker read,
   asked on a drill server through Run Command (deploy/drill_api.py look: no route into the VPC
   needed, so node_access.run_command must be on). RTO: restore start to that answer. Data age
   (RPO): restore start minus the snapshot's upload time; the marker's age: restore start minus
   its written-at.
6. Always (failure, Ctrl-C, SIGTERM as Ctrl-C: cli/__init__.py entry) delete the drill stack, if
   this run created it (its StackId, taken at the change set's confirmation), with teardown.destroy.

Every call on the drill's side goes through drill_env.fenced: one naming the cluster's stacks,
buckets, secrets, key, groups or node parameters is refused before it is sent. Nothing prints."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal

from botocore.exceptions import BotoCoreError, ClientError

from k3s_infra.deploy import (DeployError, HandedOver, Refused, changeset, kubeapi, lifecycle, lock,
                              snapshot_now, snapshots, stack_states, teardown)
from k3s_infra.deploy.drill_api import LOOK_TIMEOUT, ApiCheck, Marker, Writer, look, write_marker
from k3s_infra.deploy.drill_progress import (DrillLeft, DrillStep, FreshSnapshot, MarkerWritten,
                                            SnapshotCopied, TokenSeeded, WaitingForApi)
from k3s_infra.deploy.drill_env import cluster_resources, drill_environment, drill_of, fenced, read_only
from k3s_infra.deploy.groups import nested_stack, outputs
from k3s_infra.deploy.kubeconfig import NotPublished
from k3s_infra.deploy.progress import Progress, ignore
from k3s_infra.model import naming
from k3s_infra.model import outputs as o

COPY_MAX = 5 * 1024 ** 3  # one CopyObject copies at most 5 GB (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html)
FAILURES = (DeployError, Refused, ClientError, BotoCoreError, kubeapi.KubeApiError, NotPublished)
Outcome = Literal["passed", "missed", "failed", "declined"]
RUN_COMMAND_OFF = ("node_access.run_command: false: the drill reads its restored cluster through Run Command on "
                   "one of its servers (its API is internal); turn it on (the default) to drill this environment")


# --- result ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DrillRequest:
    """What ``run`` asks its ``confirm`` about."""
    stack_name: str
    drill_stack: str
    snapshot: snapshots.Snapshot | None  # None with fresh: the one about to be taken
    servers: int
    account_id: str
    region: str


@dataclass(frozen=True)
class Objective:
    name: Literal["rto", "rpo"]
    limit_seconds: float
    actual_seconds: float | None

    @property
    def met(self) -> bool:
        return self.actual_seconds is not None and self.actual_seconds <= self.limit_seconds


@dataclass
class DrillResult:
    stack_name: str
    drill_stack: str
    outcome: Outcome = "failed"
    fresh: bool = False
    snapshot: snapshots.Snapshot | None = None
    started: datetime | None = None
    ended: datetime | None = None
    restore_started: datetime | None = None
    rto_seconds: float | None = None
    data_age_seconds: float | None = None     # RPO: restore start minus the snapshot's upload
    marker: Marker | None = None              # as found in the restored cluster
    written_marker: Marker | None = None      # --fresh: the one written right before the snapshot
    marker_age_seconds: float | None = None
    api: ApiCheck | None = None               # the last look at the drill's API
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step
    objectives: tuple[Objective, ...] = ()
    failure: str | None = None
    cleanup: teardown.DestroyResult | None = None
    cleanup_error: str | None = None


def failure_text(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', exc)}"
    return str(exc)


def _admin(aws) -> Writer:
    return Writer(kubeapi.admin(aws))


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- run ------------------------------------------------------------------------------

def run(aws, *, confirm: Callable[[DrillRequest], bool], snapshot: str | None = None, fresh: bool = False,
        on_progress: Progress = ignore, poll: float = 10.0, timeout: float = 1800.0,
        objectives: dict[str, float] | None = None, artifacts_dir=None,
        kube: Callable[[object], Writer] | None = None) -> DrillResult:
    """The drill (see the module's doc). Known failures end in the result (outcome "failed", with
    ``failure``); Ctrl-C is raised again once the drill stack is deleted. ``kube``: the cluster's
    API for ``fresh``'s marker (the admin kubeconfig)."""
    env, kube = aws.env, kube or _admin
    if not env.node_access.run_command:
        raise Refused(RUN_COMMAND_OFF)
    aws.check_account()
    real = read_only(aws)
    drill_env = drill_environment(env)
    result = DrillResult(env.stack_name, drill_env.stack_name, fresh=fresh, started=_now())
    root = changeset.stack_state(real.cloudformation, env.stack_name)
    if root is None:
        raise DeployError(f"{env.stack_name} is not deployed: nothing to rehearse")
    if not outputs(root).get(o.SNAPSHOT_BUCKET) or not token_secret(real, root):
        raise DeployError(f"{env.stack_name} has no {o.SNAPSHOT_BUCKET} or {o.TOKEN_SECRET} output: is it complete?")
    drill = fenced(drill_env, aws.session, cluster_resources(real, root))
    check_absent(drill, env.stack_name)
    chosen = None if fresh else choose(real, root, snapshot)
    if not confirm(DrillRequest(env.stack_name, drill_env.stack_name, chosen, env.servers.count, env.account_id,
                                env.region)):
        result.outcome = "declined"
        return result
    created: dict[str, str] = {}
    try:
        if fresh:
            chosen = _fresh(aws, real, kube, on_progress, poll, timeout, result)
        result.snapshot = chosen
        _rehearse(real, drill, root, chosen, created, on_progress, poll, timeout, artifacts_dir, result)
        result.objectives = tuple(Objective(name, limit, result.rto_seconds if name == "rto"
                                            else result.data_age_seconds)
                                  for name, limit in sorted((objectives or {}).items()))
        result.failure = not_restored(result, env.stack_name)
        result.outcome = "failed" if result.failure else \
            "passed" if all(x.met for x in result.objectives) else "missed"
    except FAILURES as exc:
        result.failure = failure_text(exc)
    except HandedOver:  # Ctrl-C while CloudFormation creates it: the cleanup below waits, then deletes
        raise KeyboardInterrupt from None
    finally:
        _clean_up(drill, created.get("arn"), on_progress, poll, timeout, result)
        result.ended = _now()
    if result.cleanup_error and result.outcome != "failed":
        result.outcome, result.failure = "failed", result.failure or result.cleanup_error
    return result


def check_absent(drill, cluster: str) -> None:
    """The drill's stack name must be free: a leftover drill is removed only by --cleanup; a stack of
    that name that is no drill of this cluster is never used nor deleted."""
    existing = changeset.stack_state(drill.cloudformation, drill.env.stack_name)
    if existing is None:
        return
    if drill_of(existing) == cluster:
        raise DeployError(f"the drill stack {drill.env.stack_name} exists ({existing['StackStatus']}): left by an "
                          f"interrupted drill, or one running now; remove it with 'k3s-infra drill --cleanup'")
    raise Refused(f"a stack named {drill.env.stack_name} exists and is not a drill of {cluster} (no "
                  f"{naming.DRILL_TAG} tag naming it): a drill neither uses nor deletes it; rename one of the stacks")


def choose(real, root: dict, name: str | None) -> snapshots.Snapshot:
    found = snapshots.list_snapshots(real, root)
    if not found:
        raise DeployError(f"no etcd snapshot of {real.env.stack_name} in s3://{outputs(root)[o.SNAPSHOT_BUCKET]}/"
                          f"{naming.snapshot_folder(real.env)}/ to rehearse; take one: 'k3s-infra snapshots create'")
    chosen = next((s for s in found if s.name == name), None) if name else found[0]
    if chosen is None:
        raise DeployError(f"no snapshot named {name!r}; see 'k3s-infra snapshots' (newest: {found[0].name})")
    return chosen


def _fresh(aws, real, kube, on_progress: Progress, poll: float, timeout: float,
           result: DrillResult) -> snapshots.Snapshot:
    """The marker through the cluster's API (kubeconfig read through ``real``), then a snapshot."""
    started = time.monotonic()
    on_progress(DrillStep("fresh", aws.env.stack_name))
    result.written_marker = write_marker(kube(real), aws.env.stack_name, _now())
    on_progress(MarkerWritten(result.written_marker))
    taken = snapshot_now.take_snapshot(aws, timeout=timeout, poll=poll,
                                       on_progress=lambda text: on_progress(FreshSnapshot(text)))
    result.steps["fresh"] = time.monotonic() - started
    return taken


def _rehearse(real, drill, root: dict, chosen: snapshots.Snapshot, created: dict[str, str], on_progress: Progress,
              poll: float, timeout: float, artifacts_dir, result: DrillResult) -> None:
    name = drill.env.stack_name

    def confirm_create(cs: changeset.ChangeSet) -> bool:
        # Only the CREATE of the drill's own name runs; its StackId is what the cleanup deletes.
        if cs.change_set_type != "CREATE" or cs.stack_name != name:
            return False
        created["arn"] = cs.stack_arn
        return True

    def step(what: str):
        return _step(result, on_progress, what)

    with step("deploy"):
        deployed = lifecycle.deploy(drill, confirm=confirm_create, on_progress=on_progress,
                                    poll=min(poll, 2.0), artifacts_dir=artifacts_dir)
    if deployed.outcome != "deployed":
        raise DeployError(f"the drill stack {name} was not created: {deployed.outcome}"
                          + (f" ({deployed.status})" if deployed.status else ""))
    ours = changeset.stack_state(drill.cloudformation, created["arn"])
    with step("copy"):
        on_progress(copy_snapshot(drill, outputs(root)[o.SNAPSHOT_BUCKET], chosen, outputs(ours)[o.SNAPSHOT_BUCKET]))
    with step("token"):
        on_progress(seed_token(real, drill, token_secret(real, root), token_secret(drill, ours)))
    restore_started = _now()
    result.restore_started = restore_started
    result.data_age_seconds = (restore_started - chosen.last_modified).total_seconds()
    clock = time.monotonic()
    with lock.held(drill, "drill", on_progress) as progress:
        with step("restore"):
            if not snapshots.restore(drill, snapshot=chosen.name, confirm=lambda s: s.name == chosen.name,
                                     on_progress=progress, poll=poll, timeout=timeout):
                raise DeployError(f"the drill's restore did not start: {chosen.name} is not in its bucket")
        with step("api"):
            answered = wait_for_api(drill, on_progress=progress, poll=poll, timeout=timeout)
    result.rto_seconds = time.monotonic() - clock
    result.api, result.marker = answered, answered.marker
    if answered.marker is not None:
        result.marker_age_seconds = (restore_started - answered.marker.written_at).total_seconds()


def not_restored(result: DrillResult, cluster: str) -> str | None:
    """Why the drill's cluster is not the snapshot's data (None: it is). A snapshot of a running
    cluster holds at least the Node of the server that took it; the marker must be the cluster's,
    and with --fresh the one written right before the snapshot (not an older one)."""
    marker, written = result.marker, result.written_marker
    if result.api is not None and result.api.others == 0:
        return (f"the drill's cluster holds no node of {cluster}: the restore did not bring back its data (its "
                f"first server may have started a new cluster); see the drill server's journal (k3s)")
    if marker is None:
        return (f"the restored cluster holds no {naming.DRILL_MARKER_NAMESPACE}/{naming.DRILL_MARKER_NAME} "
                f"ConfigMap: this snapshot predates every marker; run 'k3s-infra drill --fresh' (writes it, then "
                f"takes a snapshot) or write it before the next scheduled snapshot")
    if marker.cluster is not None and marker.cluster != cluster:
        return f"the restored marker names {marker.cluster}, not {cluster}: not this cluster's data"
    if written is not None and marker.written_at < written.written_at:
        return (f"the restored marker was written {marker.written_at:%Y-%m-%d %H:%M:%S %Z}, before the one --fresh "
                f"wrote ({written.written_at:%Y-%m-%d %H:%M:%S %Z}): an older snapshot was restored")
    return None


@contextmanager
def _step(result: DrillResult, on_progress: Progress, name: str) -> Iterator[None]:
    """Report the step, then record its seconds however it ends."""
    on_progress(DrillStep(name, result.drill_stack))
    started = time.monotonic()
    try:
        yield
    finally:
        result.steps[name] = time.monotonic() - started


def token_secret(aws, root: dict) -> str | None:
    """The server token secret's ARN: an output of the ClusterData stack (not of the root)."""
    return outputs(nested_stack(aws.cloudformation, root["StackId"], naming.STACK_CLUSTER_DATA)).get(o.TOKEN_SECRET)


def copy_snapshot(drill, source_bucket: str, chosen: snapshots.Snapshot, target_bucket: str) -> SnapshotCopied:
    """The snapshot object into the drill's bucket, under the drill's folder (the same: one
    environment name), where the drill's K3s restores it from (--etcd-s3-folder)."""
    if chosen.size > COPY_MAX:
        raise DeployError(f"{chosen.name} is {chosen.size} bytes: more than the 5 GB one CopyObject copies")
    key = f"{naming.snapshot_folder(drill.env)}/{chosen.name}"
    drill.s3.copy_object(Bucket=target_bucket, Key=key, CopySource={"Bucket": source_bucket, "Key": chosen.key})
    return SnapshotCopied(f"s3://{source_bucket}/{chosen.key}", f"s3://{target_bucket}/{key}", chosen.size)


def seed_token(real, drill, source_secret: str, target_secret: str) -> TokenSeeded:
    """The cluster's server token into the drill's token secret: read there, written here, never
    kept or shown. The restoring server reads it (boot.sh fetch_tokens: a restore keeps it as is)."""
    value = real.secretsmanager.get_secret_value(SecretId=source_secret)["SecretString"]
    drill.secretsmanager.put_secret_value(SecretId=target_secret, SecretString=value)
    return TokenSeeded(target_secret)


def wait_for_api(drill, *, on_progress: Progress, poll: float, timeout: float) -> ApiCheck:
    """Look (drill_api.look: Run Command on a drill server) until servers.count drill servers are
    Ready and the marker was asked for (found or not); DeployError after ``timeout``."""
    started = time.monotonic()
    while True:
        left = timeout - (time.monotonic() - started)
        seen = look(drill, timeout=max(1.0, min(LOOK_TIMEOUT, left)), poll=min(poll, 2.0))
        if seen.nodes_ready and seen.marker_found and len(seen.ready) >= drill.env.servers.count:
            return seen
        waited = time.monotonic() - started
        if waited > timeout:
            why = seen.error or f"{len(seen.ready)} of {drill.env.servers.count} servers Ready"
            raise DeployError(f"gave up after {timeout:.0f}s waiting for the drill's API: {why}")
        on_progress(WaitingForApi(seen, waited))
        time.sleep(poll)


# --- cleanup --------------------------------------------------------------------------

def _clean_up(drill, arn: str | None, on_progress: Progress, poll: float, timeout: float,
              result: DrillResult) -> None:
    """Delete the drill stack this run created (never another): once it settles, with destroy."""
    if arn is None:
        return
    started = time.monotonic()
    on_progress(DrillStep("cleanup", drill.env.stack_name))
    try:
        state = changeset.stack_state(drill.cloudformation, drill.env.stack_name)
        if state is None or state["StackId"] != arn:
            return  # gone (a create discarded before it ran), or not ours
        _settle(drill, state, poll, timeout)
        result.cleanup = teardown.destroy(drill, confirm=lambda request: request.stack_name == drill.env.stack_name,
                                          on_progress=on_progress, poll=min(poll, 2.0))
        if result.cleanup.outcome not in ("destroyed", "absent"):
            raise DeployError(f"deleting {drill.env.stack_name} ended {result.cleanup.status}")
    except FAILURES as exc:
        result.cleanup_error = failure_text(exc)
        on_progress(DrillLeft(drill.env.stack_name, result.cleanup_error))
    except KeyboardInterrupt:
        on_progress(DrillLeft(drill.env.stack_name, "interrupted while deleting it"))
        raise
    finally:
        result.steps["cleanup"] = time.monotonic() - started


def cleanup(aws, *, confirm: Callable[[teardown.DestroyRequest], bool], on_progress: Progress = ignore,
            poll: float = 2.0, timeout: float = 1800.0) -> teardown.DestroyResult:
    """``drill --cleanup``: delete the drill stack an interrupted drill left, only if it is tagged as
    a drill of this cluster (the same fences: nothing of the cluster's is touched); a create still
    running (a drill cancelled mid-create) is waited for first, at most ``timeout`` seconds."""
    aws.check_account()
    real = read_only(aws)
    drill_env = drill_environment(aws.env)
    root = changeset.stack_state(real.cloudformation, aws.env.stack_name)
    drill = fenced(drill_env, aws.session, cluster_resources(real, root) if root else frozenset({aws.env.stack_name}))
    existing = changeset.stack_state(drill.cloudformation, drill_env.stack_name)
    if existing is not None and drill_of(existing) != aws.env.stack_name:
        raise Refused(f"{drill_env.stack_name} is not a drill of {aws.env.stack_name} (no {naming.DRILL_TAG} tag "
                      f"naming it): not deleted")
    if existing is not None and _busy(existing):  # a create a cancelled drill left running: its end first
        on_progress(DrillStep("cleanup", drill_env.stack_name))
        _settle(drill, existing, poll, timeout)
    return teardown.destroy(drill, confirm=confirm, on_progress=on_progress, poll=poll)


def _busy(state: dict) -> bool:
    """An operation runs that destroy may not delete under (it follows a delete already running)."""
    return stack_states.running(state["StackStatus"]) and state["StackStatus"] != "DELETE_IN_PROGRESS"


def _settle(drill, state: dict, poll: float, timeout: float) -> None:
    """Wait (at most ``timeout``) until the drill stack ``state`` describes is at rest or deleting."""
    started = time.monotonic()
    while _busy(state):
        if time.monotonic() - started > timeout:
            raise DeployError(f"{drill.env.stack_name} stayed {state['StackStatus']} for {timeout:.0f}s")
        time.sleep(poll)
        state = changeset.stack_state(drill.cloudformation, state["StackId"]) or {"StackStatus": "DELETE_COMPLETE"}
