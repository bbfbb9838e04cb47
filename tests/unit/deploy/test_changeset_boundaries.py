"""Discarding a CREATE change set (deploy/changeset.py discard): the empty REVIEW_IN_PROGRESS
stack it made is deleted only when no other change set waits on it (a plan kept for
'deploy PLANFILE'). ListChangeSets lists a stack's change sets with their Status, which is
DELETE_PENDING, DELETE_IN_PROGRESS or DELETE_COMPLETE while one goes
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ChangeSetSummary.html);
and whether a change set still waits (ExecutionStatus AVAILABLE,
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html)."""

from __future__ import annotations

from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.deploy import changeset

STACK = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
OTHER_STACK = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-prod/9f8e7d6c-4e5f-6789-abcd-ef0123456789"
MINE = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/k3s-infra-1/0a1b2c3d"
KEPT = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/k3s-infra-plan/4d5e6f70"


def _cfn():
    return boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x",
                        endpoint_url="https://cloudformation.invalid")


def _summary(stack_id: str, change_set_id: str, name: str, status: str) -> dict:
    return {"StackId": stack_id, "StackName": stack_id.split("/")[1], "ChangeSetId": change_set_id,
            "ChangeSetName": name, "Status": status, "ExecutionStatus": "AVAILABLE"}


@pytest.mark.parametrize("others, deleted", [
    ([], True),
    ([_summary(STACK, KEPT, "k3s-infra-plan", "CREATE_COMPLETE")], False),   # a kept plan waits on the stack
    ([_summary(STACK, KEPT, "k3s-infra-plan", "DELETE_PENDING")], True),     # going too
    ([_summary(OTHER_STACK, KEPT, "k3s-infra-plan", "CREATE_COMPLETE")], True),  # another stack's
    ([_summary(STACK, MINE, "k3s-infra-1", "CREATE_COMPLETE")], True),  # the one just deleted, still listed
])
def test_the_review_stack_is_deleted_only_when_no_other_change_set_waits_on_it(others, deleted):
    cfn = _cfn()
    mine = changeset.ChangeSet("k3s-dev", MINE, "CREATE", created_review_stack=True, stack_arn=STACK,
                               name="k3s-infra-1")
    with Stubber(cfn) as stub:
        stub.add_response("delete_change_set", {}, {"ChangeSetName": MINE})
        stub.add_response("describe_stacks", {"Stacks": [{"StackId": STACK, "StackName": "k3s-dev",
                                                          "StackStatus": "REVIEW_IN_PROGRESS",
                                                          "CreationTime": "2026-12-04T05:00:00Z"}]},
                          {"StackName": STACK})
        stub.add_response("list_change_sets", {"Summaries": others}, {"StackName": STACK})
        if deleted:
            stub.add_response("delete_stack", {}, {"StackName": STACK})
        changeset.discard(SimpleNamespace(cloudformation=cfn), mine)
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("answer, waiting", [
    ({"ExecutionStatus": "AVAILABLE"}, True),
    ({"ExecutionStatus": "EXECUTE_IN_PROGRESS"}, False),
    (None, False),  # cannot be read either
])
def test_a_change_set_still_waits_only_while_it_is_available(answer, waiting):
    cfn = _cfn()
    with Stubber(cfn) as stub:
        if answer is None:
            stub.add_client_error("describe_change_set", "Throttling", "Rate exceeded", 400)
        else:
            stub.add_response("describe_change_set", {"ChangeSetId": MINE, "StackId": STACK, "StackName": "k3s-dev",
                                                      "Status": "CREATE_COMPLETE", **answer}, {"ChangeSetName": MINE})
        assert changeset.available(SimpleNamespace(cloudformation=cfn),
                                   changeset.ChangeSet("k3s-dev", MINE, "UPDATE")) is waiting
