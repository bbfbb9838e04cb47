"""Stack events of the root and every nested stack, streamed while an operation
runs: one aligned line per new event, a transient progress line on a terminal,
and the first failing resource when it ends badly."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field
from typing import IO

from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

# A read that failed: an AWS error, or an error page that is not an AWS response (HTTP 5xx).
READ_ERRORS = (ClientError, ResponseParserError)

STACK_TYPE = "AWS::CloudFormation::Stack"
# When output is not a terminal (CI logs), a line at least this often while nothing else
# is printed, so a pipeline's no-output timeout never kills a long deploy.
HEARTBEAT_SECONDS = 30.0
# Reasons CloudFormation gives to resources that failed only because something else did.
_CONSEQUENTIAL = ("Resource creation cancelled", "Resource update cancelled", "Embedded stack",
                  "The following resource(s) failed")


_EMBEDDED = re.compile(r"Embedded stack (arn:\S+?) was not successfully")


def terminal(status: str) -> bool:
    return not status.endswith("_IN_PROGRESS")


def failed(status: str) -> bool:
    return status.endswith("_FAILED") or status.startswith("ROLLBACK") or "ROLLBACK" in status


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_event(event: dict, stack_label: str, widths=(8, 18, 30, 26)) -> str:
    """``HH:MM:SS  stack  logical-id  status  reason`` in fixed columns (the stack's own
    events, whose logical ID is the stack name, show as ``(stack)``)."""
    ts = event["Timestamp"]
    clock = ts.strftime("%H:%M:%S") if hasattr(ts, "strftime") else str(ts)[11:19]
    reason = " ".join((event.get("ResourceStatusReason") or "").split())
    logical = event.get("LogicalResourceId", "")
    if logical and logical == event.get("StackName"):
        logical = "(stack)"
    cols = (clock, _fit(stack_label, widths[1]), _fit(logical, widths[2]), event.get("ResourceStatus", ""))
    line = "  ".join(v.ljust(w) for v, w in zip(cols, widths))
    return (line + "  " + reason).rstrip()


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
    stack_id: str
    label: str


@dataclass
class Watcher:
    """Follows a root stack and its nested stacks from ``since`` on."""

    cfn: object
    root_id: str
    root_label: str
    since: object = None  # datetime: events before it are history
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    live: bool | None = None
    seen: set[str] = field(default_factory=set)
    events: list[dict] = field(default_factory=list)
    stacks: dict[str, StackRef] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # event ID -> stack label
    discovering: bool = True
    heartbeat: float = field(default_factory=lambda: HEARTBEAT_SECONDS)
    _last_line: float = field(default_factory=time.monotonic)
    _progress_shown: bool = False
    _resolved: dict[str, str] = field(default_factory=dict)  # physical ID -> stack ID

    def __post_init__(self):
        self.stacks[self.root_id] = StackRef(self.root_id, self.root_label)
        if self.live is None:
            self.live = hasattr(self.out, "isatty") and self.out.isatty()

    def discover(self) -> None:
        """Add nested stacks (recursively) that exist now, keyed by their stack ID
        (not while deleting: no stack appears then, and the set is known from ``prime``)."""
        if not self.discovering:
            return
        queue = [ref for ref in list(self.stacks.values())]
        while queue:
            ref = queue.pop()
            try:
                pages = self.cfn.get_paginator("list_stack_resources").paginate(StackName=ref.stack_id)
                summaries = [s for page in pages for s in page["StackResourceSummaries"]]
            except READ_ERRORS:
                continue
            for summary in summaries:
                physical = summary.get("PhysicalResourceId")
                if summary.get("ResourceType") != STACK_TYPE or not physical:
                    continue
                stack_id = self._stack_id(physical)
                if stack_id is None:
                    continue
                if stack_id not in self.stacks:
                    label = summary["LogicalResourceId"] if ref.stack_id == self.root_id \
                        else f"{ref.label}/{summary['LogicalResourceId']}"
                    self.stacks[stack_id] = StackRef(stack_id, label)
                    queue.append(self.stacks[stack_id])

    def _stack_id(self, physical: str) -> str | None:
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
            for page in self.cfn.get_paginator("describe_stack_events").paginate(StackName=ref.stack_id):
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

    def follow(self, stack_id: str, label: str) -> bool:
        """Track one more stack (e.g. an embedded stack named in a failure reason)."""
        if stack_id in self.stacks:
            return False
        self.stacks[stack_id] = StackRef(stack_id, label)
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

    def prime(self) -> None:
        """Mark every event that exists now as history (printed by an earlier run)."""
        self.discover()
        for ref in list(self.stacks.values()):
            self.seen.update(e["EventId"] for e in self._fetch(ref))

    def poll(self) -> list[dict]:
        """Print every event not printed yet, oldest first."""
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
            self._clear_progress()
            print(format_event(event, label), file=self.out, flush=True)
            self._last_line = time.monotonic()
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
                next((r.label for r in self.stacks.values() if r.stack_id == event.get("PhysicalResourceId")),
                     event.get("LogicalResourceId", ""))
            latest[label] = event.get("ResourceStatus", "")
        return [label for label, status in latest.items() if status.endswith("_IN_PROGRESS")]

    def beat(self, status: str, started: float) -> None:
        """Not on a terminal: one plain line when nothing was printed for ``heartbeat`` s."""
        now = time.monotonic()
        if self.live or now - self._last_line < self.heartbeat:
            return
        elapsed = int(now - started)
        busy = ", ".join(self.in_progress()) or "-"
        print(f"... {elapsed // 60}m{elapsed % 60:02d}s  {self.root_label} {status}  in progress: {busy}",
              file=self.out, flush=True)
        self._last_line = now

    def _clear_progress(self) -> None:
        if self._progress_shown:
            self.out.write("\r\033[K")
            self._progress_shown = False

    def progress(self, status: str, started: float) -> None:
        if not self.live:
            return
        elapsed = int(time.monotonic() - started)
        self._clear_progress()
        self.out.write(f"  … {self.root_label} {status}  {len(self.stacks)} stacks  {elapsed // 60}m{elapsed % 60:02d}s")
        self.out.flush()
        self._progress_shown = True

    def wait(self, *, poll: float = 2.0, max_poll: float = 15.0, timeout: float = 3 * 3600) -> str:
        """Stream events until the root stack leaves every *_IN_PROGRESS state; return its status."""
        started = time.monotonic()
        delay, status = poll, "?"
        try:
            while True:
                fresh = self.poll()
                status = root_status(self.cfn, self.root_id)
                if terminal(status):
                    self.poll()  # events written just before the status flipped
                    self._clear_progress()
                    return status
                if time.monotonic() - started > timeout:
                    self._clear_progress()
                    raise TimeoutError(f"{self.root_label} still {status} after {timeout:.0f}s")
                self.progress(status, started)
                self.beat(status, started)
                delay = poll if fresh else min(delay * 1.5, max_poll, self.heartbeat or max_poll)
                time.sleep(delay)
        except KeyboardInterrupt:
            # Only this process stops: the operation was handed to CloudFormation.
            self._clear_progress()
            print(f"\ninterrupted: CloudFormation keeps going with {self.root_label} ({status}); follow it with "
                  f"'k3s-infra status --watch' (same --env or --config)", file=self.out, flush=True)
            raise


def root_status(cfn, stack_id: str) -> str:
    try:
        return cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return "DELETE_COMPLETE"
        raise
