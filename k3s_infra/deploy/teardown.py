"""destroy as a library function: takes an ``Aws`` (clients for one environment), reports
its steps to ``on_progress`` (deploy/progress.py) as they happen and returns how it ended; it
never prints (the CLI does: k3s_infra/cli/destroy.py). ``destroy_plan`` reads what it would do
(``destroy --dry-run``). Plan and deploy: deploy/lifecycle.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import yaml
from botocore.exceptions import ClientError

from k3s_infra.deploy import DeployError, HandedOver, changeset, groups, leftovers, lock, protection, stack_states
from k3s_infra.deploy.events import READ_ERRORS, Watcher
from k3s_infra.deploy.groups import nested_stacks
from k3s_infra.deploy.lifecycle import Follower
from k3s_infra.deploy.progress import (ArtifactsCleaned, DeleteRetry, Deleting, LeftoversDeleted, LeftoversFound,
                                       LeftoversWaiting, LoadBalancerProtectionRemoved, NestedStacksUnlisted,
                                       NodeParametersDeleted, NothingToDestroy, Progress, ProtectionRemoved, Retained,
                                       SnapshotBucketEmptied, StackDeleted, ignore)
from k3s_infra.deploy.timings import Measured, measure
from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.render import render

DELETE_ATTEMPTS = 3


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


@dataclass(frozen=True)
class DestroyResult:
    stack_name: str
    outcome: DestroyOutcome
    status: str | None = None        # the root's last status (None: no delete ran)
    timings: Measured | None = None  # each nested stack's delete, from the stack events followed


def destroy(aws, *, confirm: Callable[[DestroyRequest], bool], allow_protected: bool = False,
            on_progress: Progress = ignore, poll: float = 2.0, force_unlock: bool = False) -> DestroyResult:
    """Under the stack's lock (deploy/lock.py), delete the root stack (and so every nested
    stack) once ``confirm`` agrees, following its events: first what the cloud controller made
    (again before a retry, and after); then the node-owned parameters and this cluster's
    templates. Ctrl-C once the delete was asked for: HandedOver (CloudFormation goes on)."""
    aws.check_account()
    with lock.held(aws, "destroy", on_progress, force=force_unlock) as progress:
        return _destroy(aws, confirm, allow_protected, progress, poll)


def _destroy(aws, confirm: Callable[[DestroyRequest], bool], allow_protected: bool, on_progress: Progress,
             poll: float) -> DestroyResult:
    env = aws.env
    cfn = aws.cloudformation
    root = changeset.stack_state(cfn, env.stack_name)
    if root is None:
        on_progress(NothingToDestroy(env.stack_name, env.region))
        on_progress(_empty_artifacts(aws))
        return DestroyResult(env.stack_name, "absent")
    stack_states.check_destroyable(env.stack_name, root["StackStatus"])  # before asking or changing anything
    stack_arn = root["StackId"]
    nested = _nested(aws, root, on_progress)
    kept = _retained(aws, render(env), nested or [])
    if not confirm(DestroyRequest(env.stack_name, None if nested is None else len(nested), env.account_id,
                                  env.region)):
        return DestroyResult(env.stack_name, "declined", root["StackStatus"])
    # The prompt may have stayed open past the lock's lease: still this run's before anything goes?
    getattr(on_progress, "confirm_held", lambda: None)()
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
    follow = Follower(on_progress)
    watcher = Watcher(cfn, stack_arn, env.stack_name, on_progress=follow)
    watcher.prime()
    watcher.discovering = False
    deleting = False
    try:
        for attempt in range(1, DELETE_ATTEMPTS + 1):
            if attempt == 1 or found:
                _clean(aws, found, on_progress)
            for what, bucket in buckets:
                on_progress(SnapshotBucketEmptied(bucket, empty_bucket(aws.s3, bucket), what))
            on_progress(Deleting(env.stack_name))
            deleting = True  # from the call on: CloudFormation may have it
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
    except KeyboardInterrupt:
        if not deleting:
            raise
        raise HandedOver(env.stack_name, "DELETE", follow.status, env.region) from None
    timings = measure(watcher.events, stack_arn)
    if final != stack_states.DELETE_COMPLETE:
        on_progress(watcher.failure(final))
        return DestroyResult(env.stack_name, "failed", final, timings)
    on_progress(StackDeleted(env.stack_name))
    swept = leftovers.find(aws, vpc)  # made by a controller still running while its nodes went down
    if swept:
        _clean(aws, swept, on_progress)
    on_progress(_delete_node_parameters(aws))
    on_progress(Retained(tuple(kept), listed=nested is not None, protected=env.protected))
    on_progress(_empty_artifacts(aws))
    return DestroyResult(env.stack_name, "destroyed", final, timings)
