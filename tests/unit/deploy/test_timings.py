"""The time each nested stack took (k3s_infra/deploy/timings.py), from events shaped like
DescribeStackEvents answers of real CloudFormation (moto writes stack-level events only):
the root's own events bound the deploy, each nested stack's resource events in the root give
its wave; the nested stacks' inner events are not waves."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.deploy.events import Watcher
from k3s_infra.deploy.timings import measure

ROOT = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev/1111"
INIT = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev-ServerInit-ABC/2222"
T0 = datetime(2026, 1, 2, 3, 0, 0, tzinfo=timezone.utc)
STACK = "AWS::CloudFormation::Stack"


def event(n: int, seconds: float, stack_id: str, stack_name: str, logical: str, status: str,
          type_: str = STACK, reason: str | None = None) -> dict:
    e = {"StackId": stack_id, "EventId": f"e{n}", "StackName": stack_name, "LogicalResourceId": logical,
         "PhysicalResourceId": "", "ResourceType": type_, "Timestamp": T0 + timedelta(seconds=seconds),
         "ResourceStatus": status}
    if reason:
        e["ResourceStatusReason"] = reason
    return e


CREATE = [  # a first create: Security and ClusterData at once, ServerInit after them
    event(1, 0, ROOT, "k3s-dev", "k3s-dev", "CREATE_IN_PROGRESS", reason="User Initiated"),
    event(2, 2, ROOT, "k3s-dev", "Security", "CREATE_IN_PROGRESS"),
    event(3, 3, ROOT, "k3s-dev", "Security", "CREATE_IN_PROGRESS", reason="Resource creation Initiated"),
    event(4, 2, ROOT, "k3s-dev", "ClusterData", "CREATE_IN_PROGRESS"),
    event(5, 35, ROOT, "k3s-dev", "Security", "CREATE_COMPLETE"),
    event(6, 150, ROOT, "k3s-dev", "ClusterData", "CREATE_COMPLETE"),
    event(7, 151, ROOT, "k3s-dev", "ServerInit", "CREATE_IN_PROGRESS"),
    event(8, 160, INIT, "k3s-dev-ServerInit-ABC", "ServerGroup", "CREATE_IN_PROGRESS",
          type_="AWS::AutoScaling::AutoScalingGroup"),
    event(9, 420, INIT, "k3s-dev-ServerInit-ABC", "k3s-dev-ServerInit-ABC", "CREATE_COMPLETE"),
    event(10, 425, ROOT, "k3s-dev", "ServerInit", "CREATE_COMPLETE"),
    event(11, 430, ROOT, "k3s-dev", "k3s-dev", "CREATE_COMPLETE"),
]


def test_each_nested_stack_is_one_wave_from_its_first_in_progress_to_its_end():
    measured = measure(list(reversed(CREATE)), ROOT)  # DescribeStackEvents order: newest first
    assert [(s.stack, measured.offset(s.started), s.seconds, s.status) for s in measured.stacks] == [
        ("ClusterData", 2, 148, "CREATE_COMPLETE"), ("Security", 2, 33, "CREATE_COMPLETE"),
        ("ServerInit", 151, 274, "CREATE_COMPLETE")]
    assert measured.seconds == 430 and measured.started == T0


def test_events_of_the_nested_stacks_themselves_are_no_waves():
    measured = measure(CREATE, ROOT)
    assert "ServerGroup" not in {s.stack for s in measured.stacks}
    assert "k3s-dev-ServerInit-ABC" not in {s.stack for s in measured.stacks}


def test_a_failed_update_ends_its_wave_at_the_failure_and_the_rest_stays_open():
    update = [
        event(20, 1000, ROOT, "k3s-dev", "k3s-dev", "UPDATE_IN_PROGRESS"),
        event(21, 1001, ROOT, "k3s-dev", "AgentPoolGeneral", "UPDATE_IN_PROGRESS"),
        event(22, 1003, ROOT, "k3s-dev", "Servers", "UPDATE_IN_PROGRESS"),
        event(23, 1200, ROOT, "k3s-dev", "AgentPoolGeneral", "UPDATE_FAILED", reason="Embedded stack ... failed"),
        event(24, 1201, ROOT, "k3s-dev", "k3s-dev", "UPDATE_ROLLBACK_IN_PROGRESS"),
        event(25, 1400, ROOT, "k3s-dev", "k3s-dev", "UPDATE_ROLLBACK_COMPLETE"),
    ]
    measured = measure(update, ROOT)
    waves = {s.stack: s for s in measured.stacks}
    assert waves["AgentPoolGeneral"].seconds == 199 and waves["AgentPoolGeneral"].status == "UPDATE_FAILED"
    assert waves["Servers"].ended is None and waves["Servers"].seconds is None
    assert measured.seconds == 400  # the root's start to its last terminal status


def test_no_events_measure_nothing():
    measured = measure([], ROOT)
    assert measured.stacks == () and measured.seconds is None and measured.offset(T0) is None


@pytest.fixture
def cfn():
    client = boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x",
                          aws_secret_access_key="x", endpoint_url="https://cloudformation.invalid")
    with Stubber(client) as stub:
        client.stub = stub
        yield client
        stub.assert_no_pending_responses()


def test_the_watcher_collects_what_measure_reads(cfn):
    """The events the Watcher streams (deploy/events.py), as the deploy passes them on."""
    cfn.stub.add_response("describe_stack_events", {"StackEvents": list(reversed(CREATE[:6]))}, {"StackName": ROOT})
    cfn.stub.add_response("describe_stack_events", {"StackEvents": list(reversed(CREATE))}, {"StackName": ROOT})
    watcher = Watcher(cfn, ROOT, "k3s-dev", discovering=False)
    watcher.poll()
    watcher.poll()
    assert len(watcher.events) == len(CREATE)
    measured = measure(watcher.events, ROOT)
    assert [s.stack for s in measured.stacks] == ["ClusterData", "Security", "ServerInit"]
    assert measured.seconds == 430


def test_waves_are_ordered_by_start_then_name_whatever_order_the_events_came_in():
    assert [s.stack for s in measure(CREATE, ROOT).stacks] == ["ClusterData", "Security", "ServerInit"]


def test_an_update_wave_ends_at_its_update_complete_and_a_rollback_after_it_does_not_move_the_end():
    """During a rollback CloudFormation updates the nested stack resource again
    (UPDATE_IN_PROGRESS, then UPDATE_COMPLETE): the wave is the forward update."""
    update = [
        event(30, 0, ROOT, "k3s-dev", "k3s-dev", "UPDATE_IN_PROGRESS"),
        event(31, 1, ROOT, "k3s-dev", "Servers", "UPDATE_IN_PROGRESS"),
        event(32, 90, ROOT, "k3s-dev", "Servers", "UPDATE_COMPLETE"),
        event(33, 91, ROOT, "k3s-dev", "AgentPoolGeneral", "UPDATE_IN_PROGRESS"),
        event(34, 200, ROOT, "k3s-dev", "AgentPoolGeneral", "UPDATE_FAILED"),
        event(35, 201, ROOT, "k3s-dev", "k3s-dev", "UPDATE_ROLLBACK_IN_PROGRESS"),
        event(36, 202, ROOT, "k3s-dev", "Servers", "UPDATE_IN_PROGRESS"),
        event(37, 300, ROOT, "k3s-dev", "Servers", "UPDATE_COMPLETE"),
        event(38, 310, ROOT, "k3s-dev", "k3s-dev", "UPDATE_ROLLBACK_COMPLETE"),
    ]
    waves = {s.stack: s for s in measure(update, ROOT).stacks}
    assert (waves["Servers"].seconds, waves["Servers"].status) == (89, "UPDATE_COMPLETE")
    assert waves["AgentPoolGeneral"].seconds == 109


def test_a_create_wave_ends_at_its_failure():
    create = [event(40, 0, ROOT, "k3s-dev", "k3s-dev", "CREATE_IN_PROGRESS"),
              event(41, 1, ROOT, "k3s-dev", "ServerInit", "CREATE_IN_PROGRESS"),
              event(42, 600, ROOT, "k3s-dev", "ServerInit", "CREATE_FAILED")]
    (wave,) = measure(create, ROOT).stacks
    assert (wave.seconds, wave.status) == (599, "CREATE_FAILED")


def test_a_deploy_still_running_has_no_total_and_one_ending_in_its_first_second_took_zero():
    running = measure(CREATE[:4], ROOT)
    assert running.started == T0 and running.ended is None and running.seconds is None
    instant = measure([event(50, 0, ROOT, "k3s-dev", "k3s-dev", "UPDATE_IN_PROGRESS"),
                       event(51, 0, ROOT, "k3s-dev", "k3s-dev", "UPDATE_COMPLETE")], ROOT)
    assert instant.seconds == 0


DELETE = [  # destroy: the agents' stack first, then the servers' (CloudFormation deletes in reverse order)
    event(21, 0, ROOT, "k3s-dev", "k3s-dev", "DELETE_IN_PROGRESS", reason="User Initiated"),
    event(22, 1, ROOT, "k3s-dev", "AgentPoolGeneral", "DELETE_IN_PROGRESS"),
    event(23, 95, ROOT, "k3s-dev", "AgentPoolGeneral", "DELETE_COMPLETE"),
    event(24, 96, ROOT, "k3s-dev", "Servers", "DELETE_IN_PROGRESS"),
    event(25, 300, ROOT, "k3s-dev", "Servers", "DELETE_FAILED", reason="Embedded stack was not successfully deleted"),
    event(26, 301, ROOT, "k3s-dev", "k3s-dev", "DELETE_FAILED"),
]


def test_a_destroy_has_waves_too_each_until_its_delete_ended():
    """destroy --output json reports them as deploy does (the root's own DELETE_* events bound it)."""
    measured = measure(list(reversed(DELETE)), ROOT)
    assert [(s.stack, measured.offset(s.started), s.seconds, s.status) for s in measured.stacks] == [
        ("AgentPoolGeneral", 1, 94, "DELETE_COMPLETE"), ("Servers", 96, 204, "DELETE_FAILED")]
    assert measured.seconds == 301
