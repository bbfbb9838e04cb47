"""``k3s-infra status``: root and nested stack states, outputs and node group counts, as
text or as one JSON document; ``--watch`` re-attaches to a running operation.

Exit code: 0 when every stack is complete (or still working), 1 when the cluster is not
deployed or any stack failed or rolled back, so a pipeline can gate on it."""

from __future__ import annotations

import sys
from typing import IO

from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.deploy import changeset
from k3s_infra.deploy.events import READ_ERRORS, Watcher, failed, terminal
from k3s_infra.deploy.groups import describe_groups
from k3s_infra.deploy.text import aligned, say


def collect(aws) -> dict:
    """Everything ``status`` shows, as the README's "status" JSON shape."""
    from k3s_infra.cli.output import document
    from k3s_infra.deploy.lifecycle import _nested

    env = aws.env
    cfn = aws.cloudformation
    doc = document("status", environment=env.name, stack_name=env.stack_name, region=env.region,
                   deployed=False, status=None, healthy=False, termination_protection=False,
                   stacks=[], outputs={}, node_groups=[], warnings=[])
    root = changeset.stack_state(cfn, env.stack_name)
    if root is None:
        return doc
    doc.update(deployed=True, status=root["StackStatus"],
               termination_protection=bool(root.get("EnableTerminationProtection")),
               outputs={i["OutputKey"]: i["OutputValue"] for i in root.get("Outputs", [])})
    try:
        nested = _nested(cfn, root["StackId"])
    except READ_ERRORS as exc:
        nested = []
        doc["warnings"].append(f"cannot list the nested stacks of {env.stack_name} ({type(exc).__name__})")
    for logical, stack in [(naming.ROOT, root), *nested]:
        doc["stacks"].append({"stack": logical, "status": stack["StackStatus"],
                              "updated": stack.get("LastUpdatedTime") or stack.get("CreationTime")})
    doc["node_groups"] = _node_groups(aws, nested)
    doc["healthy"] = not any(failed(s["status"]) for s in doc["stacks"])
    return doc


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



def format_text(doc: dict) -> str:
    if not doc["deployed"]:
        return f"{doc['stack_name']}: not deployed (no such stack in {doc['region']})"
    protection = "on" if doc["termination_protection"] else "off"
    lines = [f"{doc['stack_name']}  {doc['status']}  (termination protection {protection})"]
    lines += [f"warning: {w}" for w in doc["warnings"]]
    rows = [("STACK", "STATUS", "UPDATED")]
    rows += [(s["stack"], s["status"], f"{s['updated']:%Y-%m-%d %H:%M:%S}" if s["updated"] else "")
             for s in doc["stacks"]]
    lines += aligned(rows)
    if doc["outputs"]:
        lines.append("outputs:")
        lines += aligned(sorted(doc["outputs"].items()))
    if doc["node_groups"]:
        rows = [("NODE GROUP", "DESIRED", "IN SERVICE", "MIN", "MAX")]
        rows += [(g["stack"], *("-" if g[k] is None else str(g[k]) for k in ("desired", "in_service", "min", "max")))
                 for g in doc["node_groups"]]
        lines.append("node groups:")
        lines += aligned(rows)
    if not doc["healthy"]:
        bad = [s["stack"] for s in doc["stacks"] if failed(s["status"])]
        lines.append(f"error: failed or rolled back: {', '.join(bad)}")
    return "\n".join(lines)


def watch(aws, out: IO[str], poll: float = 2.0) -> None:
    """Re-attach to the operation running on the root stack (deploy, update, destroy, a
    rollback) and stream its events since it started, until it settles."""
    env = aws.env
    cfn = aws.cloudformation
    root = changeset.stack_state(cfn, env.stack_name)
    if root is None or terminal(root["StackStatus"]):
        return
    started = root.get("DeletionTime") or root.get("LastUpdatedTime") or root.get("CreationTime")
    watcher = Watcher(cfn, root["StackId"], env.stack_name, since=started, out=out)
    say(out, f"{env.stack_name}: {root['StackStatus']}: following its events")
    watcher.wait(poll=poll)


def status(aws, *, as_json: bool = False, follow: bool = False, out: IO[str] | None = None,
           poll: float = 2.0) -> int:
    out = out or sys.stdout
    aws.check_account()
    if follow:
        watch(aws, sys.stderr if as_json else out, poll)
    doc = collect(aws)
    if as_json:
        from k3s_infra.cli.output import print_json

        print_json(doc)
    else:
        say(out, format_text(doc))
    return 0 if doc["deployed"] and doc["healthy"] else 1
