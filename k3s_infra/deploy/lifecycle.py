"""plan, deploy and destroy as library functions: each takes an ``Aws`` (clients for
one environment), prints what a person reads to ``out`` and returns the command's exit
code (status: deploy/status.py, kubeconfig: deploy/kubeconfig.py)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import IO

import yaml
from botocore.exceptions import ClientError

from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.deploy import DeployError, changeset, images, quorum, retained
from k3s_infra.deploy.events import READ_ERRORS, STACK_TYPE, Watcher
from k3s_infra.deploy.package import package
from k3s_infra.render import render
from k3s_infra.deploy.text import aligned, say

DELETE_ATTEMPTS = 3
OK_STATES = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")
ROLLBACK_OUTCOMES = {
    "ROLLBACK_COMPLETE": "rolled back: every resource created by this attempt was deleted; "
                         "run 'k3s-infra destroy' before deploying again",
    "UPDATE_ROLLBACK_COMPLETE": "rolled back: the stack is back on its previous version",
    "ROLLBACK_FAILED": "rollback FAILED: some resources may remain; see the stack events",
    "UPDATE_ROLLBACK_FAILED": "rollback FAILED: fix the cause, then continue the rollback "
                              "(aws cloudformation continue-update-rollback)",
    "CREATE_FAILED": "no rollback (rollback disabled): the failed resources remain",
    "UPDATE_FAILED": "no rollback (rollback disabled)",
    "DELETE_FAILED": "delete failed: the resources listed above remain",
}




def root_outputs(cfn, stack_name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}


def _report_failure(watcher: Watcher, status: str, out: IO[str]) -> None:
    cause = watcher.trace_failure()
    if cause:
        where = watcher.labels.get(cause["EventId"], "?")
        reason = cause.get('ResourceStatusReason') or 'no reason given'
        say(out, f"error: {where}/{cause['LogicalResourceId']} ({cause.get('ResourceType', '?')}) "
                    f"{cause['ResourceStatus']}: {reason}")
        # A node whose boot gave up signalled FAILURE (boot.sh); its log says why.
        for instance in dict.fromkeys(re.findall(r"UniqueId (i-[0-9a-f]+)", reason)):
            say(out, f"  the boot log of {instance}: aws ec2 get-console-output --instance-id {instance} "
                        f"--latest --output text | grep k3s-infra-boot")
    else:
        say(out, f"error: {watcher.root_label} ended {status} without naming a failed resource")
    say(out, f"{watcher.root_label}: {status}: {ROLLBACK_OUTCOMES.get(status, 'see the stack events')}")


# --- plan / deploy ----------------------------------------------------------------

def _prepare(aws, out: IO[str], *, update_image: bool, allow_quorum_loss: bool = False):
    """Checks and choices made before anything is uploaded: account, pinned images, quorum.
    Returns (the described root or None, change set parameters)."""
    env = aws.env
    aws.check_account()
    root = changeset.stack_state(aws.cloudformation, env.stack_name)
    retained.check_first_deploy(aws, root)
    current = quorum.current_servers(aws, root)
    if allow_quorum_loss and current is not None and env.servers.count < quorum.majority(current):
        say(out, f"warning: servers.count {current} -> {env.servers.count} loses etcd quorum "
                    f"(--allow-quorum-loss); restore from a snapshot afterwards: 'k3s-infra restore'")
    elif current is not None:
        quorum.check(current, env.servers.count)
    choices = images.choose(aws, root, update_image=update_image)
    for choice in choices:
        say(out, choice.describe())
    return root, images.stack_parameters(choices)


def plan(aws, *, out: IO[str] | None = None, update_image: bool = False, as_json: bool = False,
         detailed_exitcode: bool = False) -> int:
    """Exit 0; with ``detailed_exitcode`` as Terraform's plan: 0 no changes, 2 changes.
    With ``as_json`` the one JSON document goes to stdout and the rest to stderr."""
    out = out or (sys.stderr if as_json else sys.stdout)
    env = aws.env
    root, parameters = _prepare(aws, out, update_image=update_image)
    say(out, f"plan uploads the templates to s3://{env.artifact_bucket} and creates (then deletes) a change "
                f"set; 'k3s-infra diff' compares without writing anything")
    pkg = package(aws, render(env))
    say(out, _packaged(pkg))
    cs = changeset.create(aws, pkg, parameters=parameters, current=root)
    try:
        if as_json:
            from k3s_infra.cli.output import print_json

            print_json(changeset.as_document(cs, pkg))
        else:
            say(out, f"{env.stack_name} is up to date: no changes" if cs.empty else changeset.format_table(cs))
    finally:
        changeset.discard(aws, cs)
    return 2 if detailed_exitcode and not cs.empty else 0


def _packaged(pkg) -> str:
    env = pkg.rendering.env
    return (f"packaged {len(pkg.rendering.children)} templates into s3://{env.artifact_bucket} "
            f"({len(pkg.uploaded)} uploaded, {len(pkg.reused)} unchanged)")


def deploy(aws, *, confirm: Callable[[changeset.ChangeSet], bool], out: IO[str] | None = None,
           poll: float = 2.0, update_image: bool = False, allow_quorum_loss: bool = False) -> int:
    out = out or sys.stdout
    env = aws.env
    cfn = aws.cloudformation
    root, parameters = _prepare(aws, out, update_image=update_image, allow_quorum_loss=allow_quorum_loss)
    pkg = package(aws, render(env))
    say(out, _packaged(pkg))
    cs = changeset.create(aws, pkg, parameters=parameters, current=root)
    try:
        if cs.empty:
            changeset.discard(aws, cs)
            say(out, f"{env.stack_name} is up to date: nothing to deploy")
            return 0
        say(out, changeset.format_table(cs))
        if not confirm(cs):
            changeset.discard(aws, cs)
            say(out, "not deployed: change set discarded")
            return 1
    except BaseException:  # refused without a terminal, Ctrl-C at the prompt: leave nothing behind
        changeset.discard(aws, cs)
        say(out, "not deployed: change set discarded")
        raise
    stack_id = cs.stack_id
    watcher = Watcher(cfn, stack_id, env.stack_name, out=out)
    watcher.prime()
    say(out, f"{cs.change_set_type.lower()} {env.stack_name}: streaming events")
    try:
        changeset.execute(aws, cs)
    except DeployError as exc:
        say(out, f"error: {exc}")
        try:  # best effort: whatever the stacks recorded before the API gave up
            watcher.poll()
            _report_failure(watcher, changeset.stack_state(cfn, stack_id)["StackStatus"], out)
        except Exception as detail:  # noqa: BLE001 - the execution error above is the news
            say(out, f"(stack events unavailable: {type(detail).__name__})")
        return 1
    status = watcher.wait(poll=poll)
    if status not in OK_STATES:
        _report_failure(watcher, status, out)
        return 1
    # Change sets cannot set termination protection: set it afterwards, only when it differs.
    current = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
    if bool(current.get("EnableTerminationProtection")) != env.protected:
        cfn.update_termination_protection(StackName=stack_id, EnableTerminationProtection=env.protected)
    say(out, f"{env.stack_name}: {status}" + ("  (termination protection on)" if env.protected else ""))
    outputs = root_outputs(cfn, stack_id)
    if outputs:
        say(out, "outputs:")
        for line in aligned(sorted(outputs.items())):
            say(out, line)
    say(out, "admin kubeconfig, once the first server has published it: "
                "k3s-infra kubeconfig (same --env or --config)")
    return 0


# --- status -------------------------------------------------------------------------

def _nested(cfn, stack_id: str) -> list[tuple[str, dict]]:
    """(logical ID, described stack) of the root's nested stacks."""
    result = []
    pages = cfn.get_paginator("list_stack_resources").paginate(StackName=stack_id)
    for summary in (s for page in pages for s in page["StackResourceSummaries"]):
        if summary.get("ResourceType") == STACK_TYPE and summary.get("PhysicalResourceId"):
            try:
                result.append((summary["LogicalResourceId"],
                               cfn.describe_stacks(StackName=summary["PhysicalResourceId"])["Stacks"][0]))
            except ClientError:
                result.append((summary["LogicalResourceId"],
                               {"StackStatus": summary.get("ResourceStatus", "?"), "Outputs": []}))
    return result


# --- destroy ------------------------------------------------------------------------

def _retained(aws, rendering, nested: list[tuple[str, dict]]) -> list[tuple[str, str, str]]:
    """(stack, resource type, physical ID) of resources whose DeletionPolicy keeps them."""
    cfn = aws.cloudformation
    physical = {logical: stack.get("StackId") for logical, stack in nested}
    result = []
    for child in rendering.children:
        body = yaml.safe_load(child.body) if rendering.fmt == "yaml" else None
        if body is None:
            import json
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


def _delete_node_parameters(aws) -> str:
    """The SSM parameters nodes and 'restore' create belong to no stack: delete them here, or
    a redeploy's first server would find 'initialised' and wait to join a cluster that is gone."""
    names = [naming.cluster_state_parameter(aws.env), naming.restore_request_parameter(aws.env)]
    deleted = []
    for name in names:
        try:
            aws.ssm.delete_parameter(Name=name)
            deleted.append(name)
        except aws.ssm.exceptions.ParameterNotFound:
            pass
    return f"deleted the node-owned parameters {', '.join(deleted)}" if deleted else "no node-owned parameters left"


def _empty_artifacts(aws) -> str:
    """Remove this cluster's templates from the artifact bucket; remove the bucket when
    nothing else is left in it (it is shared by the environments of one account and region)."""
    env = aws.env
    s3, bucket = aws.s3, env.artifact_bucket
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        return "artifact bucket already gone"
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
        return f"removed {removed} template objects from s3://{bucket} (bucket kept: other clusters use it)"
    s3.delete_bucket(Bucket=bucket)
    return f"removed {removed} template objects and the artifact bucket s3://{bucket}"


def destroy(aws, *, confirm: Callable[[str], bool], allow_protected: bool = False,
            out: IO[str] | None = None, poll: float = 2.0) -> int:
    out = out or sys.stdout
    env = aws.env
    cfn = aws.cloudformation
    aws.check_account()
    root = changeset.stack_state(cfn, env.stack_name)
    if root is None:
        say(out, f"{env.stack_name}: nothing to destroy (no such stack in {env.region})")
        say(out, _empty_artifacts(aws))
        return 0
    stack_id = root["StackId"]
    try:
        nested = _nested(cfn, stack_id)
    except READ_ERRORS as exc:  # e.g. a half-created stack that does not list: delete it all the same
        nested = None
        say(out, f"warning: cannot list the resources of {env.stack_name} ({type(exc).__name__}); "
                    f"deleting it anyway")
    rendering = render(env)
    retained = _retained(aws, rendering, nested or [])
    count = "its" if nested is None else f"its {len(nested)}"
    if not confirm(f"delete stack {env.stack_name} and {count} nested stacks in "
                   f"{env.account_id}/{env.region}"):
        say(out, "not destroyed")
        return 1
    if root.get("EnableTerminationProtection"):
        if not allow_protected:
            raise DeployError(f"stack {env.stack_name} has termination protection; "
                              f"pass --allow-protected to remove it and delete")
        cfn.update_termination_protection(StackName=stack_id, EnableTerminationProtection=False)
        say(out, f"{env.stack_name}: termination protection removed")
    # Unprotected: the snapshot bucket goes with the stack, so it must be empty first.
    bucket = None if env.protected else {i["OutputKey"]: i["OutputValue"] for i in root.get("Outputs", [])}.get(
        o.SNAPSHOT_BUCKET)
    watcher = Watcher(cfn, stack_id, env.stack_name, out=out)
    watcher.prime()
    watcher.discovering = False
    for attempt in range(1, DELETE_ATTEMPTS + 1):
        if bucket:
            say(out, f"emptied the snapshot bucket s3://{bucket} ({empty_bucket(aws.s3, bucket)} "
                        f"object versions and delete markers)")
        say(out, f"delete {env.stack_name}: streaming events")
        cfn.delete_stack(StackName=stack_id)
        final = watcher.wait(poll=poll)
        # A snapshot uploaded while the nodes were still going (BucketNotEmpty): empty it again.
        if final != "DELETE_FAILED" or not bucket or attempt == DELETE_ATTEMPTS:
            break
        say(out, f"{env.stack_name}: DELETE_FAILED; emptying the snapshot bucket again and retrying "
                    f"({attempt}/{DELETE_ATTEMPTS - 1})")
    if final != "DELETE_COMPLETE":
        _report_failure(watcher, final, out)
        return 1
    say(out, f"{env.stack_name}: DELETE_COMPLETE")
    say(out, _delete_node_parameters(aws))
    if retained:
        say(out, "retained (protected environment: DeletionPolicy Retain), delete by hand when no longer needed:")
        for line in aligned([(s, t, p) for s, t, p in retained], indent="  "):
            say(out, line)
    elif nested is None and env.protected:
        say(out, "retained resources could not be listed: look for the cluster's KMS key, secrets "
                    "and snapshot bucket (DeletionPolicy Retain) and delete them by hand when no longer needed")
    else:
        say(out, "nothing retained: data stores were deleted with the stacks")
    say(out, _empty_artifacts(aws))
    return 0
