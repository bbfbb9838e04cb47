"""What ``k3s-infra status`` shows: root and nested stack states, outputs and node group
counts, as data (``collect``); ``watch`` re-attaches to a running operation and reports
its events until it settles. The CLI prints both (k3s_infra/cli/status.py)."""

from __future__ import annotations

import time
from typing import Any

from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.deploy import changeset, restore_request, stack_states
from k3s_infra.deploy.events import READ_ERRORS, Watcher
from k3s_infra.deploy.groups import describe_groups, nested_stacks
from k3s_infra.deploy.progress import Following, Progress, ignore


def collect(aws) -> dict[str, Any]:
    """Everything ``status`` shows: the fields of the "status" JSON shape (docs/commands.md) (the
    CLI adds the envelope, ``kind`` and ``version``)."""
    aws.check_account()
    env = aws.env
    cfn = aws.cloudformation
    found: dict[str, Any] = {"environment": env.name, "stack_name": env.stack_name, "region": env.region,
                             "deployed": False, "status": None, "healthy": False, "termination_protection": False,
                             "stacks": [], "outputs": {}, "node_groups": [], "warnings": [],
                             "restore_request": None}
    root = changeset.stack_state(cfn, env.stack_name)
    _restore_request(aws, found)  # also without a stack: a request left behind is news
    if root is None:
        return found
    found.update(deployed=True, status=root["StackStatus"],
                 termination_protection=bool(root.get("EnableTerminationProtection")),
                 outputs={i["OutputKey"]: i["OutputValue"] for i in root.get("Outputs", [])})
    try:
        nested = nested_stacks(cfn, root["StackId"])
    except READ_ERRORS as exc:
        nested = []
        found["warnings"].append(f"cannot list the nested stacks of {env.stack_name} ({type(exc).__name__})")
    for logical, stack in [(naming.ROOT, root), *nested]:
        found["stacks"].append({"stack": logical, "status": stack["StackStatus"],
                                "updated": stack.get("LastUpdatedTime") or stack.get("CreationTime")})
    found["node_groups"] = _node_groups(aws, nested)
    found["healthy"] = all(stack_states.healthy(s["status"], root=s["stack"] == naming.ROOT) for s in found["stacks"])
    return found


def _restore_request(aws, found: dict[str, Any]) -> None:
    """The pending restore request, if any (deploy/restore_request.py), as data."""
    parameter = naming.restore_request_parameter(aws.env)
    try:
        pending = restore_request.read(aws.ssm, parameter, time.time())
    except READ_ERRORS as exc:
        found["warnings"].append(f"cannot read the restore request {parameter} ({type(exc).__name__})")
        return
    found["restore_request"] = pending.as_dict() if pending else None


def _node_groups(aws, nested: list[tuple[str, dict]]) -> list[dict]:
    groups = [(logical, i["OutputValue"]) for logical, stack in nested for i in stack.get("Outputs", [])
              if i["OutputKey"] == o.AUTO_SCALING_GROUP]
    if not groups:
        return []
    described = describe_groups(aws.autoscaling, [name for _, name in groups])  # 50 names a call
    result = []
    for logical, name in groups:
        group = described.get(name)
        row = {"stack": logical, "name": name, "desired": None, "in_service": None, "min": None, "max": None}
        if group is not None:
            row.update(desired=group["DesiredCapacity"], min=group["MinSize"], max=group["MaxSize"],
                       in_service=sum(1 for i in group.get("Instances", []) if i.get("LifecycleState") == "InService"))
        result.append(row)
    return result


def watch(aws, *, on_progress: Progress = ignore, poll: float = 2.0) -> str | None:
    """Re-attach to the operation running on the root stack (deploy, update, destroy, a
    rollback) and report its events since it started, until it settles. Returns the final
    status, or None when nothing was running."""
    aws.check_account()
    env = aws.env
    cfn = aws.cloudformation
    root = changeset.stack_state(cfn, env.stack_name)
    if root is None or not stack_states.running(root["StackStatus"]):
        return None  # nothing runs (REVIEW_IN_PROGRESS included: it waits for an execute, maybe forever)
    started = root.get("DeletionTime") or root.get("LastUpdatedTime") or root.get("CreationTime")
    watcher = Watcher(cfn, root["StackId"], env.stack_name, since=started, on_progress=on_progress)
    on_progress(Following(env.stack_name, root["StackStatus"]))
    return watcher.wait(poll=poll)
