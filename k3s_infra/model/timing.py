"""The time-to-ready model: how long a create (or a rolling update) of the rendered nested
stacks should take, and which stacks decide it.

It reads only the rendered templates (stack ID -> template as a dict, the root under
naming.ROOT), so it follows the graph as it is, whatever the stacks become:

- a nested stack starts when every sibling it names (``Fn::GetAtt``/``Ref`` in its
  Parameters, ``DependsOn``) is complete;
- inside a stack, resources wait for the resources they name (``Ref``, ``Fn::GetAtt``,
  ``Fn::Sub``, ``DependsOn``); the others run in parallel; each type takes its time from
  model/durations.py RESOURCES;
- a node stack's auto scaling group takes its nodes' boot until their signals
  (model/node_timing.py); K3s on them starts only once the stacks of their late-bound facts
  (durations.LATE_BOUND) are complete or, for node stacks, ready: edges CloudFormation does
  not see.

Imported by the CLI only (``estimate``, ``plan``), never on the render path."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from k3s_infra.model import durations as d
from k3s_infra.model import naming, node_timing
from k3s_infra.model.node_timing import NodeGroup, Phase

STACK_TYPE = "AWS::CloudFormation::Stack"
TARGET_GROUP_TYPE = "AWS::ElasticLoadBalancingV2::TargetGroup"
_SUB_NAME = re.compile(r"\$\{([^!}][^}]*)\}")

__all__ = ["Estimate", "Phase", "Wave", "estimate_create", "estimate_roll", "references"]


@dataclass(frozen=True)
class Wave:
    """One nested stack's place in the estimate, in seconds from the start."""
    stack: str
    start: float
    end: float
    critical: bool
    reason: str                      # why it starts (or waits) when it does
    ready: float | None = None       # node stacks: K3s answers on its nodes
    phases: tuple[Phase, ...] = ()   # node stacks: one node's boot (a roll: one batch)

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Estimate:
    kind: str                         # "create" | "roll"
    waves: tuple[Wave, ...]           # by start
    total: float
    critical_path: tuple[str, ...]    # first to last
    api_ready: float | None = None    # create: the API answers through its load balancer;
                                      # roll: a lone server's API answers again (None: it stays up)


# --- reading templates -------------------------------------------------------------

def references(node: object) -> set[str]:
    """Logical IDs (or parameters) a template fragment names: Ref, Fn::GetAtt, Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
            elif key == "Fn::Sub":
                text, local = (value[0], value[1]) if isinstance(value, list) else (value, {})
                found |= {name.split(".")[0] for name in _SUB_NAME.findall(text)} - set(local)
                found |= references(local)
            else:
                found |= references(value)
    elif isinstance(node, list):
        for value in node:
            found |= references(value)
    return found


def depends_on(resource: dict) -> set[str]:
    value = resource.get("DependsOn", [])
    return {value} if isinstance(value, str) else set(value)


def edges(resources: Mapping[str, dict]) -> dict[str, set[str]]:
    """Logical ID -> the resources of the same template it waits for."""
    ids = set(resources)
    return {lid: ((references(r.get("Properties", {})) | depends_on(r)) & ids) - {lid}
            for lid, r in resources.items()}


def resource_seconds(resource: dict) -> float:
    kind = resource.get("Type", "")
    variant = d.VARIANTS.get(kind)
    if variant:
        key = f"{kind}/{resource.get('Properties', {}).get(variant)}"
        if key in d.RESOURCES:
            return d.RESOURCES[key].seconds
    return d.RESOURCES.get(kind, d.UNLISTED).seconds


def schedule(resources: Mapping[str, dict], seconds: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """(start, end) of every resource of one template: as early as what it waits for allows."""
    waits = edges(resources)
    done: dict[str, tuple[float, float]] = {}

    def place(lid: str, path: tuple[str, ...]) -> float:
        if lid in done:
            return done[lid][1]
        if lid in path:
            raise ValueError(f"circular dependency: {' -> '.join((*path, lid))}")
        start = max((place(dep, (*path, lid)) for dep in waits[lid]), default=0.0)
        done[lid] = (start, start + seconds[lid])
        return done[lid][1]

    for lid in resources:
        place(lid, ())
    return done


def _late_bound(stack_id: str, stacks: Iterable[str]) -> tuple[str, ...]:
    wanted = {name for pattern, names in d.LATE_BOUND.items() if fnmatchcase(stack_id, pattern) for name in names}
    return tuple(sorted(wanted & set(stacks) - {stack_id}))


def health_seconds(templates: Mapping[str, dict]) -> float:
    """How long the API target group takes to call a target healthy (interval x threshold)."""
    found = [int(r["Properties"].get("HealthCheckIntervalSeconds", d.DEFAULT_HEALTH_CHECK[0]))
             * int(r["Properties"].get("HealthyThresholdCount", d.DEFAULT_HEALTH_CHECK[1]))
             for t in templates.values() for r in t.get("Resources", {}).values()
             if r.get("Type") == TARGET_GROUP_TYPE]
    return float(max(found, default=d.DEFAULT_HEALTH_CHECK[0] * d.DEFAULT_HEALTH_CHECK[1]))


@dataclass(frozen=True)
class _Stack:
    stack: str
    deps: tuple[str, ...]
    resources: Mapping[str, dict]
    group: NodeGroup | None


def _stacks(templates: Mapping[str, dict]) -> dict[str, _Stack]:
    root = templates[naming.ROOT]["Resources"]
    ids = {lid for lid, r in root.items() if r.get("Type") == STACK_TYPE}
    result = {}
    for lid in sorted(ids):
        resource = root[lid]
        deps = ((references(resource.get("Properties", {})) | depends_on(resource)) & ids) - {lid}
        template = templates.get(lid, {})
        parameters = resource.get("Properties", {}).get("Parameters", {})
        result[lid] = _Stack(lid, tuple(sorted(deps)), template.get("Resources", {}),
                             node_timing.node_group(lid, template, parameters))
    return result


# --- the graph ---------------------------------------------------------------------

@dataclass
class _Placed:
    start: float
    end: float
    after: str | None           # the stack whose completion (or readiness) decided it
    reason: str
    ready: float | None = None
    phases: tuple[Phase, ...] = ()


def _walk(stacks: dict[str, _Stack], place: Callable) -> dict[str, _Placed]:
    placed: dict[str, _Placed] = {}

    def visit(stack_id: str, path: tuple[str, ...]) -> _Placed:
        if stack_id in placed:
            return placed[stack_id]
        if stack_id in path:
            raise ValueError(f"circular dependency between stacks: {' -> '.join((*path, stack_id))}")
        stack = stacks[stack_id]
        ends = [(visit(dep, (*path, stack_id)).end, dep) for dep in stack.deps]
        start, after = max(ends, default=(0.0, None))
        if start <= 0:  # nothing before it took time (a roll's unchanged stacks)
            after = None
        placed[stack_id] = place(stack, start, after, lambda other: visit(other, (*path, stack_id)))
        return placed[stack_id]

    for stack_id in stacks:
        visit(stack_id, ())
    return placed


def _estimate(kind: str, placed: Mapping[str, _Placed], shown: Iterable[str], api: float | None) -> Estimate:
    if not placed:
        return Estimate(kind, (), 0.0, (), api)
    last = max(placed, key=lambda s: (placed[s].end, s))
    path = [last]
    while placed[path[-1]].after is not None:
        path.append(placed[path[-1]].after)
    shown = set(shown)
    critical = set(path) & shown
    waves = tuple(Wave(s, p.start, p.end, s in critical, p.reason, p.ready, p.phases)
                  for s, p in sorted(((s, placed[s]) for s in shown), key=lambda i: (i[1].start, i[1].end, i[0])))
    return Estimate(kind, waves, placed[last].end, tuple(s for s in reversed(path) if s in critical), api)


def _after(after: str | None) -> str:
    return f"after {after}" if after else "at once"


def estimate_create(templates: Mapping[str, dict]) -> Estimate:
    """A first create of every stack of the rendering."""
    stacks = _stacks(templates)
    health = health_seconds(templates)

    def place(stack: _Stack, start: float, after: str | None, visit: Callable) -> _Placed:
        seconds = {lid: resource_seconds(r) for lid, r in stack.resources.items()}
        times = schedule(stack.resources, seconds)
        group, reason, ready, phases = stack.group, _after(after), None, ()
        if group is not None and group.waits and group.desired > 0:
            gates = [((visit(s).ready if stacks[s].group else None) or visit(s).end, s)
                     for s in _late_bound(stack.stack, stacks)]
            gate = max(gates, default=(0.0, "-"))
            boot = node_timing.create_boot(group, start + times[group.logical][1], gate, health)
            seconds[group.logical] = boot.signalled - start - times[group.logical][0]
            times = schedule(stack.resources, seconds)
            ready, phases = boot.ready, boot.phases
            if boot.waited_for is not None:
                after = boot.waited_for
                state = "ready" if stacks[after].group else "complete"
                reason = f"{reason}; K3s waits for {after} {state} (read at boot)"
        end = start + max((e for _, e in times.values()), default=0.0) + d.NESTED_STACK.seconds
        if group is not None and ready is None:
            ready = end
        return _Placed(start, end, after, reason, ready, phases)

    placed = _walk(stacks, place)
    first = placed.get(naming.STACK_SERVER_INIT)
    return _estimate("create", placed, placed, first.ready if first else None)


def estimate_roll(templates: Mapping[str, dict], rolling: Iterable[str] | None = None) -> Estimate:
    """A rolling update of the node groups in ``rolling`` (default: every node group with
    nodes), e.g. a new K3s version or image. Stacks that do not roll take no time but keep
    their place in the order (DependsOn, GetAtt)."""
    stacks = _stacks(templates)
    health = health_seconds(templates)
    groups = {s: st.group for s, st in stacks.items() if st.group is not None and st.group.desired > 0}
    chosen = set(groups) if rolling is None else set(rolling) & set(groups)
    servers = sum(g.desired for g in groups.values() if g.role != node_timing.AGENT)
    api: list[float] = []

    def place(stack: _Stack, start: float, after: str | None, visit: Callable) -> _Placed:
        if stack.stack not in chosen:
            return _Placed(start, start, after, "unchanged")
        while after is not None and after not in chosen:  # through stacks that do not change
            after = visit(after).after
        group = groups[stack.stack]
        rolled = node_timing.roll(group, start, servers, health)
        if rolled.api_back is not None:
            api.append(rolled.api_back)
        size = f"{group.max_batch} node{'s' if group.max_batch > 1 else ''}"
        reason = f"{_after(after)}; {rolled.batches} batch{'es' if rolled.batches > 1 else ''} of {size}"
        return _Placed(start, start + rolled.seconds, after, reason, None, rolled.phases)

    placed = _walk(stacks, place)
    return _estimate("roll", placed, sorted(chosen), min(api, default=None))
