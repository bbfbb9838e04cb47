"""A node group's part of the time-to-ready model: its group as rendered (role, size, rolling
update, boot settings) and its nodes' boot as timed phases (model/durations.py BOOT), for a
create and for a rolling update. model/timing.py places these in the nested-stack graph."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from k3s_infra.config import defaults
from k3s_infra.model import durations as d
from k3s_infra.model import naming

GROUP_TYPE = "AWS::AutoScaling::AutoScalingGroup"
LAUNCH_TEMPLATE_TYPE = "AWS::EC2::LaunchTemplate"
FIRST, JOINING, AGENT = "first server", "joining servers", "agents"
# boot.env lines in the user data: KEY='value' (bootstrap/__init__.py writes them so).
_BOOT_ENV = re.compile(r"^\s*([A-Z][A-Z0-9_]*)='([^']*)'\s*$", re.MULTILINE)


def role_of(stack_id: str) -> str | None:
    """The node role of a nested stack, from its logical ID (model/naming.py)."""
    if stack_id == naming.STACK_SERVER_INIT:
        return FIRST
    if stack_id == naming.STACK_SERVERS:
        return JOINING
    if stack_id.startswith(naming.agent_pool_stack("")):
        return AGENT
    return None


@dataclass(frozen=True)
class Phase:
    name: str
    start: float
    end: float


@dataclass(frozen=True)
class NodeGroup:
    """A node stack's auto scaling group as rendered."""
    stack: str
    role: str
    logical: str            # the group's logical ID in its stack
    desired: int
    waits: bool             # a CreationPolicy: CloudFormation waits for the nodes' signals
    max_batch: int          # UpdatePolicy AutoScalingRollingUpdate
    min_in_service: int
    registers: bool         # in a load balancer target group (the API's)
    boot_env: Mapping[str, str] = field(default_factory=dict)

    def setting(self, name: str) -> int:
        """A boot wait from boot.env, else its default (config/defaults.py BOOT_WAITS)."""
        return int(self.boot_env.get(name, defaults.BOOT_WAITS[name]))


def _value(value: object, parameters: Mapping[str, object]) -> object:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return parameters.get(value["Ref"])
    return value


def _int(value: object, parameters: Mapping[str, object], default: int) -> int:
    try:
        return int(str(_value(value, parameters)))
    except (TypeError, ValueError):
        return default


def _strings(node: object):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def boot_env(resources: Mapping[str, dict]) -> dict[str, str]:
    """boot.env as the stack's launch template writes it (empty if none is readable)."""
    found: dict[str, str] = {}
    for resource in resources.values():
        if resource.get("Type") == LAUNCH_TEMPLATE_TYPE:
            user_data = resource.get("Properties", {}).get("LaunchTemplateData", {}).get("UserData", {})
            for text in _strings(user_data):
                found.update(_BOOT_ENV.findall(text))
    return found


def node_group(stack_id: str, template: dict, parameters: Mapping[str, object]) -> NodeGroup | None:
    """The node group of a node stack (None: not a node stack, or it has no group)."""
    role = role_of(stack_id)
    resources = template.get("Resources", {})
    groups = [(lid, r) for lid, r in resources.items() if r.get("Type") == GROUP_TYPE]
    if role is None or not groups:
        return None
    logical, group = groups[0]
    props = group.get("Properties", {})
    rolling = group.get("UpdatePolicy", {}).get("AutoScalingRollingUpdate", {})
    desired = _int(props.get("DesiredCapacity", props.get("MinSize")), parameters, 1)
    return NodeGroup(stack_id, role, logical, desired, "CreationPolicy" in group,
                     max(1, _int(rolling.get("MaxBatchSize"), parameters, 1)),
                     _int(rolling.get("MinInstancesInService"), parameters, 0),
                     bool(props.get("TargetGroupARNs")), boot_env(resources))


def download_seconds() -> float:
    return d.ARTIFACT_MEGABYTES.seconds / d.DOWNLOAD_MEGABYTES_PER_SECOND.seconds


class _Chain:
    """Phases one after another from ``t``."""

    def __init__(self, t: float):
        self.t = t
        self.phases: list[Phase] = []

    def add(self, name: str, seconds: float) -> None:
        if seconds > 0:
            self.phases.append(Phase(name, self.t, self.t + seconds))
            self.t += seconds

    def until(self, name: str, t: float | None) -> bool:
        """Wait for ``t``; True when that wait was needed."""
        if t is None or t <= self.t:
            return False
        self.add(name, t - self.t)
        return True


@dataclass(frozen=True)
class Boot:
    """One group's boot, in seconds from the estimate's zero."""
    ready: float        # K3s answers: for the first server through the load balancer, with its token published
    signalled: float    # every node signalled: CloudFormation completes the group
    phases: tuple[Phase, ...]
    waited_for: str | None = None  # the late-bound stack whose fact the boot last waited for


def _install(chain: _Chain, group: NodeGroup) -> float:
    """Launch, discover, packages, downloads; returns when the node is InService."""
    in_service = chain.t + d.BOOT["in_service"].seconds
    chain.add("launch", d.BOOT["launch"].seconds)
    chain.add("discover", d.BOOT["discover"].seconds)
    if group.boot_env.get("PACKAGES"):
        chain.add("packages", d.BOOT["packages"].seconds)
    chain.add("download", download_seconds())
    return in_service


def _k3s(chain: _Chain, group: NodeGroup) -> None:
    if group.role == AGENT:
        chain.add("k3s start", d.BOOT["k3s_start_agent"].seconds)
        chain.add("node ready", d.BOOT["agent_ready"].seconds)
    else:
        chain.add("k3s start", d.BOOT["k3s_start_server"].seconds)
        chain.add("api ready", d.BOOT["server_ready"].seconds)


def behind_load_balancer(in_service: float, health_seconds: float) -> float:
    return in_service + d.NLB_TARGET_REGISTRATION.seconds + health_seconds


Gate = tuple[float, str]  # (when, the stack that is then complete or ready)


def create_boot(group: NodeGroup, launch_at: float, gate: Gate, health_seconds: float) -> Boot:
    """A new group's nodes, launched together at ``launch_at``; K3s starts no earlier than
    ``gate`` (its late-bound facts). The first server decides without a probe: no marker yet
    (first_server.sh probe_worthwhile). Joining servers join etcd one at a time and signal only
    once every other server is healthy behind the API load balancer (boot.sh servers_healthy)."""
    chain = _Chain(launch_at)
    in_service = _install(chain, group)
    waited_for = None
    if group.role == FIRST:  # boot.sh: decide_mode (the target group), tokens, then the facts
        chain.add("tokens", d.BOOT["tokens"].seconds)
    if chain.until(f"wait for {gate[1]}", gate[0]):
        waited_for = gate[1]
    if group.role != FIRST:  # a joiner's token is the one the first server publishes
        chain.add("tokens", d.BOOT["tokens"].seconds)
    _k3s(chain, group)
    if group.role == JOINING:
        chain.add("etcd joins", group.desired * d.BOOT["etcd_join"].seconds)
    if group.role == FIRST:
        chain.add("publish", d.BOOT["publish"].seconds)
    healthy = behind_load_balancer(in_service, health_seconds) if group.registers else None
    if group.role == JOINING:
        chain.until("load balancer health", healthy)
    ready = max(chain.t, healthy or 0.0) if group.role == FIRST else chain.t
    chain.add("signal", d.BOOT["signal"].seconds)
    return Boot(ready, chain.t, tuple(chain.phases), waited_for)


@dataclass(frozen=True)
class Roll:
    seconds: float
    batches: int
    phases: tuple[Phase, ...]        # one batch, from the roll's start
    api_back: float | None = None    # a lone server's API answers again behind the load balancer


def roll(group: NodeGroup, start: float, servers: int, health_seconds: float) -> Roll:
    """A rolling update of the group (UpdatePolicy AutoScalingRollingUpdate): batches of
    MaxBatchSize, each waiting for its new nodes' signals. Without room for a temporary
    instance (MinInstancesInService + MaxBatchSize <= desired) a batch terminates (drains)
    before it launches. A lone server's replacement finds no API, restores the newest
    snapshot and the API is down meanwhile."""
    batches = math.ceil(group.desired / group.max_batch)
    surge = group.min_in_service + group.max_batch > group.desired
    lone = group.role == FIRST and servers == 1
    chain = _Chain(start)
    if not surge:  # a terminating instance waits for all its termination hooks, pending at once
        if lone:
            chain.add("drain and snapshot", max(d.BOOT["drain"].seconds, d.BOOT["pre_termination_snapshot"].seconds))
        else:
            chain.add("drain", d.BOOT["drain"].seconds)
    in_service = _install(chain, group)
    if lone:  # no other server registered: no probe (first_server.sh probe_worthwhile)
        chain.add("restore snapshot", d.BOOT["restore"].seconds)
    chain.add("tokens", d.BOOT["tokens"].seconds)
    _k3s(chain, group)
    api_back = max(chain.t, behind_load_balancer(in_service, health_seconds)) if lone else None
    if group.role != AGENT and not lone:
        chain.add("etcd join", d.BOOT["etcd_join"].seconds)
    if lone:
        chain.add("publish", d.BOOT["publish"].seconds)
    chain.add("signal", d.BOOT["signal"].seconds)
    seconds = (chain.t - start) * batches + (d.BOOT["drain"].seconds if surge else 0)
    return Roll(seconds, batches, tuple(chain.phases), api_back)
