"""What each command does with the root stack found (or left) in each CloudFormation status,
and the exit code it returns: the tables test_stack_status_table.py walks, row by row.

Written from what each status means, not from the code:
- the statuses: botocore's service model (cloudformation 2010-05-15, shape StackStatus;
  the test checks that every table names exactly those);
- MEANING: the AWS CloudFormation User Guide, "Stack status codes",
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html#cfn-console-view-stack-data-resources-status-codes
  (paraphrased);
- what may follow a status: ROLLBACK_COMPLETE "only a delete operation can be performed"
  (same page); UPDATE_ROLLBACK_FAILED: delete, or ContinueUpdateRollback
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ContinueUpdateRollback.html);
  CREATE_FAILED / UPDATE_FAILED happen only with rollback disabled and an update resumes them
  (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/stack-failure-options.html);
  a stack "in UPDATE_COMPLETE_CLEANUP_IN_PROGRESS state ... cannot be updated" (the
  ValidationError CloudFormation answers for any *_IN_PROGRESS operation).

Rules every table keeps: a rollback is never a success (exit 0 only after an operation
completed as asked); nothing is changed under an operation CloudFormation is running; the
change-set cleanup deletes only an empty (REVIEW_IN_PROGRESS) stack it made itself.
Exit codes (docs/commands.md "Exit codes"): 0 success, 1 failure, 2 changes (plan --detailed-exitcode),
130 interrupted (Ctrl-C)."""

from __future__ import annotations

MEANING = {
    "CREATE_IN_PROGRESS": "ongoing creation",
    "CREATE_FAILED": "unsuccessful creation; with rollback disabled the stack stays so (resources kept)",
    "CREATE_COMPLETE": "successful creation",
    "ROLLBACK_IN_PROGRESS": "ongoing removal after a failed or cancelled creation",
    "ROLLBACK_FAILED": "unsuccessful removal after a failed creation: delete the stack",
    "ROLLBACK_COMPLETE": "removed after a failed creation; only a delete can follow",
    "DELETE_IN_PROGRESS": "ongoing removal",
    "DELETE_FAILED": "unsuccessful deletion: resources may still run; cannot be updated; delete again",
    "DELETE_COMPLETE": "deleted (kept 90 days in the history; by name no longer found)",
    "UPDATE_IN_PROGRESS": "ongoing update",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS": "updated and usable; old resources still being removed",
    "UPDATE_COMPLETE": "successful update",
    "UPDATE_FAILED": "unsuccessful update; with rollback disabled the stack stays so",
    "UPDATE_ROLLBACK_IN_PROGRESS": "ongoing return to the previous working state after a failed update",
    "UPDATE_ROLLBACK_FAILED": "the return to the previous state failed: continue the rollback or delete",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS": "back on the previous state; new resources being removed",
    "UPDATE_ROLLBACK_COMPLETE": "back on the previous working state after a failed update",
    "REVIEW_IN_PROGRESS": "a stack ID reserved by a CREATE change set: no template, no resources",
    "IMPORT_IN_PROGRESS": "ongoing import",
    "IMPORT_COMPLETE": "import completed for every resource that supports it",
    "IMPORT_ROLLBACK_IN_PROGRESS": "rolling back to the previous template configuration",
    "IMPORT_ROLLBACK_FAILED": "the import rollback failed for at least one resource",
    "IMPORT_ROLLBACK_COMPLETE": "back on the previous template configuration",
}

RUNNING = ("CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "DELETE_IN_PROGRESS", "UPDATE_IN_PROGRESS",
           "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS",
           "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "IMPORT_IN_PROGRESS", "IMPORT_ROLLBACK_IN_PROGRESS")


def _table(**groups: tuple[tuple[str, ...], str, int | None]) -> dict[str, tuple[str, int | None]]:
    """status -> (what the command does, exit code), from groups of statuses sharing both."""
    rows = {}
    for statuses, does, code in groups.values():
        for status in statuses:
            assert status not in rows, status
            rows[status] = (does, code)
    return rows


# deploy, by the status the root is found in before anything is uploaded.
# create/update: the change set it makes (then executed, and it ends as asked: exit 0);
# busy / delete-only / stuck-rollback: refused before any upload, exit 1, nothing changed.
DEPLOY_FOUND = _table(
    new=(("DELETE_COMPLETE", "REVIEW_IN_PROGRESS"), "create", 0),  # nothing deployed (an empty reserved stack)
    at_rest=(("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE", "UPDATE_ROLLBACK_COMPLETE",
              "IMPORT_ROLLBACK_COMPLETE"), "update", 0),
    paused=(("CREATE_FAILED", "UPDATE_FAILED"), "update", 0),  # an update resumes a paused failure
    running=(RUNNING, "refuse: busy", 1),
    delete_only=(("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"), "refuse: delete only", 1),
    stuck=(("UPDATE_ROLLBACK_FAILED", "IMPORT_ROLLBACK_FAILED"), "refuse: stuck rollback", 1),
)

# deploy, by the status its executed UPDATE change set leaves the root in (found UPDATE_COMPLETE).
# deployed: exit 0 (protection set, nodes awaited, outputs shown); failed: the first failure
# and the outcome are shown, exit 1; waits: not an end, the next status decides.
DEPLOY_LEFT = _table(
    done=(("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"), "deployed", 0),
    rolled_back=(("ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"), "failed", 1),
    failed=(("CREATE_FAILED", "UPDATE_FAILED", "DELETE_FAILED", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_FAILED",
             "IMPORT_ROLLBACK_FAILED"), "failed", 1),
    gone=(("DELETE_COMPLETE",), "failed", 1),  # deleted meanwhile: nothing was deployed
    running=((*RUNNING, "REVIEW_IN_PROGRESS"), "waits", None),  # REVIEW: the execute has not started yet
)

# plan --detailed-exitcode: the same change set as deploy, described and deleted again
# (2: there are changes); the same refusals. From nothing, the empty stack its CREATE
# change set made is deleted too; a REVIEW_IN_PROGRESS stack found (another run's) is not.
PLAN = _table(
    absent=(("DELETE_COMPLETE",), "create, delete the stack made", 2),
    review=(("REVIEW_IN_PROGRESS",), "create, keep the stack found", 2),
    update=(("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE", "UPDATE_ROLLBACK_COMPLETE",
             "IMPORT_ROLLBACK_COMPLETE", "CREATE_FAILED", "UPDATE_FAILED"), "update", 2),
    running=(RUNNING, "refuse: busy", 1),
    delete_only=(("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"), "refuse: delete only", 1),
    stuck=(("UPDATE_ROLLBACK_FAILED", "IMPORT_ROLLBACK_FAILED"), "refuse: stuck rollback", 1),
)

# destroy --yes, by the status the root is found in. delete: DeleteStack, then the
# node-owned parameters and this cluster's templates go; exit 0 once DELETE_COMPLETE.
# A delete already running (an earlier destroy interrupted) is followed the same way.
# Under any other running operation: refused before asking or changing anything, exit 1.
DESTROY_FOUND = _table(
    absent=(("DELETE_COMPLETE",), "absent", 0),  # only this cluster's templates are removed
    delete=(("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE", "ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE",
             "IMPORT_ROLLBACK_COMPLETE", "CREATE_FAILED", "UPDATE_FAILED", "DELETE_FAILED", "ROLLBACK_FAILED",
             "UPDATE_ROLLBACK_FAILED", "IMPORT_ROLLBACK_FAILED", "REVIEW_IN_PROGRESS", "DELETE_IN_PROGRESS"),
            "delete", 0),
    running=(tuple(s for s in RUNNING if s != "DELETE_IN_PROGRESS"), "refuse: busy", 1),
)

# destroy --yes, by the status its DeleteStack leaves the root in (found CREATE_COMPLETE).
# Only DELETE_COMPLETE is destroyed; DELETE_FAILED with nothing more to clean up is not
# retried; anything else is a failure to report.
DESTROY_LEFT = _table(
    done=(("DELETE_COMPLETE",), "destroyed", 0),
    failed=(tuple(s for s in MEANING if s not in RUNNING and s not in ("DELETE_COMPLETE", "REVIEW_IN_PROGRESS")),
            "failed", 1),
    running=((*RUNNING, "REVIEW_IN_PROGRESS"), "waits", None),
)

# status --watch: exit 0 only when the root's last operation succeeded. running: --watch
# follows it first (here it is still running when read again: exit 1); empty: a stack a
# change set reserved holds nothing; absent: not deployed.
STATUS = _table(
    ok=(("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"), "healthy", 0),
    bad=(("ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_COMPLETE", "CREATE_FAILED", "UPDATE_FAILED",
          "DELETE_FAILED", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_FAILED", "IMPORT_ROLLBACK_FAILED"),
         "failed or rolled back", 1),
    running=(RUNNING, "follows, not settled", 1),
    empty=(("REVIEW_IN_PROGRESS",), "nothing deployed", 1),
    absent=(("DELETE_COMPLETE",), "not deployed", 1),
)

# restore --yes: it changes the server groups behind CloudFormation, so only on a stack
# running a complete version of them with nothing else changing it.
RESTORE = _table(
    usable=(("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE", "UPDATE_ROLLBACK_COMPLETE",
             "IMPORT_ROLLBACK_COMPLETE"), "restore", 0),
    running=(RUNNING, "refuse: busy", 1),
    empty=(("REVIEW_IN_PROGRESS",), "refuse: nothing deployed", 1),
    delete_only=(("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"), "refuse: delete only", 1),
    broken=(("CREATE_FAILED", "UPDATE_FAILED", "UPDATE_ROLLBACK_FAILED", "IMPORT_ROLLBACK_FAILED"),
            "refuse: repair first", 1),
    absent=(("DELETE_COMPLETE",), "refuse: not deployed", 1),
)

# The change-set cleanup of a deploy that made the stack (CREATE from nothing), on Ctrl-C at
# the prompt (exit 130) or a failed change set (exit 1), by the status the stack is in when
# the cleanup reads it: the change set is deleted; the stack only while it holds nothing.
CLEANUP = _table(
    empty=(("REVIEW_IN_PROGRESS",), "delete the stack", None),
    gone=(("DELETE_COMPLETE",), "nothing left", None),
    holds=(tuple(s for s in MEANING if s not in ("REVIEW_IN_PROGRESS", "DELETE_COMPLETE")), "keep the stack", None),
)

TABLES = {"deploy": DEPLOY_FOUND, "deploy-left": DEPLOY_LEFT, "plan": PLAN, "destroy": DESTROY_FOUND,
          "destroy-left": DESTROY_LEFT, "status": STATUS, "restore": RESTORE, "cleanup": CLEANUP}
