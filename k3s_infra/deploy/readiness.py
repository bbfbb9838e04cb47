"""After CloudFormation: wait until every node group runs the nodes the deploy asked for, ready.

CloudFormation judges nodes only while it creates a group (CreationPolicy) or rolls it for a
new launch template or subnets (AutoScalingRollingUpdate); an update of the size alone
completes without waiting for any node (AWS CloudFormation User Guide, "CreationPolicy
attribute" and "UpdatePolicy attribute"). So deploy waits itself: the last step of a node's
boot tags its own instance naming.READY_TAG=READY_VALUE (k3s_infra/bootstrap/boot.sh), and a
group is ready once it has DesiredCapacity InService instances and every instance launched
since the deploy started carries that tag (a spot pool, as its CreationPolicy, needs only
SPOT_MIN_SUCCESSFUL_PERCENT of them in service). Instances running from before keep counting
as they are, so a deploy that launched nothing passes after one look."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime

from k3s_infra.config import defaults
from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.deploy import DeployError
from k3s_infra.deploy.events import HEARTBEAT_SECONDS
from k3s_infra.deploy.groups import describe_groups, nested_stacks, outputs
from k3s_infra.deploy.progress import NodesReady, Progress, WaitingForNodes, ignore

POLL_SECONDS = 10.0
# A bit above the node signal timeout: a node as slow as CloudFormation accepts still counts.
TIMEOUT_SECONDS = defaults.JOINER_SIGNAL_TIMEOUT_SECONDS + 300
# Auto Scaling lifecycle states of an instance that is, or is becoming, part of its group
# (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html).
LIVE_STATES = ("Pending", "Pending:Wait", "Pending:Proceed", "InService")
# DescribeInstances by filter: at most 200 filter values a call (EC2 answers more with
# FilterLimitExceeded); a filter, unlike InstanceIds (InvalidInstanceID.NotFound), does not
# fail on an instance EC2 does not list yet (EC2 API Reference, "Eventual consistency").
IDS_PER_CALL = 200


@dataclass(frozen=True)
class Instance:
    new: bool    # launched since the deploy started
    ready: bool  # carries READY_TAG=READY_VALUE


@dataclass
class GroupState:
    label: str   # the node stack's logical ID
    name: str    # the auto scaling group
    desired: int = 0
    needed: int = 0  # in service and ready: all desired, or a spot pool's share
    ready: int = 0
    not_ready: list[str] = field(default_factory=list)  # new, live, not (yet) tagged ready
    new_ready: list[str] = field(default_factory=list)  # new, live, tagged ready

    @property
    def done(self) -> bool:
        return self.ready >= self.needed and not self.not_ready


def node_groups(aws, root_id: str) -> list[tuple[str, str]]:
    """(node stack logical ID, auto scaling group name) of every node group of the root."""
    return [(logical, name) for logical, stack in nested_stacks(aws.cloudformation, root_id)
            if (name := outputs(stack).get(o.AUTO_SCALING_GROUP))]


def _needed(group: dict, desired: int) -> int:
    """A spot pool (some capacity not on demand) may come up short, as CloudFormation accepts
    it (components/auto_scaling_group.py: MinSuccessfulInstancesPercent, rounded up)."""
    distribution = group.get("MixedInstancesPolicy", {}).get("InstancesDistribution", {})
    if distribution.get("OnDemandPercentageAboveBaseCapacity", 100) >= 100:
        return desired
    return math.ceil(desired * defaults.SPOT_MIN_SUCCESSFUL_PERCENT / 100)


def _describe(ec2, ids: list[str], since: datetime) -> dict[str, Instance]:
    found: dict[str, Instance] = {}
    for start in range(0, len(ids), IDS_PER_CALL):
        batch = ids[start:start + IDS_PER_CALL]
        pages = ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": "instance-id", "Values": batch}])
        for instance in (i for page in pages for r in page["Reservations"] for i in r["Instances"]):
            tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
            found[instance["InstanceId"]] = Instance(new=instance["LaunchTime"] >= since,
                                                     ready=tags.get(naming.READY_TAG) == naming.READY_VALUE)
    return found


def _look(aws, groups: list[tuple[str, str]], known: dict[str, Instance], since: datetime) -> list[GroupState]:
    """One look at every group: one DescribeAutoScalingGroups (50 names a call), and one
    DescribeInstances for the instances not known yet or new and not yet ready."""
    described = describe_groups(aws.autoscaling, [name for _, name in groups])
    states, live = [], {}
    for label, name in groups:
        group = described.get(name)
        if group is None:
            continue  # gone since CloudFormation finished: nothing to wait for
        live[label] = [i for i in group.get("Instances", []) if i.get("LifecycleState") in LIVE_STATES]
        desired = int(group["DesiredCapacity"])
        states.append(GroupState(label, name, desired, _needed(group, desired)))
    unknown = [i["InstanceId"] for members in live.values() for i in members
               if i["InstanceId"] not in known or (known[i["InstanceId"]].new and not known[i["InstanceId"]].ready)]
    if unknown:
        known.update(_describe(aws.ec2, unknown, since))
    for state in states:
        for member in live[state.label]:
            # Not listed by EC2 yet (eventual consistency): new and not ready until it is.
            instance = known.get(member["InstanceId"], Instance(new=True, ready=False))
            if instance.new and not instance.ready:
                state.not_ready.append(member["InstanceId"])
            elif member["LifecycleState"] == "InService":
                state.ready += 1
                if instance.new:
                    state.new_ready.append(member["InstanceId"])
    return states


def wait_for_nodes(aws, root_id: str, *, since: datetime, on_progress: Progress = ignore,
                   poll: float | None = None, timeout: float | None = None) -> NodesReady:
    """Wait until every node group of the root is ready (see the module's doc); report
    WaitingForNodes while it is not, NodesReady at the end. ``since``: when the deploy
    started, in AWS's clock (LaunchTime is in whole seconds, so is the comparison). Raises
    DeployError after ``timeout`` seconds, naming every new instance that never reported
    ready and how to read its boot log. ``since`` must be timezone-aware, as botocore's
    LaunchTime is."""
    poll = POLL_SECONDS if poll is None else poll
    timeout = TIMEOUT_SECONDS if timeout is None else timeout
    since = since.replace(microsecond=0)
    groups = node_groups(aws, root_id)
    known: dict[str, Instance] = {}
    launched: dict[str, str] = {}  # every new instance seen -> its group
    started = time.monotonic()
    shown, last_report = None, started
    while True:
        states = _look(aws, groups, known, since) if groups else []
        launched.update({i: s.label for s in states for i in s.not_ready})
        waited = time.monotonic() - started
        if all(state.done for state in states):
            ready = NodesReady(len(states), tuple(i for s in states for i in s.new_ready), waited)
            on_progress(ready)
            return ready
        if waited > timeout:
            raise DeployError(_not_ready(aws.env.region, states, known, launched, timeout))
        waiting = [(s.label, s.ready, s.desired, tuple(s.not_ready)) for s in states if not s.done]
        if waiting != shown or time.monotonic() - last_report >= HEARTBEAT_SECONDS:
            for label, ready, desired, not_ready in waiting:
                on_progress(WaitingForNodes(label, ready, desired, waited, not_ready))
            shown, last_report = waiting, time.monotonic()
        time.sleep(poll)


def console_command(instance: str, region: str) -> str:
    return f"aws ec2 get-console-output --instance-id {instance} --region {region} --latest --output text"


def _not_ready(region: str, states: list[GroupState], known: dict[str, Instance], launched: dict[str, str],
               timeout: float) -> str:
    lines = [f"nodes not ready after {timeout:.0f}s (a node tags its instance {naming.READY_TAG}="
             f"{naming.READY_VALUE} as the last step of its boot; its boot log, 'k3s-infra-boot:' lines, "
             f"is in its console output):"]
    for state in (s for s in states if not s.done):
        line = f"  {state.label} ({state.name}): {state.ready} of {state.desired} ready"
        if state.needed < state.desired:
            line += f" ({state.needed} needed: spot)"
        if state.ready + len(state.not_ready) < state.needed:
            line += (f"; too few instances: 'aws autoscaling describe-scaling-activities "
                     f"--auto-scaling-group-name {state.name} --region {region}' says why")
        lines.append(line)
    # Every new instance that never reported ready, also one its group has replaced since
    # (its boot gave up: its console output says why, while EC2 still has it).
    never_ready = [i for i in launched if not known.get(i, Instance(True, False)).ready]
    for instance in never_ready:
        lines.append(f"  {instance} ({launched[instance]}): {console_command(instance, region)}")
    return "\n".join(lines)
