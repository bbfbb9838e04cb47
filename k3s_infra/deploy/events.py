"""Stack events of the root and every nested stack, followed while an operation runs:
each new event, a tick per poll and a heartbeat when nothing happens are reported
through ``on_progress`` (deploy/progress.py), and the first failing resource is found
when it ends badly."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from k3s_infra.deploy import stack_states
from k3s_infra.deploy.progress import (Failed, Heartbeat, Interrupted, Progress, Settled, StackEvent, Waiting,
                                       ignore)

# A read that failed: an AWS error, or an error page that is not an AWS response (HTTP 5xx).
READ_ERRORS = (ClientError, ResponseParserError)

STACK_TYPE = "AWS::CloudFormation::Stack"
# A Heartbeat at least this often while no event arrives: printed where output is not a
# terminal (CI logs), so a pipeline's no-output timeout never kills a long deploy.
HEARTBEAT_SECONDS = 30.0
# Reasons CloudFormation gives to resources that failed only because something else did.
_CONSEQUENTIAL = ("Resource creation cancelled", "Resource update cancelled", "Embedded stack",
                  "The following resource(s) failed")


_EMBEDDED = re.compile(r"Embedded stack (arn:\S+?) was not successfully")
# What a node group records when an instance's boot signalled FAILURE (boot.sh).
_FAILED_SIGNAL = re.compile(r"UniqueId (i-[0-9a-f]+)")


def first_failure(events: list[dict]) -> dict | None:
    """The earliest failed event that is a cause, not a consequence (a resource that
    failed by itself, rather than a parent stack or a cancelled sibling)."""
    failures = sorted((e for e in events if e.get("ResourceStatus", "").endswith("_FAILED")),
                      key=lambda e: e["Timestamp"])
    for event in failures:
        reason = event.get("ResourceStatusReason") or ""
        if event.get("ResourceType") != STACK_TYPE and not reason.startswith(_CONSEQUENTIAL):
            return event
    for event in failures:
        if not (event.get("ResourceStatusReason") or "").startswith(_CONSEQUENTIAL):
            return event
    return failures[0] if failures else None


@dataclass
class StackRef:
    stack_arn: str
    label: str


@dataclass
class Watcher:
    """Follows a root stack and its nested stacks from ``since`` on."""

    cfn: object
    root_id: str
    root_label: str
    since: object = None  # datetime: events before it are history
    on_progress: Progress = ignore
    seen: set[str] = field(default_factory=set)
    events: list[dict] = field(default_factory=list)
    stacks: dict[str, StackRef] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # event ID -> stack label
    discovering: bool = True
    heartbeat: float = field(default_factory=lambda: HEARTBEAT_SECONDS)
    _last_report: float = field(default_factory=time.monotonic)  # of a StackEvent or Heartbeat
    _resolved: dict[str, str] = field(default_factory=dict)  # physical ID -> stack ID

    def __post_init__(self):
        self.stacks[self.root_id] = StackRef(self.root_id, self.root_label)

    def discover(self) -> None:
        """Add nested stacks (recursively) that exist now, keyed by their stack ID
        (not while deleting: no stack appears then, and the set is known from ``prime``)."""
        if not self.discovering:
            return
        queue = [ref for ref in list(self.stacks.values())]
        while queue:
            ref = queue.pop()
            try:
                pages = self.cfn.get_paginator("list_stack_resources").paginate(StackName=ref.stack_arn)
                summaries = [s for page in pages for s in page["StackResourceSummaries"]]
            except READ_ERRORS:
                continue
            for summary in summaries:
                physical = summary.get("PhysicalResourceId")
                if summary.get("ResourceType") != STACK_TYPE or not physical:
                    continue
                stack_arn = self._stack_arn(physical)
                if stack_arn is None:
                    continue
                if stack_arn not in self.stacks:
                    label = summary["LogicalResourceId"] if ref.stack_arn == self.root_id \
                        else f"{ref.label}/{summary['LogicalResourceId']}"
                    self.stacks[stack_arn] = StackRef(stack_arn, label)
                    queue.append(self.stacks[stack_arn])

    def _stack_arn(self, physical: str) -> str | None:
        """A nested stack resource's physical ID is its stack ARN on AWS; anything else (a bare
        name) is resolved once with DescribeStacks, so polling does not repeat the call."""
        if physical.startswith("arn:"):
            return physical
        if physical not in self._resolved:
            try:
                self._resolved[physical] = self.cfn.describe_stacks(StackName=physical)["Stacks"][0]["StackId"]
            except READ_ERRORS:
                return None
        return self._resolved[physical]

    def _fetch(self, ref: StackRef) -> list[dict]:
        new = []
        try:
            for page in self.cfn.get_paginator("describe_stack_events").paginate(StackName=ref.stack_arn):
                stop = False
                for event in page["StackEvents"]:  # newest first
                    if event["EventId"] in self.seen:
                        stop = True
                        break
                    if self.since is not None and event["Timestamp"] < self.since:
                        stop = True
                        break
                    new.append(event)
                if stop:
                    break
        except READ_ERRORS:
            return []
        return new

    def follow(self, stack_arn: str, label: str) -> bool:
        """Track one more stack (e.g. an embedded stack named in a failure reason)."""
        if stack_arn in self.stacks:
            return False
        self.stacks[stack_arn] = StackRef(stack_arn, label)
        return True

    def trace_failure(self) -> dict | None:
        """The first failure, following "Embedded stack <arn> was not successfully created"
        into nested stacks that may already be gone from the root's resource list."""
        for _ in range(10):
            cause = first_failure(self.events)
            if cause is None:
                return None
            match = _EMBEDDED.search(cause.get("ResourceStatusReason") or "")
            if not match or not self.follow(match.group(1), self.labels.get(cause["EventId"], "") and
                                             cause["LogicalResourceId"]):
                return cause
            self.poll()
        return first_failure(self.events)

    def failure(self, status: str) -> Failed:
        """How an operation that ended ``status`` failed: its traced first failure, and the
        nodes whose boot gave up (their console output says why)."""
        cause = self.trace_failure()
        if cause is None:
            return Failed(self.root_label, status)
        instances = dict.fromkeys(_FAILED_SIGNAL.findall(cause.get("ResourceStatusReason") or ""))
        return Failed(self.root_label, status, cause, self.labels.get(cause["EventId"], "?"), tuple(instances))

    def prime(self) -> None:
        """Mark every event that exists now as history (reported by an earlier run)."""
        self.discover()
        for ref in list(self.stacks.values()):
            self.seen.update(e["EventId"] for e in self._fetch(ref))

    def poll(self) -> list[dict]:
        """Report every event not reported yet, oldest first."""
        self.discover()
        fresh = []
        for ref in list(self.stacks.values()):
            for event in self._fetch(ref):
                fresh.append((event, ref.label))
        fresh.sort(key=lambda pair: pair[0]["Timestamp"])
        for event, label in fresh:
            self.seen.add(event["EventId"])
            self.labels[event["EventId"]] = label
            self.events.append(event)
            self.on_progress(StackEvent(event, label))
            self._last_report = time.monotonic()
        return [e for e, _ in fresh]

    def in_progress(self) -> list[str]:
        """Labels of the stacks whose latest own event (or, for a nested stack, its
        resource event in the parent) is *_IN_PROGRESS."""
        latest: dict[str, str] = {}
        for event in sorted(self.events, key=lambda e: e["Timestamp"]):
            if event.get("ResourceType") != STACK_TYPE:
                continue
            own = event.get("LogicalResourceId") == event.get("StackName")
            label = self.labels.get(event["EventId"], "") if own else \
                next((r.label for r in self.stacks.values() if r.stack_arn == event.get("PhysicalResourceId")),
                     event.get("LogicalResourceId", ""))
            latest[label] = event.get("ResourceStatus", "")
        return [label for label, status in latest.items() if status.endswith("_IN_PROGRESS")]

    def beat(self, status: str, started: float) -> None:
        """A Heartbeat when nothing was reported for ``heartbeat`` seconds."""
        now = time.monotonic()
        if now - self._last_report < self.heartbeat:
            return
        self.on_progress(Heartbeat(self.root_label, status, now - started, tuple(self.in_progress())))
        self._last_report = now

    def wait(self, *, poll: float = 2.0, max_poll: float = 15.0, timeout: float = 3 * 3600) -> str:
        """Report events until the root stack leaves every *_IN_PROGRESS state; return its status."""
        started = time.monotonic()
        delay, status = poll, "?"
        try:
            while True:
                fresh = self.poll()
                status = root_status(self.cfn, self.root_id)
                if stack_states.settled(status):
                    self.poll()  # events written just before the status flipped
                    self.on_progress(Settled(self.root_label, status))
                    return status
                if time.monotonic() - started > timeout:
                    self.on_progress(Settled(self.root_label, status))
                    raise TimeoutError(f"{self.root_label} still {status} after {timeout:.0f}s")
                self.on_progress(Waiting(self.root_label, status, time.monotonic() - started, len(self.stacks)))
                self.beat(status, started)
                delay = poll if fresh else min(delay * 1.5, max_poll, self.heartbeat or max_poll)
                time.sleep(delay)
        except KeyboardInterrupt:
            # Only this process stops: the operation was handed to CloudFormation.
            self.on_progress(Interrupted(self.root_label, status))
            raise


def root_status(cfn, stack_arn: str) -> str:
    try:
        return cfn.describe_stacks(StackName=stack_arn)["Stacks"][0]["StackStatus"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return stack_states.DELETE_COMPLETE
        raise
