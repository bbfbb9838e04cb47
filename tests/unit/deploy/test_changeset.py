"""Change sets of the root stack (deploy/changeset.py) against botocore's Stubber, with
DescribeChangeSet answers shaped as the API reference shows them
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html:
Status CREATE_PENDING | CREATE_IN_PROGRESS | CREATE_COMPLETE | DELETE_PENDING |
DELETE_IN_PROGRESS | DELETE_COMPLETE | DELETE_FAILED | FAILED; Changes paged by NextToken;
a nested stack's change names its own change set). The table the CLI prints from them is
test_events.py's."""

from __future__ import annotations

from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import ANY, Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy import DeployError, changeset

ROOT = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev/1111"
CS = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/k3s-infra-1/aaa"
NESTED = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/nested/bbb"
DEV = load_environment("dev")
PKG = SimpleNamespace(rendering=SimpleNamespace(env=DEV), template_args=lambda kind="UPDATE": {"TemplateBody": "{}"})
CURRENT = {"StackName": "k3s-dev", "StackId": ROOT, "CreationTime": "2026-01-02T03:04:05Z",
           "StackStatus": "UPDATE_COMPLETE"}


@pytest.fixture
def cfn():
    client = boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x",
                          aws_secret_access_key="x", endpoint_url="https://cloudformation.invalid")
    with Stubber(client) as stub:
        client.stub = stub
        yield client
        stub.assert_no_pending_responses()


def _created(cfn, *described: dict) -> None:
    cfn.stub.add_response("create_change_set", {"Id": CS, "StackId": ROOT},
                          {"StackName": "k3s-dev", "ChangeSetName": ANY, "ChangeSetType": "UPDATE",
                           "Capabilities": ANY, "IncludeNestedStacks": True, "Tags": ANY, "Description": ANY,
                           "TemplateBody": "{}", "Parameters": []})
    for answer in described:
        cfn.stub.add_response("describe_change_set", {"ChangeSetId": CS, **answer}, {"ChangeSetName": CS})


def _change(logical: str, nested: str | None = None) -> dict:
    rc = {"Action": "Modify", "LogicalResourceId": logical, "ResourceType": "AWS::EC2::LaunchTemplate"}
    if nested:
        rc.update(ResourceType="AWS::CloudFormation::Stack", ChangeSetId=nested)
    return {"Type": "Resource", "ResourceChange": rc}


@pytest.mark.parametrize("reason", [
    # CreateChangeSet of an unchanged template; UpdateStack's wording of the same
    "The submitted information didn't contain changes. Submit different information to create a change set.",
    "No updates are to be performed.",
])
def test_a_change_set_with_nothing_to_change_is_empty_either_way_cloudformation_words_it(cfn, reason):
    _created(cfn, {"Status": "FAILED", "StatusReason": reason})
    assert changeset.create(SimpleNamespace(cloudformation=cfn), PKG, current=CURRENT, poll=0).empty


def test_any_other_failure_is_an_error_and_the_change_set_is_deleted(cfn):
    _created(cfn, {"Status": "FAILED", "StatusReason": "Template format error: Unresolved resource dependencies"})
    cfn.stub.add_response("delete_change_set", {}, {"ChangeSetName": CS})
    with pytest.raises(DeployError, match="Unresolved resource dependencies"):
        changeset.create(SimpleNamespace(cloudformation=cfn), PKG, current=CURRENT, poll=0)


def test_the_build_is_polled_with_a_pause_between_looks_that_never_shrinks(cfn, monkeypatch):
    pauses = []
    monkeypatch.setattr(changeset.time, "sleep", pauses.append)
    _created(cfn, {"Status": "CREATE_PENDING"}, {"Status": "CREATE_IN_PROGRESS"}, {"Status": "CREATE_IN_PROGRESS"},
             {"Status": "CREATE_COMPLETE", "Changes": [_change("ServerLaunchTemplate")]})
    made = changeset.create(SimpleNamespace(cloudformation=cfn), PKG, current=CURRENT, poll=2.0)
    assert [c.logical_id for c in made.changes] == ["ServerLaunchTemplate"]
    assert len(pauses) == 3 and pauses[0] == 2.0 and pauses == sorted(pauses)


def test_a_change_set_deleted_while_it_is_built_ends_the_wait_at_once(cfn, monkeypatch):
    monkeypatch.setattr(changeset.time, "sleep", lambda s: pytest.fail("waited for a deleted change set"))
    _created(cfn, {"Status": "DELETE_COMPLETE"})
    assert changeset.create(SimpleNamespace(cloudformation=cfn), PKG, current=CURRENT, poll=2.0).changes == []


def test_every_page_of_changes_is_listed(cfn):
    _created(cfn, {"Status": "CREATE_COMPLETE", "Changes": [_change("A")], "NextToken": "page-2"})
    cfn.stub.add_response("describe_change_set", {"ChangeSetId": CS, "Status": "CREATE_COMPLETE",
                                                  "Changes": [_change("B")], "NextToken": "page-3"},
                          {"ChangeSetName": CS, "NextToken": "page-2"})
    cfn.stub.add_response("describe_change_set", {"ChangeSetId": CS, "Status": "CREATE_COMPLETE",
                                                  "Changes": [_change("C")]},
                          {"ChangeSetName": CS, "NextToken": "page-3"})
    made = changeset.create(SimpleNamespace(cloudformation=cfn), PKG, current=CURRENT, poll=0)
    assert [c.logical_id for c in made.changes] == ["A", "B", "C"]


def test_nested_change_sets_are_followed_five_levels_deep_and_a_cycle_ends(cfn):
    """docs/commands.md "Commands" (plan): nested change sets are followed five levels deep. A change
    set naming itself as its nested one (a malformed answer) ends there too."""
    _created(cfn, {"Status": "CREATE_COMPLETE", "Changes": [_change("Level1", NESTED)]})
    for level in range(2, 7):
        cfn.stub.add_response("describe_change_set", {"ChangeSetId": NESTED, "Status": "CREATE_COMPLETE",
                                                      "Changes": [_change(f"Level{level}", NESTED)]},
                              {"ChangeSetName": NESTED})
    made = changeset.create(SimpleNamespace(cloudformation=cfn), PKG, current=CURRENT, poll=0)
    assert [(c.stack, c.logical_id) for c in made.changes] == [
        ("Root", "Level1"), ("Level1", "Level2"), ("Level2", "Level3"), ("Level3", "Level4"), ("Level4", "Level5"),
        ("Level5", "Level6")]


@pytest.mark.parametrize("status, found", [("UPDATE_COMPLETE", True), ("REVIEW_IN_PROGRESS", True),
                                           ("DELETE_COMPLETE", False)])
def test_a_deleted_stack_counts_as_absent(cfn, status, found):
    """DescribeStacks by StackId still answers for a deleted stack (DELETE_COMPLETE)."""
    cfn.stub.add_response("describe_stacks", {"Stacks": [{**CURRENT, "StackStatus": status}]}, {"StackName": ROOT})
    assert (changeset.stack_state(cfn, ROOT) is not None) == found


def test_a_stack_that_does_not_exist_is_absent_and_other_errors_are_raised(cfn):
    cfn.stub.add_client_error("describe_stacks", "ValidationError", "Stack with id k3s-dev does not exist", 400)
    assert changeset.stack_state(cfn, "k3s-dev") is None
    cfn.stub.add_client_error("describe_stacks", "AccessDenied", "not authorized to perform DescribeStacks", 403)
    with pytest.raises(Exception, match="AccessDenied"):
        changeset.stack_state(cfn, "k3s-dev")


@pytest.mark.parametrize("looks_at, raised", [((0, 1800), False), ((0, 1800, 1801), True)])
def test_a_change_set_not_built_within_30_minutes_is_given_up_and_deleted(cfn, monkeypatch, looks_at, raised):
    """docs/commands.md "Commands" (plan, deploy): one CloudFormation has not built after 30 minutes is
    an error; at exactly 30 minutes it still waits. ``looks_at``: the clock at the start, then
    after each look that found it still building."""
    clock = iter(looks_at)
    monkeypatch.setattr(changeset.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(changeset.time, "sleep", lambda s: None)
    pending = [{"Status": "CREATE_IN_PROGRESS"}] * (len(looks_at) - 1)
    if raised:
        _created(cfn, *pending)
        cfn.stub.add_response("delete_change_set", {}, {"ChangeSetName": CS})
        with pytest.raises(DeployError, match="still CREATE_IN_PROGRESS after 1800s"):
            changeset.create(SimpleNamespace(cloudformation=cfn), PKG, current=CURRENT, poll=2.0)
    else:
        _created(cfn, *pending, {"Status": "CREATE_COMPLETE"})
        assert changeset.create(SimpleNamespace(cloudformation=cfn), PKG, current=CURRENT, poll=2.0).changes == []
