"""Following stack events (deploy/events.py) against botocore's Stubber: which failure is the
cause, every page of DescribeStackEvents read, and what a wait reports. Reasons are worded
as CloudFormation words them for resources that failed only because another did
("Resource creation cancelled", "Resource update cancelled", "Embedded stack <arn> was not
successfully created: ...", "The following resource(s) failed to create: [...]")."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.deploy import events as ev
from k3s_infra.deploy.events import Watcher, first_failure
from k3s_infra.deploy.progress import Settled, StackEvent, Waiting

ROOT = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev/1111"
CHILD = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev-Servers-1/2222"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
STACK = "AWS::CloudFormation::Stack"


def failed(n: int, logical: str, reason: str | None, type_: str = "AWS::EC2::LaunchTemplate",
           at: int | None = None) -> dict:
    item = {"StackId": ROOT, "EventId": f"e{n}", "StackName": "k3s-dev", "LogicalResourceId": logical,
            "ResourceType": type_, "Timestamp": T0 + timedelta(seconds=n if at is None else at),
            "ResourceStatus": "CREATE_FAILED"}
    return {**item, "ResourceStatusReason": reason} if reason is not None else item


CAUSE = "Resource handler returned message: \"The image id '[ami-0]' does not exist\""
# (earlier events that are consequences or parents, the expected cause's logical ID). Same
# timestamps are common: CloudFormation writes cancellations in the second of the failure.
CASES = {
    "a sibling cancelled at the same time": ([failed(1, "Sibling", "Resource creation cancelled", at=2)], "Template"),
    "a sibling whose update was cancelled": ([failed(1, "Sibling", "Resource update cancelled", at=2)], "Template"),
    "a sibling failed without a reason": ([failed(1, "Sibling", None, at=2)], "Sibling"),
    "a nested stack that failed by itself, earlier": (
        [failed(1, "Servers", "Parameter validation failed: MaxSize", STACK)], "Template"),
}


@pytest.mark.parametrize("earlier, cause", CASES.values(), ids=CASES.keys())
def test_the_cause_is_a_resource_that_failed_by_itself(earlier, cause):
    assert first_failure([*earlier, failed(2, "Template", CAUSE)])["LogicalResourceId"] == cause


@pytest.mark.parametrize("consequence", [
    f"Embedded stack {CHILD} was not successfully created: The following resource(s) failed to create: [G].",
    "The following resource(s) failed to create: [Servers].",
])
def test_among_stacks_alone_the_one_that_failed_by_itself_is_the_cause(consequence):
    """Without the nested stack's own events, a stack resource's own reason is the best known."""
    found = first_failure([failed(1, "Parent", consequence, STACK),
                           failed(2, "Servers", "Template URL not accessible", STACK)])
    assert found["LogicalResourceId"] == "Servers"
    only = first_failure([failed(1, "Parent", consequence, STACK)])
    assert only["LogicalResourceId"] == "Parent"


@pytest.fixture
def cfn():
    client = boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x",
                          aws_secret_access_key="x", endpoint_url="https://cloudformation.invalid")
    with Stubber(client) as stub:
        client.stub = stub
        yield client
        stub.assert_no_pending_responses()


def event(n: int, status: str = "CREATE_IN_PROGRESS") -> dict:
    return {"StackId": ROOT, "EventId": f"e{n}", "StackName": "k3s-dev", "LogicalResourceId": f"R{n}",
            "ResourceType": "AWS::SSM::Parameter", "Timestamp": T0 + timedelta(seconds=n), "ResourceStatus": status}


def test_every_page_of_new_events_is_reported_oldest_first(cfn):
    cfn.stub.add_response("describe_stack_events", {"StackEvents": [event(4), event(3)], "NextToken": "p2"},
                          {"StackName": ROOT})
    cfn.stub.add_response("describe_stack_events", {"StackEvents": [event(2), event(1)]},
                          {"StackName": ROOT, "NextToken": "p2"})
    reported = []
    watcher = Watcher(cfn, ROOT, "k3s-dev", on_progress=reported.append, discovering=False)
    assert [e["EventId"] for e in watcher.poll()] == ["e1", "e2", "e3", "e4"]
    assert [m.event["EventId"] for m in reported if isinstance(m, StackEvent)] == ["e1", "e2", "e3", "e4"]


def test_a_page_stops_at_the_first_event_already_seen(cfn):
    cfn.stub.add_response("describe_stack_events", {"StackEvents": [event(4), event(3)], "NextToken": "p2"},
                          {"StackName": ROOT})  # no second page asked for: e3 was seen
    watcher = Watcher(cfn, ROOT, "k3s-dev", seen={"e3"}, discovering=False)
    assert [e["EventId"] for e in watcher.poll()] == ["e4"]


def test_events_that_cannot_be_read_now_are_read_next_time(cfn):
    cfn.stub.add_client_error("describe_stack_events", "Throttling", "Rate exceeded", 400)
    watcher = Watcher(cfn, ROOT, "k3s-dev", discovering=False)
    assert watcher.poll() == []


def _status(cfn, status: str) -> None:
    cfn.stub.add_response("describe_stacks", {"Stacks": [{"StackName": "k3s-dev", "StackId": ROOT,
                                                          "CreationTime": T0, "StackStatus": status}]},
                          {"StackName": ROOT})


def test_a_wait_reports_each_poll_then_the_end_and_looks_sooner_after_news(cfn, monkeypatch):
    pauses = []
    monkeypatch.setattr(ev.time, "sleep", pauses.append)
    for events, status in [([], "CREATE_IN_PROGRESS"), ([event(1)], "CREATE_IN_PROGRESS"),
                           ([], "CREATE_IN_PROGRESS"), ([], "CREATE_COMPLETE"), ([], None)]:
        cfn.stub.add_response("describe_stack_events", {"StackEvents": events}, {"StackName": ROOT})
        if status:
            _status(cfn, status)
    reported = []
    watcher = Watcher(cfn, ROOT, "k3s-dev", on_progress=reported.append, discovering=False)
    assert watcher.wait(poll=2.0, max_poll=15.0) == "CREATE_COMPLETE"
    kinds = [type(m) for m in reported]
    assert kinds == [Waiting, StackEvent, Waiting, Waiting, Settled]
    assert reported[-1] == Settled("k3s-dev", "CREATE_COMPLETE")
    # no news: the pause grows; news: the next look comes after the shortest pause again
    assert pauses[0] > 2.0 and pauses[1] == 2.0 and pauses[2] > 2.0 and max(pauses) <= 15.0


class _Clock:
    def __init__(self):
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_stack_still_in_progress_after_3_hours_is_given_up(cfn, monkeypatch):
    """docs/operations.md "Deploying" (long operations): given up after 3 hours, exit 1; a look at exactly
    3 hours still waits (looks at 0, 3 h and 6 h)."""
    clock = _Clock()
    monkeypatch.setattr(ev, "time", clock)
    for _ in range(3):
        cfn.stub.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": ROOT})
        _status(cfn, "UPDATE_IN_PROGRESS")
    reported = []
    watcher = Watcher(cfn, ROOT, "k3s-dev", on_progress=reported.append, discovering=False, heartbeat=0)
    with pytest.raises(TimeoutError, match="k3s-dev still UPDATE_IN_PROGRESS after 10800s"):
        watcher.wait(poll=3 * 3600, max_poll=3 * 3600)
    assert reported[-1] == Settled("k3s-dev", "UPDATE_IN_PROGRESS")


class _Events:
    """DescribeStackEvents of each stack from a table (one page), as the paginator gives them."""

    def __init__(self, table: dict[str, list[dict]]):
        self.table = table

    def get_paginator(self, name: str):
        assert name == "describe_stack_events"
        return self

    def paginate(self, StackName: str):
        return [{"StackEvents": self.table.get(StackName, [])}]


def test_a_failure_is_followed_into_nested_stacks_ten_levels_deep_at_most():
    """docs/commands.md "Commands" (deploy): a chain of "Embedded stack <arn> was not successfully
    created" is followed ten levels deep; the cause eleven levels down is not reached, the
    deepest stack followed names it."""
    arn = [f"arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev-L{n}/{n}" for n in range(12)]

    def embedded(n: int) -> dict:  # stack n says stack n+1 failed; deeper stacks failed earlier
        return {**failed(100 - n, f"L{n + 1}", f"Embedded stack {arn[n + 1]} was not successfully created: "
                         f"The following resource(s) failed to create: [L{n + 2}].", STACK), "StackId": arn[n]}

    table = {arn[n]: [embedded(n)] for n in range(11)}
    table[arn[11]] = [{**failed(1, "Template", CAUSE), "StackId": arn[11]}]
    watcher = Watcher(_Events(table), arn[0], "k3s-dev", discovering=False)
    watcher.poll()
    cause = watcher.trace_failure()
    assert cause["LogicalResourceId"] == "L11" and len(watcher.stacks) == 11
