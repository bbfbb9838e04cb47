"""After a first create (deploy/roll_order.py): the stack is updated to the ordered root that
``render`` writes and every update sends, whose only difference from the create root is
``DependsOn`` (stacks/root.py roll_order). CloudFormation orders an update by the template it
is given (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html:
"override default parallelism when creating, updating, or deleting resources"), so the
ordered root must be the one sent. The emulator run that executes it: tests/e2e/test_lifecycle.py."""

from __future__ import annotations

import json
from types import SimpleNamespace

import boto3
import yaml
from botocore.stub import ANY, Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy import roll_order
from k3s_infra.deploy.package import Package
from k3s_infra.deploy.progress import RollOrderRecorded, StackEvent
from k3s_infra.render import render

STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
CHANGE_SET = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/k3s-infra-1/0a1b2c3d"


def _described(status: str) -> dict:
    """DescribeStacks as CloudFormation answers it (the fields the deploy reads)."""
    return {"Stacks": [{"StackId": STACK_ID, "StackName": "k3s-dev", "StackStatus": status,
                        "CreationTime": "2026-12-04T05:00:00Z"}]}


def test_the_ordered_root_is_sent_and_nothing_to_change_is_no_error():
    env = load_environment("dev")
    rendering = render(env)
    pkg = Package(rendering, [], [], roots={"CREATE": {"TemplateBody": rendering.create_root.body},
                                           "UPDATE": {"TemplateBody": rendering.root.body}})
    cfn = boto3.client("cloudformation", region_name=env.region, aws_access_key_id="x", aws_secret_access_key="x")
    sent = {}
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", _described("CREATE_COMPLETE"), {"StackName": STACK_ID})
        stub.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": STACK_ID}, {
            "StackName": env.stack_name, "ChangeSetName": ANY, "ChangeSetType": "UPDATE", "Capabilities": ANY,
            "IncludeNestedStacks": True, "Parameters": [], "Tags": ANY, "Description": ANY, "TemplateBody": ANY})
        stub.add_response("describe_change_set", {
            "ChangeSetId": CHANGE_SET, "Status": "FAILED", "ExecutionStatus": "UNAVAILABLE",
            "StatusReason": "The submitted information didn't contain changes. Submit different information to "
                            "create a change set."}, {"ChangeSetName": CHANGE_SET})
        stub.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
        original = cfn.create_change_set
        cfn.create_change_set = lambda **kwargs: sent.update(kwargs) or original(**kwargs)
        seen = []
        status = roll_order.record(SimpleNamespace(cloudformation=cfn, env=env), pkg, [], STACK_ID, seen.append,
                                   poll=0)
        stub.assert_no_pending_responses()
    assert status is None and seen == [RollOrderRecorded(changed=False)]
    root = yaml.safe_load(sent["TemplateBody"])
    assert root["Resources"]["Servers"]["DependsOn"] == ["ServerInit"]
    pools = [k for k in root["Resources"] if k.startswith("AgentPool")]
    assert pools and all(root["Resources"][k]["DependsOn"] == ["Servers"] for k in pools)
    assert json.dumps(yaml.safe_load(rendering.create_root.body)) != json.dumps(root)


def test_a_failed_recording_is_a_warning_not_a_failed_deploy():
    """The cluster is up when the recording runs: its failure is reported, never fatal."""
    env = load_environment("dev")
    rendering = render(env)
    pkg = Package(rendering, [], [], roots={"CREATE": {"TemplateBody": rendering.create_root.body},
                                           "UPDATE": {"TemplateBody": rendering.root.body}})
    cfn = boto3.client("cloudformation", region_name=env.region, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", _described("CREATE_COMPLETE"), {"StackName": STACK_ID})
        stub.add_client_error("create_change_set", "Throttling", "Rate exceeded", 400)
        seen = []
        status = roll_order.record(SimpleNamespace(cloudformation=cfn, env=env), pkg, [], STACK_ID, seen.append,
                                   poll=0)
        stub.assert_no_pending_responses()
    assert status is None
    (message,) = seen
    assert message.changed is False and "Rate exceeded" in message.problem


def test_a_change_set_that_would_change_a_resource_is_not_executed():
    """The recording changes no resource: a change set that would (a parameter resolved anew,
    anything but the nested stacks CloudFormation always lists) is discarded with a warning."""
    env = load_environment("dev")
    rendering = render(env)
    pkg = Package(rendering, [], [], roots={"CREATE": {"TemplateBody": rendering.create_root.body},
                                           "UPDATE": {"TemplateBody": rendering.root.body}})
    cfn = boto3.client("cloudformation", region_name=env.region, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", _described("CREATE_COMPLETE"), {"StackName": STACK_ID})
        stub.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": STACK_ID}, {
            "StackName": env.stack_name, "ChangeSetName": ANY, "ChangeSetType": "UPDATE", "Capabilities": ANY,
            "IncludeNestedStacks": True, "Parameters": [], "Tags": ANY, "Description": ANY, "TemplateBody": ANY})
        stub.add_response("describe_change_set", {
            "ChangeSetId": CHANGE_SET, "Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE", "Changes": [
                {"Type": "Resource", "ResourceChange": {"Action": "Modify", "LogicalResourceId": "Servers",
                                                        "ResourceType": "AWS::CloudFormation::Stack"}},
                {"Type": "Resource", "ResourceChange": {"Action": "Remove", "LogicalResourceId": "Draining",
                                                        "ResourceType": "AWS::CloudFormation::Stack"}}]},
            {"ChangeSetName": CHANGE_SET})
        stub.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
        seen = []
        status = roll_order.record(SimpleNamespace(cloudformation=cfn, env=env), pkg, [], STACK_ID, seen.append,
                                   poll=0)
        stub.assert_no_pending_responses()  # never executed
    assert status is None
    (message,) = seen
    assert message.changed is False and "Remove Draining would change" in message.problem


def _event(n: int, status: str, logical: str = "k3s-dev") -> dict:
    """A root stack event as DescribeStackEvents returns it."""
    return {"StackId": STACK_ID, "EventId": f"e{n}", "StackName": "k3s-dev", "LogicalResourceId": logical,
            "ResourceType": "AWS::CloudFormation::Stack", "ResourceStatus": status,
            "Timestamp": f"2026-12-04T05:{n:02d}:00Z"}


def _ordered_update(stub, env) -> None:
    """The stack, then a change set that modifies only the nested stacks (as CloudFormation
    lists them even when only DependsOn changed), then the watch's priming reads."""
    stub.add_response("describe_stacks", _described("CREATE_COMPLETE"), {"StackName": STACK_ID})
    stub.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": STACK_ID}, {
        "StackName": env.stack_name, "ChangeSetName": ANY, "ChangeSetType": "UPDATE", "Capabilities": ANY,
        "IncludeNestedStacks": True, "Parameters": [], "Tags": ANY, "Description": ANY, "TemplateBody": ANY})
    stub.add_response("describe_change_set", {
        "ChangeSetId": CHANGE_SET, "Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE", "Changes": [
            {"Type": "Resource", "ResourceChange": {"Action": "Modify", "LogicalResourceId": "Servers",
                                                    "ResourceType": "AWS::CloudFormation::Stack"}}]},
        {"ChangeSetName": CHANGE_SET})
    # the create's events: reported while the create ran, history now
    stub.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": STACK_ID})
    stub.add_response("describe_stack_events", {"StackEvents": [_event(2, "CREATE_COMPLETE"),
                                                                _event(1, "CREATE_IN_PROGRESS")]},
                      {"StackName": STACK_ID})


def test_an_executed_recording_reports_its_own_events_and_its_final_status():
    """The update's events are reported, not the create's again (the create's watch reported
    them); the recording returns the status the update ended in."""
    env = load_environment("dev")
    rendering = render(env)
    pkg = Package(rendering, [], [], roots={"CREATE": {"TemplateBody": rendering.create_root.body},
                                           "UPDATE": {"TemplateBody": rendering.root.body}})
    cfn = boto3.client("cloudformation", region_name=env.region, aws_access_key_id="x", aws_secret_access_key="x")
    update = [_event(4, "UPDATE_COMPLETE"), _event(3, "UPDATE_IN_PROGRESS")]
    with Stubber(cfn) as stub:
        _ordered_update(stub, env)
        stub.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET})
        stub.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": STACK_ID})
        stub.add_response("describe_stack_events", {"StackEvents": [*update, _event(2, "CREATE_COMPLETE"),
                                                                    _event(1, "CREATE_IN_PROGRESS")]},
                          {"StackName": STACK_ID})
        stub.add_response("describe_stacks", _described("UPDATE_COMPLETE"), {"StackName": STACK_ID})
        stub.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": STACK_ID})
        stub.add_response("describe_stack_events", {"StackEvents": update}, {"StackName": STACK_ID})
        seen = []
        status = roll_order.record(SimpleNamespace(cloudformation=cfn, env=env), pkg, [], STACK_ID, seen.append,
                                   poll=0)
        stub.assert_no_pending_responses()
    assert status == "UPDATE_COMPLETE"
    assert [m.event["EventId"] for m in seen if isinstance(m, StackEvent)] == ["e3", "e4"]
    assert seen[-1] == RollOrderRecorded(changed=True)


def test_a_change_set_that_cannot_be_executed_is_a_warning():
    """ExecuteChangeSet can refuse (InvalidChangeSetStatus: the stack moved on meanwhile,
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html):
    the cluster is up, so it is reported, never fatal."""
    env = load_environment("dev")
    rendering = render(env)
    pkg = Package(rendering, [], [], roots={"CREATE": {"TemplateBody": rendering.create_root.body},
                                           "UPDATE": {"TemplateBody": rendering.root.body}})
    cfn = boto3.client("cloudformation", region_name=env.region, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(cfn) as stub:
        _ordered_update(stub, env)
        stub.add_client_error("execute_change_set", "InvalidChangeSetStatus",
                              "ChangeSet [k3s-infra-1] cannot be executed in its current status of [OBSOLETE]", 400)
        seen = []
        status = roll_order.record(SimpleNamespace(cloudformation=cfn, env=env), pkg, [], STACK_ID, seen.append,
                                   poll=0)
        stub.assert_no_pending_responses()
    assert status is None
    assert seen[-1].changed is False and "OBSOLETE" in seen[-1].problem
