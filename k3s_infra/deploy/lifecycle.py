"""plan, deploy and destroy as library functions: each takes an ``Aws`` (clients for one
environment), reports its steps to ``on_progress`` (deploy/progress.py) as they happen
and returns how it ended; it never prints (the CLI does: k3s_infra/cli/). Status:
deploy/status.py, kubeconfig: deploy/kubeconfig.py, restore: deploy/snapshots.py."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import yaml
from botocore.exceptions import ClientError

from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.deploy import (DeployError, Refused, artifacts, changeset, images, leftovers, protection, quorum, readiness,
                              restore_request, retained, roll_order, stack_states)
from k3s_infra.deploy.events import READ_ERRORS, Watcher
from k3s_infra.deploy import groups
from k3s_infra.deploy.groups import nested_stacks
from k3s_infra.deploy.package import Package, package
from k3s_infra.deploy.upgrades import check_issuer_upgrade
from k3s_infra.deploy.timings import Measured, measure
from k3s_infra.deploy.progress import (ArtifactsCleaned, ChangeSetDiscarded, ChangeSetReady, DeleteRetry,
                                       Deleting, EventsUnavailable, Executing, ExecutionFailed, ImagesChosen,
                                       LeftoversDeleted, LeftoversFound, LeftoversWaiting,
                                       LoadBalancerProtectionRemoved, NestedStacksUnlisted, NodeParametersDeleted,
                                       NothingToDestroy, Packaged, PlanUploads, Progress, ProtectionRemoved,
                                       QuorumLossAllowed, RestoreRequestPending, Retained, SnapshotBucketEmptied,
                                       StackDeleted, ignore)
from k3s_infra.render import render

DELETE_ATTEMPTS = 3


@dataclass(frozen=True)
class PlanResult:
    change_set: changeset.ChangeSet  # already deleted again: plan executes nothing
    package: Package


@dataclass(frozen=True)
class DeployResult:
    stack_name: str
    outcome: Literal["deployed", "up to date", "declined", "failed"]
    status: str | None = None  # the root's final status, once executed
    protected: bool = False    # termination protection is on
    outputs: dict[str, str] = field(default_factory=dict)
    timings: Measured | None = None  # each nested stack's wave, from the stack events followed


@dataclass(frozen=True)
class DestroyRequest:
    """What ``destroy`` asks its ``confirm`` about."""
    stack_name: str
    nested_stacks: int | None  # None: they could not be listed
    account_id: str
    region: str


DestroyOutcome = Literal["destroyed", "absent", "declined", "failed"]


@dataclass(frozen=True)
class DestroyPlan:
    """What ``destroy`` would do (``destroy_plan``; ``destroy --dry-run`` prints it)."""
    request: DestroyRequest
    status: str | None  # the root's; None: no such stack, only templates would be removed
    artifacts: str      # s3://bucket/<cluster>/: this cluster's templates
    termination_protection: bool = False
    protected_load_balancers: tuple[str, ...] = ()  # ARNs whose deletion protection is lifted
    leftovers: leftovers.Leftovers | None = None    # what the cloud controller made, deleted first
    buckets: tuple[tuple[str, str], ...] = ()       # (what, bucket) emptied before the delete
    parameters: tuple[str, ...] = ()                # node-owned SSM parameters, deleted where present
    retained: tuple[tuple[str, str, str], ...] = ()  # (stack, resource type, physical ID) kept
    retained_listed: bool = True
    protected: bool = False


def root_outputs(cfn, stack_name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}


# --- plan / deploy ----------------------------------------------------------------

def _prepare(aws, on_progress: Progress, *, update_image: bool, allow_quorum_loss: bool = False,
             artifacts_dir: Path | None = None):
    """Checks and choices made before the templates are uploaded: account, pinned images, quorum;
    then the K3s files, checked and staged (deploy/artifacts.py; from ``artifacts_dir`` if given).
    Returns (the described root or None, change set parameters)."""
    env = aws.env
    aws.check_account()
    root = changeset.stack_state(aws.cloudformation, env.stack_name)
    stack_states.change_set_type(env.stack_name, root)  # a stack no change set can take: refused before any upload
    retained.check_first_deploy(aws, root)
    check_issuer_upgrade(env, root)
    current = quorum.current_servers(aws, root)
    if allow_quorum_loss and current is not None and env.servers.count < quorum.majority(current):
        on_progress(QuorumLossAllowed(current, env.servers.count))
    elif current is not None:
        quorum.check(current, env.servers.count)
    choices = images.choose(aws, root, update_image=update_image)
    if choices:
        on_progress(ImagesChosen(tuple(choices)))
    return root, images.stack_parameters(choices) + artifacts.prepare(aws, directory=artifacts_dir,
                                                                      on_progress=on_progress)


def plan(aws, *, on_progress: Progress = ignore, update_image: bool = False,
         artifacts_dir: Path | None = None) -> PlanResult:
    """Package and describe the change set of the root stack, then delete it: nothing runs."""
    env = aws.env
    root, parameters = _prepare(aws, on_progress, update_image=update_image, artifacts_dir=artifacts_dir)
    on_progress(PlanUploads(env.artifact_bucket))
    pkg = package(aws, render(env))
    on_progress(Packaged(pkg))
    cs = changeset.create(aws, pkg, parameters=parameters, current=root)
    changeset.discard(aws, cs)
    return PlanResult(cs, pkg)


def _report_restore_request(aws, on_progress: Progress) -> None:
    """A restore request in SSM, before anything changes: a deploy that replaces the first
    server starts a boot that may act on it. Best effort: a role that cannot read it deploys all the same."""
    try:
        pending = restore_request.read(aws.ssm, naming.restore_request_parameter(aws.env), time.time())
    except READ_ERRORS:
        return
    if pending is not None:
        on_progress(RestoreRequestPending(pending))


def deploy(aws, *, confirm: Callable[[changeset.ChangeSet], bool], on_progress: Progress = ignore,
           poll: float = 2.0, update_image: bool = False, allow_quorum_loss: bool = False,
           artifacts_dir: Path | None = None) -> DeployResult:
    """Package, create the change set, ``confirm`` it, execute it and follow its events, then
    wait for the nodes it asked for (deploy/readiness.py: DeployError when they never get ready)."""
    env = aws.env
    cfn = aws.cloudformation
    root, parameters = _prepare(aws, on_progress, update_image=update_image, allow_quorum_loss=allow_quorum_loss,
                                artifacts_dir=artifacts_dir)
    _report_restore_request(aws, on_progress)
    pkg = package(aws, render(env))
    on_progress(Packaged(pkg))
    cs = changeset.create(aws, pkg, parameters=parameters, current=root)
    try:
        if cs.empty:
            changeset.discard(aws, cs)
            protection.apply(aws, root["StackId"], env.protected)  # put back what someone changed by hand
            return DeployResult(env.stack_name, "up to date")
        if root is not None and not allow_quorum_loss:
            quorum.check_servers_ready(aws, root, cs.changes)
        on_progress(ChangeSetReady(cs))
        if not confirm(cs):
            changeset.discard(aws, cs)
            on_progress(ChangeSetDiscarded())
            return DeployResult(env.stack_name, "declined")
    except BaseException:  # refused without a terminal, Ctrl-C at the prompt: leave nothing behind
        changeset.discard(aws, cs)
        on_progress(ChangeSetDiscarded())
        raise
    stack_arn = cs.stack_arn
    watcher = Watcher(cfn, stack_arn, env.stack_name, on_progress=on_progress)
    watcher.prime()
    on_progress(Executing(cs.change_set_type, env.stack_name))
    started = datetime.now(timezone.utc)
    with protection.lifted_during_update(aws, root, env.protected):
        try:
            changeset.execute(aws, cs)
        except DeployError as exc:
            on_progress(ExecutionFailed(str(exc)))
            try:  # best effort: whatever the stacks recorded before the API gave up
                watcher.poll()
                on_progress(watcher.failure(changeset.stack_state(cfn, stack_arn)["StackStatus"]))
            except Exception as detail:  # noqa: BLE001 - the execution error above is the news
                on_progress(EventsUnavailable(type(detail).__name__))
            return DeployResult(env.stack_name, "failed")
        status = watcher.wait(poll=poll)
    if not stack_states.succeeded(status):  # a rollback is never a success
        on_progress(watcher.failure(status))
        return DeployResult(env.stack_name, "failed", status, timings=measure(watcher.events, stack_arn))
    protection.apply(aws, stack_arn, env.protected)  # a new stack's; an update's is set back above
    # CloudFormation waits for nodes only on create and on a rolling update: wait for the nodes
    # of a size change too (deploy/readiness.py). The deploy started at its first stack event
    # in AWS's clock, or earlier by this machine's.
    since = min([started, *(event["Timestamp"] for event in watcher.events)])
    timings = measure(watcher.events, stack_arn)
    if cs.change_set_type == "CREATE":  # the create root had no roll order: record it (never fatal)
        roll_order.record(aws, pkg, parameters, stack_arn, on_progress, poll)
    readiness.wait_for_nodes(aws, stack_arn, since=since, on_progress=on_progress)
    return DeployResult(env.stack_name, "deployed", status, env.protected, root_outputs(cfn, stack_arn), timings)


# --- destroy ------------------------------------------------------------------------

def _retained(aws, rendering, nested: list[tuple[str, dict]]) -> list[tuple[str, str, str]]:
    """(stack, resource type, physical ID) of resources whose DeletionPolicy keeps them."""
    cfn = aws.cloudformation
    physical = {logical: stack.get("StackId") for logical, stack in nested}
    result = []
    for child in rendering.children:
        body = yaml.safe_load(child.body) if rendering.fmt == "yaml" else None
        if body is None:
            body = json.loads(child.body)
        keep = {lid: r["Type"] for lid, r in body.get("Resources", {}).items()
                if r.get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate")}
        if not keep or not physical.get(child.stack_id):
            continue
        try:
            resources = cfn.describe_stack_resources(StackName=physical[child.stack_id])["StackResources"]
        except ClientError:
            resources = []
        ids = {r["LogicalResourceId"]: r.get("PhysicalResourceId", "?") for r in resources}
        for lid, type_ in keep.items():
            if lid in ids:
                result.append((child.stack_id, type_, ids[lid]))
    return result


def empty_bucket(s3, bucket: str, prefix: str = "") -> int:
    """Delete every object version and delete marker (CloudFormation cannot delete a bucket
    that still holds any: https://docs.aws.amazon.com/AmazonS3/latest/userguide/delete-bucket.html).
    Returns how many were removed; a bucket already gone counts as empty."""
    removed = 0
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            objects = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                       for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            for start in range(0, len(objects), 1000):  # DeleteObjects takes at most 1000 keys
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objects[start:start + 1000], "Quiet": True})
            removed += len(objects)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise
    return removed


def _node_parameters(env) -> tuple[str, ...]:
    return naming.cluster_state_parameter(env), naming.restore_request_parameter(env)


def _delete_node_parameters(aws) -> NodeParametersDeleted:
    """The SSM parameters nodes and 'restore' create belong to no stack: delete them here, or
    a redeploy's first server would find 'initialised' and wait to join a cluster that is gone."""
    deleted = []
    for name in _node_parameters(aws.env):
        try:
            aws.ssm.delete_parameter(Name=name)
            deleted.append(name)
        except aws.ssm.exceptions.ParameterNotFound:
            pass
    return NodeParametersDeleted(tuple(deleted))


def _empty_artifacts(aws) -> ArtifactsCleaned:
    """Remove this cluster's templates from the artifact bucket; remove the bucket when
    nothing else is left in it (it is shared by the environments of one account and region)."""
    env = aws.env
    s3, bucket = aws.s3, env.artifact_bucket
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        return ArtifactsCleaned(bucket, existed=False)
    prefix = f"{naming.cluster_name(env)}/"
    removed = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        objects = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                   for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if objects:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
            removed += len(objects)
    left = s3.list_object_versions(Bucket=bucket, MaxKeys=1)
    if left.get("Versions") or left.get("DeleteMarkers"):
        return ArtifactsCleaned(bucket, existed=True, removed=removed)
    s3.delete_bucket(Bucket=bucket)
    return ArtifactsCleaned(bucket, existed=True, removed=removed, bucket_deleted=True)


def _nested(aws, root: dict, on_progress: Progress) -> list[tuple[str, dict]] | None:
    try:
        return nested_stacks(aws.cloudformation, root["StackId"])
    except READ_ERRORS as exc:  # e.g. a half-created stack that does not list: delete it all the same
        on_progress(NestedStacksUnlisted(aws.env.stack_name, type(exc).__name__))
        return None


def _buckets(env, root: dict) -> tuple[tuple[str, str], ...]:
    """(what, bucket) emptied before the delete. Unprotected: the snapshot bucket goes with the
    stack, so it must be empty first. The OIDC issuer's bucket always goes (never retained)."""
    outputs = {i["OutputKey"]: i["OutputValue"] for i in root.get("Outputs", [])}
    found = (("snapshot", None if env.protected else outputs.get(o.SNAPSHOT_BUCKET)),
             ("OIDC issuer", outputs.get(o.ISSUER_BUCKET)))
    return tuple((what, bucket) for what, bucket in found if bucket)


def destroy_plan(aws) -> DestroyPlan:
    """What ``destroy`` would do, read without changing anything (``destroy --dry-run``)."""
    env = aws.env
    aws.check_account()
    root = changeset.stack_state(aws.cloudformation, env.stack_name)
    artifacts = f"s3://{env.artifact_bucket}/{naming.cluster_name(env)}/"
    if root is None:  # nothing is looked for, as destroy does nothing but the templates
        return DestroyPlan(DestroyRequest(env.stack_name, 0, env.account_id, env.region), None, artifacts)
    nested = _nested(aws, root, ignore)
    return DestroyPlan(
        DestroyRequest(env.stack_name, None if nested is None else len(nested), env.account_id, env.region),
        root["StackStatus"], artifacts, bool(root.get("EnableTerminationProtection")),
        protection.protected_load_balancers(aws, root["StackId"]),
        leftovers.find(aws, groups.cluster_vpc(aws, root["StackId"])), _buckets(env, root),
        _node_parameters(env), tuple(_retained(aws, render(env), nested or [])), nested is not None, env.protected)


def _clean(aws, found: leftovers.Leftovers, on_progress: Progress) -> None:
    """Delete what the cloud controller made (deploy/leftovers.py), reporting it."""
    on_progress(LeftoversFound(found))
    if found:
        on_progress(LeftoversDeleted(leftovers.delete(
            aws, found, on_wait=lambda pending, waited: on_progress(LeftoversWaiting(pending, waited)))))


def _lift(aws, guarded: tuple[str, ...], on_progress: Progress) -> None:
    """Deletion protection off on these API load balancers (--allow-protected), reported."""
    if guarded:
        protection.lift(aws, guarded)
        on_progress(LoadBalancerProtectionRemoved(tuple(map(protection.load_balancer_name, guarded))))


def destroy(aws, *, confirm: Callable[[DestroyRequest], bool], allow_protected: bool = False,
            on_progress: Progress = ignore, poll: float = 2.0) -> DestroyOutcome:
    """Delete the root stack (and so every nested stack) once ``confirm`` agrees, following
    its events: first what the cloud controller made (again before a retry, and after); then
    the node-owned parameters and this cluster's templates."""
    env = aws.env
    cfn = aws.cloudformation
    aws.check_account()
    root = changeset.stack_state(cfn, env.stack_name)
    if root is None:
        on_progress(NothingToDestroy(env.stack_name, env.region))
        on_progress(_empty_artifacts(aws))
        return "absent"
    stack_states.check_destroyable(env.stack_name, root["StackStatus"])  # before asking or changing anything
    stack_arn = root["StackId"]
    nested = _nested(aws, root, on_progress)
    kept = _retained(aws, render(env), nested or [])
    if not confirm(DestroyRequest(env.stack_name, None if nested is None else len(nested), env.account_id,
                                  env.region)):
        return "declined"
    if root.get("EnableTerminationProtection") and not allow_protected:
        raise DeployError(f"stack {env.stack_name} has termination protection; "
                          f"pass --allow-protected to remove it and delete")
    guarded = protection.protected_load_balancers(aws, stack_arn)
    if guarded and not allow_protected:
        raise DeployError(f"the load balancers of {env.stack_name} have deletion protection; "
                          f"pass --allow-protected to remove it and delete")
    vpc = groups.cluster_vpc(aws, stack_arn)  # read while the Network stack still exists
    found = leftovers.find(aws, vpc)  # before changing anything: a read that fails stops here
    if root.get("EnableTerminationProtection"):
        cfn.update_termination_protection(StackName=stack_arn, EnableTerminationProtection=False)
        on_progress(ProtectionRemoved(env.stack_name))
    _lift(aws, guarded, on_progress)
    buckets = _buckets(env, root)
    watcher = Watcher(cfn, stack_arn, env.stack_name, on_progress=on_progress)
    watcher.prime()
    watcher.discovering = False
    for attempt in range(1, DELETE_ATTEMPTS + 1):
        if attempt == 1 or found:
            _clean(aws, found, on_progress)
        for what, bucket in buckets:
            on_progress(SnapshotBucketEmptied(bucket, empty_bucket(aws.s3, bucket), what))
        on_progress(Deleting(env.stack_name))
        cfn.delete_stack(StackName=stack_arn)
        final = watcher.wait(poll=poll)
        if final != stack_states.DELETE_FAILED or attempt == DELETE_ATTEMPTS:
            break
        # A snapshot uploaded while the nodes were still going (BucketNotEmpty), a load balancer
        # a Service got again meanwhile, or a protected one not listed before: again, and retry.
        found = leftovers.find(aws, vpc)
        guarded = protection.protected_load_balancers(aws, stack_arn) if allow_protected else ()
        if not (buckets or found or guarded):
            break
        on_progress(DeleteRetry(env.stack_name, attempt, DELETE_ATTEMPTS - 1))
        _lift(aws, guarded, on_progress)
    if final != stack_states.DELETE_COMPLETE:
        on_progress(watcher.failure(final))
        return "failed"
    on_progress(StackDeleted(env.stack_name))
    swept = leftovers.find(aws, vpc)  # made by a controller still running while its nodes went down
    if swept:
        _clean(aws, swept, on_progress)
    on_progress(_delete_node_parameters(aws))
    on_progress(Retained(tuple(kept), listed=nested is not None, protected=env.protected))
    on_progress(_empty_artifacts(aws))
    return "destroyed"
