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
