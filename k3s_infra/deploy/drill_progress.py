"""The progress messages of a restore drill (deploy/drill.py): data only, no wording (the CLI
words them: k3s_infra/cli/drill.py). The deploy, restore and destroy it runs report their own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from k3s_infra.deploy.drill_api import ApiCheck, Marker
from k3s_infra.deploy.progress import Message


class DrillMessage(Message):
    """Base of the drill's own progress messages (the deploy, restore and destroy report theirs)."""


@dataclass(frozen=True)
class DrillStep(DrillMessage):
    step: Literal["fresh", "deploy", "copy", "token", "restore", "api", "cleanup"]
    stack: str


@dataclass(frozen=True)
class MarkerWritten(DrillMessage):
    marker: Marker


@dataclass(frozen=True)
class FreshSnapshot(DrillMessage):
    text: str  # deploy/snapshot_now.py's progress, as it words it


@dataclass(frozen=True)
class SnapshotCopied(DrillMessage):
    source: str  # s3://bucket/key
    target: str
    size: int


@dataclass(frozen=True)
class TokenSeeded(DrillMessage):
    secret: str  # the drill's token secret (never the value)


@dataclass(frozen=True)
class WaitingForApi(DrillMessage):
    check: ApiCheck
    waited: float


@dataclass(frozen=True)
class DrillLeft(DrillMessage):
    stack: str
    reason: str
