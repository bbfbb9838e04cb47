"""After a stack's first create: the roll order, recorded.

A first create uses the root without roll order (stacks/root.py: the node stacks start
together); the stack must then hold the ordered root that ``render`` writes and every update
sends, so that ``plan`` and ``diff`` right after a create show nothing to do. The two roots
differ only in ``DependsOn``: this update changes no resource. CloudFormation honours
``DependsOn`` when it creates, updates and deletes resources
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html),
so every later update rolls servers before agents, one server group at a time.

Should that update fail or be interrupted, the stack keeps the unordered root, and the
rollback of a later failed update would return to it: ``ensure`` finds that before an
update and records the order into the deployed template first (``lacking``, ``ordered``)."""

from __future__ import annotations

import copy
import hashlib
import json

import yaml
from botocore.exceptions import ClientError

from k3s_infra.deploy import DeployError, changeset, stack_states
from k3s_infra.deploy.events import Watcher
from k3s_infra.deploy.package import MAX_INLINE_BODY, Package
from k3s_infra.deploy.progress import Progress, RollOrderMissing, RollOrderRecorded
from k3s_infra.model import naming
from k3s_infra.render import Rendering


def record(aws, pkg: Package, parameters: list[dict[str, str]], stack_arn: str, on_progress: Progress,
           poll: float) -> str | None:
    """Update the new stack to the ordered root (it changes no resource: CloudFormation reports
    the nested stacks as modified all the same). The final status, or None when CloudFormation
    found nothing to change. Never fatal: the cluster is up; a failure is reported (the next
    update sends the ordered root anyway, but would roll back unordered if it failed)."""
    status, problem = _update(aws, pkg, parameters, stack_arn, on_progress, poll)
    on_progress(RollOrderRecorded(changed=status is not None and problem is None, problem=problem))
    return status


def _update(aws, pkg: Package, parameters: list[dict[str, str]], stack_arn: str, on_progress: Progress,
            poll: float, tags: list[dict[str, str]] | None = None) -> tuple[str | None, str | None]:
    """Send ``pkg``'s UPDATE root, execute it only if it changes nothing but the order, follow it.
    (final status or None when nothing to change or not executed, the problem or None)."""
    try:
        current = changeset.stack_state(aws.cloudformation, stack_arn)
        cs = changeset.create(aws, pkg, parameters=parameters, current=current, tags=tags)
    except (DeployError, ClientError) as exc:
        return None, str(exc)
    if cs.empty:
        changeset.discard(aws, cs)
        return None, None
    # Only the nested stacks, as CloudFormation always lists them: anything else is not this.
    unexpected = [c for c in cs.changes if (c.stack, c.action, c.resource_type) !=
                  (naming.ROOT, "Modify", "AWS::CloudFormation::Stack")]
    if unexpected:
        changeset.discard(aws, cs)
        return None, f"{unexpected[0].action} {unexpected[0].logical_id} would change: not executed"
    watcher = Watcher(aws.cloudformation, stack_arn, aws.env.stack_name, on_progress=on_progress)
    watcher.prime()
    try:
        changeset.execute(aws, cs)
        status = watcher.wait(poll=poll)
    except (DeployError, ClientError, TimeoutError) as exc:
        return None, str(exc)
    return status, None if stack_states.succeeded(status) else f"the update ended {status}"


# --- an order that was never recorded ------------------------------------------------

def _depends_on(resource: object) -> set[str]:
    value = resource.get("DependsOn", []) if isinstance(resource, dict) else []
    return {value} if isinstance(value, str) else set(value)


def lacking(deployed: dict, rendering: Rendering) -> dict[str, list[str]]:
    """The roll order (``DependsOn`` the ordered root has and the create root has not) that
    the deployed root lacks, among resources it holds: logical ID -> the dependencies to add."""
    ordered = yaml.safe_load(rendering.root.body)["Resources"]  # JSON is YAML too
    unordered = yaml.safe_load((rendering.create_root or rendering.root).body)["Resources"]
    held = deployed.get("Resources") or {}
    result = {}
    for logical_id, resource in ordered.items():
        order = _depends_on(resource) - _depends_on(unordered.get(logical_id))
        absent = sorted(d for d in order if d in held and d not in _depends_on(held.get(logical_id)))
        if logical_id in held and absent:
            result[logical_id] = absent
    return result


def ordered(deployed: dict, missing: dict[str, list[str]]) -> dict:
    """The deployed root with ``missing`` added: the same resources, parameters and URLs."""
    result = copy.deepcopy(deployed)
    for logical_id, dependencies in missing.items():
        resource = result["Resources"][logical_id]
        resource["DependsOn"] = sorted(_depends_on(resource) | set(dependencies))
    return result


def deployed_root(cfn, stack_arn: str) -> dict | None:
    """The root template the stack holds (GetTemplate, Original: as sent, a dict when it was
    JSON), or None when it is not one this can read (short-form YAML tags are not ours)."""
    body = cfn.get_template(StackName=stack_arn, TemplateStage="Original")["TemplateBody"]
    if isinstance(body, dict):
        return body
    try:
        doc = yaml.safe_load(body)
    except yaml.YAMLError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("Resources"), dict) else None


def missing_order(aws, rendering: Rendering, root: dict) -> dict[str, list[str]]:
    """What of the roll order the deployed root ``root`` (described) lacks; {} when it has it all."""
    deployed = deployed_root(aws.cloudformation, root["StackId"])
    return {} if deployed is None else lacking(deployed, rendering)


def missing_said(missing: dict[str, list[str]], *, recording: bool = True) -> RollOrderMissing:
    """What ``lacking`` found, as the progress message says it ("Servers after ServerInit")."""
    return RollOrderMissing(tuple(f"{k} after {', '.join(v)}" for k, v in missing.items()), recording)


def ensure(aws, pkg: Package, root: dict, on_progress: Progress, poll: float, *, allow_quorum_loss: bool) -> bool:
    """Before an update: record the roll order into the deployed template when it lacks it
    (an update that changes only ``DependsOn``, every parameter kept), so that a rollback of
    the update to come returns to an ordered root. True when it updated the stack. DeployError
    when the order is missing and cannot be recorded, unless ``allow_quorum_loss`` (a warning)."""
    try:
        deployed = deployed_root(aws.cloudformation, root["StackId"])
    except ClientError as exc:
        return _unrecorded(f"cannot read the deployed root: {exc}", on_progress, allow_quorum_loss)
    missing = {} if deployed is None else lacking(deployed, pkg.rendering)
    if not missing:
        return False
    on_progress(missing_said(missing))
    body = json.dumps(ordered(deployed, missing), separators=(",", ":"))
    keep = [{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True} for p in root.get("Parameters", [])]
    try:
        repair = Package(pkg.rendering, [], [], {"UPDATE": _template(aws, body)})
    except ClientError as exc:
        return _unrecorded(str(exc), on_progress, allow_quorum_loss)
    # The tags the stack holds, not the file's: edited deploy.tags would change every resource.
    status, problem = _update(aws, repair, keep, root["StackId"], on_progress, poll, tags=root.get("Tags", []))
    if problem:
        return _unrecorded(problem, on_progress, allow_quorum_loss) or status is not None
    on_progress(RollOrderRecorded(changed=status is not None))
    return status is not None


def _unrecorded(problem: str, on_progress: Progress, allow_quorum_loss: bool) -> bool:
    if not allow_quorum_loss:
        raise DeployError(f"the deployed root lacks the roll order and recording it failed: {problem}. A failed "
                          "update would roll back with every server group at once; deploy again, or pass "
                          "--allow-quorum-loss to update without it")
    on_progress(RollOrderRecorded(changed=False, problem=problem))
    return False


def _template(aws, body: str) -> dict[str, str]:
    """TemplateBody, or (over CloudFormation's inline limit) the artifact bucket's copy."""
    if len(body.encode()) <= MAX_INLINE_BODY:
        return {"TemplateBody": body}
    env = aws.env
    key = naming.artifact_key(env, "root-ordered.json", hashlib.sha256(body.encode()).hexdigest())
    aws.s3.put_object(Bucket=env.artifact_bucket, Key=key, Body=body.encode(), ContentType="application/json")
    return {"TemplateURL": naming.template_url(env, key)}
