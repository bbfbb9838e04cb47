"""CloudFormation stack statuses and what k3s-infra does with a stack in each: the one place
every command's decision about a status comes from (plan, deploy, destroy, status, restore,
and the change-set cleanup).

The statuses are botocore's service model (cloudformation 2010-05-15, shape StackStatus);
their meanings the User Guide's "Stack status codes"
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html#cfn-console-view-stack-data-resources-status-codes).
What may follow a status: UpdateStack / CreateChangeSet take a stack at rest after a
success or a completed rollback; ROLLBACK_COMPLETE allows "only a delete operation";
UPDATE_ROLLBACK_FAILED allows a delete or ContinueUpdateRollback
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ContinueUpdateRollback.html);
CREATE_FAILED and UPDATE_FAILED (rollback paused, "preserve successfully provisioned
resources") can be updated to resume
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-failure-options.html).
Tables per command, tested status by status: tests/unit/deploy/stack_status_table.py."""

from __future__ import annotations

from typing import Literal

from k3s_infra.deploy import DeployError

REVIEW_IN_PROGRESS = "REVIEW_IN_PROGRESS"  # an ID reserved by a CREATE change set: no template, no resources
DELETE_COMPLETE = "DELETE_COMPLETE"        # gone (DescribeStacks by name no longer finds it)
DELETE_FAILED = "DELETE_FAILED"

# An operation finished as asked.
SUCCEEDED = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})
# Back where the stack was before the last operation: a rollback is never a success.
ROLLED_BACK = frozenset({"ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"})
# Stopped by a failure; CloudFormation does nothing more on its own.
FAILED = frozenset({"CREATE_FAILED", "UPDATE_FAILED", DELETE_FAILED, "ROLLBACK_FAILED", "UPDATE_ROLLBACK_FAILED",
                    "IMPORT_ROLLBACK_FAILED"})
# CloudFormation is working on the stack (the cleanup phases included: old or new resources
# are still being deleted, so the operation has not ended).
RUNNING = frozenset({"CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "DELETE_IN_PROGRESS", "UPDATE_IN_PROGRESS",
                     "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS",
                     "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "IMPORT_IN_PROGRESS",
                     "IMPORT_ROLLBACK_IN_PROGRESS"})
ALL = SUCCEEDED | ROLLED_BACK | FAILED | RUNNING | {REVIEW_IN_PROGRESS, DELETE_COMPLETE}

# A change set can update these: at rest on a working version, or paused after a failure
# with rollback disabled (the update resumes it).
UPDATABLE = SUCCEEDED | {"UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE", "CREATE_FAILED", "UPDATE_FAILED"}
# Only a delete can follow (ROLLBACK_*: the create never finished; DELETE_FAILED: half deleted).
DELETE_ONLY = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", DELETE_FAILED})
# A rollback that could not finish: continue it (after fixing the cause) or delete.
STUCK_ROLLBACK = frozenset({"UPDATE_ROLLBACK_FAILED", "IMPORT_ROLLBACK_FAILED"})
# The stack runs a known, complete version of its resources: what restore acts on.
USABLE = SUCCEEDED | {"UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}


def running(status: str) -> bool:
    """CloudFormation is working on the stack: 'status --watch' follows it; deploy, plan,
    destroy and restore refuse until it ends."""
    if status in ALL:
        return status in RUNNING
    return status.endswith("_IN_PROGRESS")  # a status newer than this table: its name tells


def settled(status: str) -> bool:
    """The end of a wait for an operation this run started. REVIEW_IN_PROGRESS is not an
    end: an executed CREATE change set leaves it until CloudFormation starts the create."""
    return not running(status) and status != REVIEW_IN_PROGRESS


def succeeded(status: str) -> bool:
    return status in SUCCEEDED


def healthy(status: str, *, root: bool = True) -> bool:
    """What 'status' exits 0 for: the root's last operation succeeded (a rollback is never a
    success, a running operation has not ended, a REVIEW_IN_PROGRESS stack holds nothing) and
    each nested stack runs a complete version (one an update left alone keeps the label of
    its own last operation, UPDATE_ROLLBACK_COMPLETE included)."""
    return succeeded(status) if root else status in USABLE


def creates(root: dict | None) -> bool:
    """Whether a deploy of this root creates the stack (nothing deployed yet)."""
    return root is None or root.get("StackStatus") in (REVIEW_IN_PROGRESS, DELETE_COMPLETE)


def _busy(stack: str, status: str) -> DeployError:
    return DeployError(f"stack {stack} is busy ({status}); wait for it to settle ('k3s-infra status --watch' "
                       f"follows it), then run this again")


def change_set_type(stack: str, root: dict | None) -> Literal["CREATE", "UPDATE"]:
    """The change set a plan or deploy makes for ``root`` (None: no stack), or DeployError
    when no change set can run on it now; checked before anything is uploaded."""
    if creates(root):
        return "CREATE"
    status = root["StackStatus"]
    if status in UPDATABLE:
        return "UPDATE"
    if status in RUNNING:
        raise _busy(stack, status)
    if status in DELETE_ONLY:
        raise DeployError(f"stack {stack} is {status} from an earlier failure; only a delete can follow: run "
                          f"'k3s-infra destroy' for this environment, then deploy again")
    if status in STUCK_ROLLBACK:
        raise DeployError(f"stack {stack} is {status}: its rollback could not finish; see the stack events, fix "
                          f"the cause, then continue it ('aws cloudformation continue-update-rollback "
                          f"--stack-name {stack}') or run 'k3s-infra destroy'")
    raise DeployError(f"stack {stack} is {status}: no change set can run on it")  # a status botocore adds later


def check_executable(stack: str, kind: str, root: dict | None) -> None:
    """Right before ExecuteChangeSet: the stack is still one a ``kind`` change set runs on. An
    operation started meanwhile (the console, another tool: the deploy lock only stops
    k3s-infra) refuses here rather than queue behind it or fail half-way."""
    if root is None:
        raise DeployError(f"stack {stack} no longer exists; run plan or deploy again")
    if change_set_type(stack, root) != kind:  # DeployError itself when no change set can run now
        raise DeployError(f"stack {stack} is {root['StackStatus']}: it changed since its {kind} change set was "
                          f"made; run plan or deploy again")


def cancellable(status: str | None) -> bool:
    """CancelUpdateStack takes only a stack in UPDATE_IN_PROGRESS
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CancelUpdateStack.html)."""
    return status == "UPDATE_IN_PROGRESS"


def check_destroyable(stack: str, status: str) -> None:
    """Destroy deletes a stack at rest in any status, and follows a delete already running
    (an earlier destroy interrupted); it never deletes under another running operation."""
    if status in RUNNING and status != "DELETE_IN_PROGRESS":
        raise _busy(stack, status)


def check_restorable(stack: str, status: str) -> None:
    """Restore changes the server groups behind CloudFormation's back: only on a stack that
    runs a complete version of them and that nothing else is changing."""
    if status in USABLE:
        return
    if status in RUNNING:
        raise _busy(stack, status)
    if status == REVIEW_IN_PROGRESS:
        raise DeployError(f"stack {stack} is {status}: it holds no resources yet; deploy it first")
    if status in DELETE_ONLY:
        raise DeployError(f"stack {stack} is {status}: no cluster to restore; only a delete can follow "
                          f"('k3s-infra destroy', then deploy)")
    raise DeployError(f"stack {stack} is {status}: repair it first (deploy again, or continue its rollback), "
                      f"then restore")


def discard_review_stack(status: str | None) -> bool:
    """After deleting a change set this run made with the stack (CREATE): delete the stack
    only while it is still REVIEW_IN_PROGRESS, i.e. holds no resources. In any other status
    someone executed a change set meanwhile and the stack holds (or is making) resources."""
    return status == REVIEW_IN_PROGRESS
