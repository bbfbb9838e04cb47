"""Quorum guard: ``servers.count`` may not drop, in one deploy, below a majority of the
etcd members running now. etcd needs floor(n/2)+1 of its n members to accept writes
(https://etcd.io/docs/v3.5/faq/#what-is-failure-tolerance); K3s servers are etcd members
(https://docs.k3s.io/datastore/ha-embedded), so removing more at once stalls the cluster."""

from __future__ import annotations

from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.deploy import Refused, stack_states
from k3s_infra.deploy.groups import group_of, parameters


def majority(members: int) -> int:
    return members // 2 + 1


def safe_steps(current: int, target: int) -> list[int]:
    """Odd server counts from ``current`` towards ``target``, each keeping a majority of the
    previous one; stops early when no further step keeps quorum (e.g. 3 -> 1)."""
    steps = [current]
    while steps[-1] > target:
        low = majority(steps[-1])
        step = max(target, low + (1 - low % 2))  # the smallest odd count keeping a majority
        if step >= steps[-1]:
            break
        steps.append(step)
    return steps


def check(current: int | None, target: int) -> None:
    """Raise Refused when going from ``current`` to ``target`` servers loses etcd quorum."""
    if current is None or target >= majority(current):
        return
    steps = safe_steps(current, target)
    lines = [f"servers.count {current} -> {target} in one deploy would leave {target} of {current} etcd members, "
             f"fewer than the majority ({majority(current)}) etcd needs: the cluster would stop accepting writes."]
    if steps[-1] == target:
        lines.append(f"go step by step: {' -> '.join(map(str, steps))} (one deploy per step, each finishing "
                     f"before the next)")
    else:
        if len(steps) > 1:
            lines.append(f"first go step by step: {' -> '.join(map(str, steps))} (one deploy per step)")
        lines.append(f"then, from {steps[-1]} to {target}, only via a snapshot: deploy servers.count {target} "
                     f"with --allow-quorum-loss (the joining servers go), then "
                     f"'k3s-infra restore --yes' resets etcd onto the first server from the newest snapshot "
                     f"(same --env or --config; check one exists first with 'k3s-infra snapshots')")
    raise Refused("\n  ".join(lines))


def current_servers(aws, root: dict | None) -> int | None:
    """Servers running now: the joining group's desired capacity (its stack parameter when
    the group cannot be read) + the cluster-init server. None before the first deploy."""
    if stack_states.creates(root):
        return None
    stack, group = group_of(aws, root["StackId"], naming.STACK_SERVERS)
    if group is not None:
        return int(group["DesiredCapacity"]) + 1
    desired = parameters(stack).get(o.DESIRED_CAPACITY)
    return int(desired) + 1 if desired and desired.isdigit() else None


# --- a change to the servers while one is down ------------------------------------------

SERVER_STACKS = (naming.STACK_SERVER_INIT, naming.STACK_SERVERS)


def touches_servers(changes) -> bool:
    """Whether a change set modifies or removes a server stack (a roll or a resize may follow)."""
    return any(c.stack == "Root" and c.logical_id in SERVER_STACKS and c.action in ("Modify", "Remove")
               for c in changes)


def servers_not_ready(groups: list[dict], targets: list[dict]) -> list[str]:
    """Why changing the servers now could take quorum: a rolling update terminates the next
    member at once (MinInstancesInService 0), so every server must be in service, healthy in
    its group and healthy behind the API (ELB target health), as many as the groups want.
    ``groups``: DescribeAutoScalingGroups items of both server groups; ``targets``:
    DescribeTargetHealth TargetHealthDescriptions of the API target group."""
    problems = []
    desired = sum(int(g["DesiredCapacity"]) for g in groups)
    instances = [i for g in groups for i in g.get("Instances", [])]
    healthy = {t["Target"]["Id"] for t in targets if t["TargetHealth"]["State"] == "healthy"}
    if len(instances) != desired:
        problems.append(f"{len(instances)} server instances for {desired} wanted")
    for instance in sorted(instances, key=lambda i: i["InstanceId"]):
        name, state = instance["InstanceId"], instance["LifecycleState"]
        if state != "InService" or instance["HealthStatus"] != "Healthy":
            problems.append(f"{name} is {state}/{instance['HealthStatus']}")
        elif name not in healthy:
            problems.append(f"{name} is not healthy behind the API load balancer (K3s down?)")
    return problems


def check_servers_ready(aws, root: dict, changes) -> None:
    """Refuse a change to the servers while one of them is not ready (--allow-quorum-loss overrides)."""
    if not touches_servers(changes):
        return
    groups, target_group = [], None
    for logical in SERVER_STACKS:
        stack, group = group_of(aws, root["StackId"], logical)
        if group is not None:
            groups.append(group)
        target_group = target_group or parameters(stack).get(o.API_TARGET_GROUP)
    if not groups or not target_group:
        return
    targets = aws.elbv2.describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
    problems = servers_not_ready(groups, targets)
    if problems:
        raise Refused("this deploy changes the servers, and a rolling update replaces the next one at once: with "
                      "one already down, etcd could lose quorum. Not ready now:\n  " + "\n  ".join(problems) +
                      "\n  bring them back (or replace the broken one) first; --allow-quorum-loss deploys anyway")
