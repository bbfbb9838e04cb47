"""How long a deploy (or destroy) really took, per nested stack: read from the stack events the Watcher
followed (deploy/events.py), so it costs no AWS call of its own. The root's own events give
the start and the end; each nested stack's resource events in the root give its wave (its
first CREATE_/UPDATE_IN_PROGRESS and the _COMPLETE or _FAILED after it). Set beside the
model's estimate (model/timing.py) it shows where the model is wrong."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from k3s_infra.deploy.events import STACK_TYPE

_STARTS = ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS")  # delete: destroy's waves
_ENDS = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "CREATE_FAILED", "UPDATE_FAILED", "DELETE_COMPLETE", "DELETE_FAILED")


@dataclass(frozen=True)
class StackTime:
    stack: str
    started: datetime
    ended: datetime | None  # None: no end among the events (still running, or the events stop)
    status: str             # the last status seen

    @property
    def seconds(self) -> float | None:
        return None if self.ended is None else (self.ended - self.started).total_seconds()


@dataclass(frozen=True)
class Measured:
    started: datetime | None  # the root's first *_IN_PROGRESS
    ended: datetime | None    # the root's end (the last terminal status of its own)
    stacks: tuple[StackTime, ...] = ()  # by start

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return (self.ended - self.started).total_seconds()

    def offset(self, when: datetime | None) -> float | None:
        """Seconds from the root's start (or from the first wave's, without root events)."""
        zero = self.started or min((s.started for s in self.stacks), default=None)
        return None if when is None or zero is None else (when - zero).total_seconds()


def _span(events: list[dict]) -> tuple[datetime | None, datetime | None, str]:
    started = ended = None
    status = ""
    for event in events:
        state = event.get("ResourceStatus", "")
        status = state
        if started is None and state in _STARTS:
            started = event["Timestamp"]
        elif started is not None and ended is None and state in _ENDS:
            ended = event["Timestamp"]
    return started, ended, status


def measure(events: Iterable[dict], root: str) -> Measured:
    """The waves of the root stack ``root`` (its StackId or name) among ``events`` (any order;
    events of nested stacks themselves are ignored: the root's view of them is the wave)."""
    mine = sorted((e for e in events if root in (e.get("StackId"), e.get("StackName"))),
                  key=lambda e: e["Timestamp"])
    own = [e for e in mine if e.get("LogicalResourceId") == e.get("StackName")]
    started, _, _ = _span(own)
    ended = next((e["Timestamp"] for e in reversed(own)
                  if not e.get("ResourceStatus", "").endswith("_IN_PROGRESS")), None)
    by_stack: dict[str, list[dict]] = {}
    for event in mine:
        if event.get("ResourceType") == STACK_TYPE and event.get("LogicalResourceId") != event.get("StackName"):
            by_stack.setdefault(event["LogicalResourceId"], []).append(event)
    stacks = []
    for stack, stack_events in by_stack.items():
        first, last, status = _span(stack_events)
        if first is not None:
            stacks.append(StackTime(stack, first, last, status))
    stacks.sort(key=lambda s: (s.started, s.stack))
    return Measured(started, ended if started is not None and ended and ended >= started else None, tuple(stacks))
