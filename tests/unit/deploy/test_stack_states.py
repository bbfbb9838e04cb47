"""Stack statuses CloudFormation may add after this table was written (deploy/stack_states.py):
its API reference names every status of an operation under way *_IN_PROGRESS
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Stack.html, StackStatus),
so an unknown one is judged by its name. The known ones, command by command, are
test_stack_status_table.py's."""

from __future__ import annotations

import pytest

from k3s_infra.deploy import stack_states


@pytest.mark.parametrize("status, running", [("EXPORT_IN_PROGRESS", True), ("EXPORT_COMPLETE", False),
                                             ("UPDATE_IN_PROGRESS", True), ("UPDATE_COMPLETE", False)])
def test_an_operation_under_way_is_told_by_its_name_when_the_table_does_not_know_it(status, running):
    assert stack_states.running(status) is running
    assert stack_states.settled(status) is not running


# Right before ExecuteChangeSet (check_executable): a CREATE change set runs on the stack it
# reserved (REVIEW_IN_PROGRESS); an UPDATE one on a stack at rest that a change set can update
# (User Guide, "Stack status codes"; a stack with an operation under way "cannot be updated").
EXECUTABLE = [("CREATE", "REVIEW_IN_PROGRESS", None), ("UPDATE", "UPDATE_COMPLETE", None),
              ("UPDATE", "UPDATE_ROLLBACK_COMPLETE", None), ("UPDATE", "UPDATE_IN_PROGRESS", "is busy"),
              ("UPDATE", "DELETE_IN_PROGRESS", "is busy"), ("CREATE", "CREATE_COMPLETE", "it changed since"),
              ("UPDATE", "ROLLBACK_COMPLETE", "only a delete can follow"), ("UPDATE", None, "no longer exists")]


@pytest.mark.parametrize("kind, status, refused", EXECUTABLE)
def test_a_change_set_runs_only_on_a_stack_still_where_it_was_made_for(kind, status, refused):
    root = None if status is None else {"StackName": "k3s-dev", "StackStatus": status}
    if refused is None:
        stack_states.check_executable("k3s-dev", kind, root)
    else:
        with pytest.raises(stack_states.DeployError, match=refused):
            stack_states.check_executable("k3s-dev", kind, root)


@pytest.mark.parametrize("status, can", [("UPDATE_IN_PROGRESS", True), ("UPDATE_ROLLBACK_IN_PROGRESS", False),
                                         ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", False), (None, False)])
def test_only_an_update_in_progress_can_be_cancelled(status, can):
    """CancelUpdateStack: "You can cancel only stacks that are in the UPDATE_IN_PROGRESS state"
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CancelUpdateStack.html)."""
    assert stack_states.cancellable(status) is can
