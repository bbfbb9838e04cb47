"""What the deploy library reports while it works, as typed messages.

Long operations (plan, deploy, destroy, restore, ``status --watch``) take an
``on_progress: Progress`` callback and call it with one of the messages below as each
step happens; they never print. The CLI turns every message into the lines a person
reads (k3s_infra/cli/progress.py); a library user may log them, collect them or pass
``ignore``. Messages carry data only, no wording."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from k3s_infra.deploy.changeset import ChangeSet
from k3s_infra.deploy.images import ImageChoice
from k3s_infra.deploy.leftovers import Cleanup, Leftover, Leftovers
from k3s_infra.deploy.package import Package
from k3s_infra.deploy.restore_request import Pending, RestoreRequest, Withdrawal


class Message:
    """Base of every progress message."""


Progress = Callable[[Message], None]


def ignore(message: Message) -> None:
    """The default ``on_progress``: report nothing."""


# --- stack events while CloudFormation works (deploy/events.py Watcher) -------------

@dataclass(frozen=True)
class StackEvent(Message):
    event: dict  # as DescribeStackEvents returns it
    stack: str   # label of the stack it belongs to ("k3s-dev", "AgentPoolGeneral", ...)


@dataclass(frozen=True)
class Waiting(Message):
    """Every poll while the root is busy (a live status line on a terminal)."""
    root: str
    status: str
    elapsed: float
    stacks: int


@dataclass(frozen=True)
class Heartbeat(Message):
    """No stack event for ``Watcher.heartbeat`` seconds (CI logs need a line now and then)."""
    root: str
    status: str
    elapsed: float
    in_progress: tuple[str, ...]


@dataclass(frozen=True)
class Settled(Message):
    """The wait is over: the root left every *_IN_PROGRESS state, or the wait timed out."""
    root: str
    status: str


@dataclass(frozen=True)
class Interrupted(Message):
    """Ctrl-C while waiting: this process stops, CloudFormation goes on."""
    root: str
    status: str


@dataclass(frozen=True)
class Failed(Message):
    """An operation ended badly: its first failing resource and the root's final status."""
    root: str
    status: str
    cause: dict | None = None  # the stack event of the first failure; None: none was named
    cause_stack: str = "?"     # the label of the stack it happened in
    instances: tuple[str, ...] = ()  # nodes whose boot signalled FAILURE (their console has the log)


@dataclass(frozen=True)
class Following(Message):
    """``status --watch`` re-attached to an operation that is running."""
    stack_name: str
    status: str


# --- plan and deploy (deploy/lifecycle.py) --------------------------------------------

@dataclass(frozen=True)
class QuorumLossAllowed(Message):
    current: int
    target: int


@dataclass(frozen=True)
class ImagesChosen(Message):
    choices: tuple[ImageChoice, ...]


@dataclass(frozen=True)
class RegistryNeeded(Message):
    """Pre-flight: the nodes have no way to the internet. K3s and its own images come from the
    artifact bucket (deploy/artifacts.py); these still need a registry or chart repository in reach."""
    field: str
    needs: tuple[str, ...]


# --- the K3s release files (deploy/artifacts.py) --------------------------------------

@dataclass(frozen=True)
class ArtifactTransfer(Message):
    """A release file on its way: when it starts, every artifacts.REPORT_EVERY bytes, when done."""
    name: str
    action: str        # "download" | "upload"
    done: int          # bytes so far
    total: int | None  # None: the server did not say


@dataclass(frozen=True)
class ArtifactVerified(Message):
    """A file matched the release's checksum file (and the pin): it may go to the nodes."""
    name: str
    sha256: str
    source: str  # its URL, "cache <path>" or the path --artifacts named


@dataclass(frozen=True)
class ArtifactCacheRejected(Message):
    """A cached file no longer matches its checksum: removed, and downloaded again."""
    path: str
    actual: str
    expected: str


@dataclass(frozen=True)
class ArtifactsStaged(Message):
    bucket: str
    prefix: str                # <stack>/k3s: every key is <prefix>/<sha256>/<name>
    uploaded: tuple[str, ...]  # file names
    reused: tuple[str, ...]    # already there (content-addressed)


@dataclass(frozen=True)
class PlanUploads(Message):
    """plan writes to S3 (templates, a change set it deletes again unless ``kept``: plan --out)."""
    bucket: str
    kept: bool = False


@dataclass(frozen=True)
class Packaged(Message):
    package: Package


@dataclass(frozen=True)
class ChangeSetReady(Message):
    """Shown before asking whether to execute it."""
    change_set: ChangeSet


@dataclass(frozen=True)
class ChangeSetDiscarded(Message):
    """Not executed (declined, or interrupted at the prompt): deleted again."""


@dataclass(frozen=True)
class RestoreRequestPending(Message):
    """A restore request is in SSM (deploy reports it before changing anything)."""
    pending: Pending


@dataclass(frozen=True)
class Executing(Message):
    change_set_type: str
    stack_name: str


@dataclass(frozen=True)
class RollOrderRecorded(Message):
    """After a first create: the stack holds the ordered root (deploy/roll_order.py)."""
    changed: bool  # False: CloudFormation found nothing to change, or the update failed (problem)
    problem: str | None = None


@dataclass(frozen=True)
class RollOrderMissing(Message):
    """Before an update: the deployed root lacks the roll order (its recording after the create
    failed); it is recorded first (deploy/roll_order.py ensure), or, for a planned change set,
    'deploy' without the plan file records it."""
    lacking: tuple[str, ...]  # "Servers after ServerInit", ...
    recording: bool = True    # False: plan (which changes nothing) says it


@dataclass(frozen=True)
class ExecutionFailed(Message):
    error: str


@dataclass(frozen=True)
class EventsUnavailable(Message):
    error: str  # the exception's type name


# --- after CloudFormation: the nodes themselves (deploy/readiness.py) -----------------

@dataclass(frozen=True)
class WaitingForNodes(Message):
    """A node group still short of ready nodes: when its counts change, and now and then."""
    group: str     # the node stack's logical ID ("Servers", "AgentPoolGeneral", ...)
    ready: int     # in service and ready: reported ready, or running since before this deploy
    desired: int   # the group's desired capacity
    waited: float
    not_ready: tuple[str, ...] = ()  # instances this deploy launched that have not reported ready


@dataclass(frozen=True)
class NodesReady(Message):
    """Every node group runs its desired capacity and every new node reported ready."""
    groups: int               # node groups checked
    new: tuple[str, ...]      # instances launched since the deploy started (all ready)
    waited: float


# --- destroy (deploy/teardown.py) -----------------------------------------------------

@dataclass(frozen=True)
class NothingToDestroy(Message):
    stack_name: str
    region: str


@dataclass(frozen=True)
class NestedStacksUnlisted(Message):
    stack_name: str
    error: str  # the exception's type name


@dataclass(frozen=True)
class ProtectionRemoved(Message):
    stack_name: str


@dataclass(frozen=True)
class LoadBalancerProtectionRemoved(Message):
    """Deletion protection lifted from the stack's API load balancers (--allow-protected)."""
    names: tuple[str, ...]


@dataclass(frozen=True)
class LeftoversFound(Message):
    """What the cloud controller made for this cluster (deploy/leftovers.py): deleted next.
    Before the first delete attempt it is reported even when nothing was found."""
    leftovers: Leftovers


@dataclass(frozen=True)
class LeftoversWaiting(Message):
    """Some are still in use (a deleted load balancer's network interfaces linger)."""
    pending: tuple[Leftover, ...]
    waited: float


@dataclass(frozen=True)
class LeftoversDeleted(Message):
    cleanup: Cleanup


@dataclass(frozen=True)
class SnapshotBucketEmptied(Message):
    bucket: str
    removed: int  # object versions and delete markers
    what: str = "snapshot"  # or "OIDC issuer"


@dataclass(frozen=True)
class Deleting(Message):
    stack_name: str


@dataclass(frozen=True)
class DeleteRetry(Message):
    stack_name: str
    attempt: int
    retries: int


@dataclass(frozen=True)
class StackDeleted(Message):
    stack_name: str


@dataclass(frozen=True)
class NodeParametersDeleted(Message):
    names: tuple[str, ...]  # empty: none was left


@dataclass(frozen=True)
class Retained(Message):
    """Resources a protected environment keeps (DeletionPolicy Retain)."""
    resources: tuple[tuple[str, str, str], ...]  # (stack, resource type, physical ID)
    listed: bool      # False: the nested stacks could not be listed, so neither could these
    protected: bool


@dataclass(frozen=True)
class ArtifactsCleaned(Message):
    bucket: str
    existed: bool         # False: the bucket was already gone
    removed: int = 0      # template objects (versions and delete markers) removed
    bucket_deleted: bool = False  # False: other clusters still use it


# --- restore (deploy/snapshots.py) ----------------------------------------------------

@dataclass(frozen=True)
class RestoreRequested(Message):
    parameter: str
    request: RestoreRequest


@dataclass(frozen=True)
class JoiningServersStopping(Message):
    group: str


@dataclass(frozen=True)
class WaitingForJoiningServers(Message):
    waited: float


@dataclass(frozen=True)
class FirstServerReplaced(Message):
    instances: tuple[str, ...]  # the terminated ones (empty: none was running)
    group: str


@dataclass(frozen=True)
class WaitingForRestore(Message):
    snapshot: str
    parameter: str
    waited: float


@dataclass(frozen=True)
class SnapshotRestored(Message):
    snapshot: str


@dataclass(frozen=True)
class JoiningServersRestarted(Message):
    group: str
    min_size: str | None
    desired: str | None
    max_size: str | None


@dataclass(frozen=True)
class RestoreWithdrawn(Message):
    """The restore stopped (interrupted, or an error other than its own timeout) after writing
    its request; ``outcome`` says what became of the request (``error``: why "failed").
    The joining servers stay at 0: the sizes are what to set them back to."""
    parameter: str
    region: str
    outcome: Withdrawal
    error: str | None
    group: str
    min_size: str | None
    desired: str | None
    max_size: str | None
