"""Event streaming, failure tracing and change-set tables against botocore's Stubber,
with responses shaped like real CloudFormation's (resource-level events, nested
change sets, rollback), which moto does not produce."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import ANY, Stubber

from k3s_infra.cli.progress import Console, change_table, event_line
from k3s_infra.deploy import changeset
from k3s_infra.deploy.events import Watcher, first_failure

ROOT = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev/1111"
CHILD = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev-AgentPoolGeneral-ABC/2222"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture
def cfn():
    client = boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x",
                          aws_secret_access_key="x", endpoint_url="https://cloudformation.invalid")
    with Stubber(client) as stub:
        client.stub = stub
        yield client
        stub.assert_no_pending_responses()


def event(n, stack_id, stack_name, logical, status, reason=None, type_="AWS::EC2::LaunchTemplate"):
    e = {"StackId": stack_id, "EventId": f"e{n}", "StackName": stack_name, "LogicalResourceId": logical,
         "PhysicalResourceId": "", "ResourceType": type_, "Timestamp": T0 + timedelta(seconds=n),
         "ResourceStatus": status}
    if reason:
        e["ResourceStatusReason"] = reason
    return e


ROOT_EVENTS = [  # newest first, as DescribeStackEvents returns them
    event(5, ROOT, "k3s-dev", "k3s-dev", "UPDATE_ROLLBACK_COMPLETE", type_="AWS::CloudFormation::Stack"),
    event(4, ROOT, "k3s-dev", "k3s-dev", "UPDATE_ROLLBACK_IN_PROGRESS",
          "The following resource(s) failed to update: [AgentPoolGeneral].", "AWS::CloudFormation::Stack"),
    event(3, ROOT, "k3s-dev", "AgentPoolGeneral", "UPDATE_FAILED",
          f"Embedded stack {CHILD} was not successfully updated. Currently in UPDATE_ROLLBACK_IN_PROGRESS "
          f"with reason: The following resource(s) failed to update: [AgentLaunchTemplate].",
          "AWS::CloudFormation::Stack"),
    event(1, ROOT, "k3s-dev", "k3s-dev", "UPDATE_IN_PROGRESS", "User Initiated", "AWS::CloudFormation::Stack"),
]
CHILD_EVENTS = [
    event(2, CHILD, "k3s-dev-AgentPoolGeneral-ABC", "AgentLaunchTemplate", "UPDATE_FAILED",
          "Resource handler returned message: \"The parameter groupName cannot be used with the "
          "parameter subnet\" (Service: Ec2, Status Code: 400)"),
]


def test_an_event_is_one_aligned_line():
    a = event_line(ROOT_EVENTS[2], "k3s-dev")
    b = event_line(CHILD_EVENTS[0], "AgentPoolGeneral")
    assert a.index("UPDATE_FAILED") == b.index("UPDATE_FAILED")
    assert a.startswith("03:04:08  k3s-dev ") and "\n" not in a
    assert event_line(ROOT_EVENTS[0], "k3s-dev").split()[2] == "(stack)"


def test_first_failure_prefers_the_cause_over_its_consequences():
    cause = first_failure(ROOT_EVENTS + CHILD_EVENTS)
    assert cause["LogicalResourceId"] == "AgentLaunchTemplate"
    # without the nested stack's events the best available is the nested stack resource
    assert first_failure(ROOT_EVENTS)["LogicalResourceId"] == "AgentPoolGeneral"
    assert first_failure([ROOT_EVENTS[-1]]) is None


def test_rollback_is_streamed_traced_into_the_nested_stack_and_reported(cfn):
    stub = cfn.stub
    stub.add_response("describe_stack_events", {"StackEvents": ROOT_EVENTS}, {"StackName": ROOT})
    stub.add_response("describe_stacks", {"Stacks": [{"StackName": "k3s-dev", "StackId": ROOT,
                      "CreationTime": T0, "StackStatus": "UPDATE_ROLLBACK_COMPLETE"}]}, {"StackName": ROOT})
    stub.add_response("describe_stack_events", {"StackEvents": ROOT_EVENTS}, {"StackName": ROOT})
    # tracing the embedded stack named in the failure reason
    stub.add_response("describe_stack_events", {"StackEvents": ROOT_EVENTS}, {"StackName": ROOT})
    stub.add_response("describe_stack_events", {"StackEvents": CHILD_EVENTS}, {"StackName": CHILD})
    out = io.StringIO()
    console = Console(out, live=False)
    watcher = Watcher(cfn, ROOT, "k3s-dev", on_progress=console, discovering=False)
    status = watcher.wait(poll=0)
    assert status == "UPDATE_ROLLBACK_COMPLETE"
    console(watcher.failure(status))  # tracing it reports the nested stack's events first
    lines = out.getvalue().splitlines()
    assert [line.split()[3] for line in lines[:4]] == ["UPDATE_IN_PROGRESS", "UPDATE_FAILED",
                                                        "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE"]
    assert lines[4].split()[1] == "AgentPoolGeneral" and "AgentLaunchTemplate" in lines[4]  # traced event
    assert lines[5].startswith("error: AgentPoolGeneral/AgentLaunchTemplate (AWS::EC2::LaunchTemplate) "
                               "UPDATE_FAILED: Resource handler returned message")
    assert lines[6] == "k3s-dev: UPDATE_ROLLBACK_COMPLETE: rolled back: the stack is back on its previous version"


def test_change_set_table_includes_nested_changes_and_replacements(cfn, monkeypatch):
    stub = cfn.stub
    root_cs = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/k3s-infra-1/aaa"
    child_cs = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/nested/bbb"
    image = [{"ParameterKey": "ImageId", "ParameterValue": "ami-0123456789abcdef0"}]
    stub.add_response("create_change_set", {"Id": root_cs, "StackId": ROOT},
                      {"StackName": "k3s-dev", "ChangeSetName": ANY, "ChangeSetType": "CREATE",
                       "Capabilities": ANY, "IncludeNestedStacks": True, "Tags": ANY, "Description": ANY,
                       "TemplateBody": ANY, "Parameters": image})
    stub.add_response("describe_change_set", {"ChangeSetId": root_cs, "Status": "CREATE_PENDING",
                      "ExecutionStatus": "UNAVAILABLE"}, {"ChangeSetName": root_cs})

    def change(action, logical, type_, replacement=None, nested=None):
        rc = {"Action": action, "LogicalResourceId": logical, "ResourceType": type_}
        if replacement:
            rc["Replacement"] = replacement
        if nested:
            rc["ChangeSetId"] = nested
        return {"Type": "Resource", "ResourceChange": rc}

    stub.add_response("describe_change_set", {"ChangeSetId": root_cs, "Status": "CREATE_COMPLETE",
                      "ExecutionStatus": "AVAILABLE", "Changes": [
                          change("Modify", "AgentPoolGeneral", "AWS::CloudFormation::Stack", "False", child_cs)]},
                      {"ChangeSetName": root_cs})
    stub.add_response("describe_change_set", {"ChangeSetId": child_cs, "Status": "CREATE_COMPLETE", "Changes": [
        change("Modify", "AgentLaunchTemplate", "AWS::EC2::LaunchTemplate", "False"),
        change("Modify", "AgentGroup", "AWS::AutoScaling::AutoScalingGroup", "True")]},
        {"ChangeSetName": child_cs})

    class Aws:
        cloudformation = cfn

    class Pkg:
        rendering = type("R", (), {"env": __import__("k3s_infra.config", fromlist=["x"]).load_environment("dev")})
        template_args = staticmethod(lambda kind="UPDATE": {"TemplateBody": "{}"})

    monkeypatch.setattr("time.sleep", lambda s: None)
    cs = changeset.create(Aws, Pkg, parameters=image, current=None, poll=0)
    assert cs.stack_arn == ROOT  # followed by the StackId CloudFormation returned
    table = change_table(cs)
    rows = [line.split() for line in table.splitlines()]
    assert ["AgentPoolGeneral", "Modify", "AgentGroup", "AWS::AutoScaling::AutoScalingGroup", "REPLACE"] in rows
    summary = table.split("summary:")[1]
    assert "AgentPoolGeneral  0 add  1 modify  1 replace  0 remove" in summary


def test_no_change_change_set_is_empty(cfn, monkeypatch):
    stub = cfn.stub
    cs_id = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/k3s-infra-2/ccc"
    current = {"StackName": "k3s-dev", "StackId": ROOT, "CreationTime": T0, "StackStatus": "UPDATE_COMPLETE"}
    stub.add_response("create_change_set", {"Id": cs_id, "StackId": ROOT}, None)
    stub.add_response("describe_change_set", {"ChangeSetId": cs_id, "Status": "FAILED", "StatusReason":
                      "The submitted information didn't contain changes. Submit different information to create "
                      "a change set."}, {"ChangeSetName": cs_id})

    class Aws:
        cloudformation = cfn

    class Pkg:
        rendering = type("R", (), {"env": __import__("k3s_infra.config", fromlist=["x"]).load_environment("dev")})
        template_args = staticmethod(lambda kind="UPDATE": {"TemplateBody": "{}"})

    cs = changeset.create(Aws, Pkg, current=current, poll=0)
    assert cs.empty and cs.change_set_type == "UPDATE"
    assert change_table(cs) == "k3s-dev: no changes"


# --- a node whose boot gives up fails the deploy, naming its group ---------------------

INIT = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev-ServerInit-XYZ/3333"
INSTANCE = "i-0fedcba9876543210"
# What CloudFormation records when an instance calls SignalResource with Status FAILURE
# (boot.sh, every give-up path) for a group under a CreationPolicy: the group fails with
# "Received FAILURE signal with UniqueId <instance>", the stack rolls back
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-creationpolicy.html,
# https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_SignalResource.html).
CREATE_ROOT_EVENTS = [
    event(6, ROOT, "k3s-dev", "k3s-dev", "ROLLBACK_COMPLETE", type_="AWS::CloudFormation::Stack"),
    event(5, ROOT, "k3s-dev", "k3s-dev", "ROLLBACK_IN_PROGRESS",
          "The following resource(s) failed to create: [ServerInit].", "AWS::CloudFormation::Stack"),
    event(4, ROOT, "k3s-dev", "ServerInit", "CREATE_FAILED",
          f"Embedded stack {INIT} was not successfully created: The following resource(s) failed to "
          f"create: [ServerGroup].", "AWS::CloudFormation::Stack"),
    event(1, ROOT, "k3s-dev", "k3s-dev", "CREATE_IN_PROGRESS", "User Initiated", "AWS::CloudFormation::Stack"),
]
INIT_EVENTS = [
    event(3, INIT, "k3s-dev-ServerInit-XYZ", "ServerGroup", "CREATE_FAILED",
          f"Received FAILURE signal with UniqueId {INSTANCE}", "AWS::AutoScaling::AutoScalingGroup"),
    event(2, INIT, "k3s-dev-ServerInit-XYZ", "ServerGroup", "CREATE_IN_PROGRESS",
          "Resource creation Initiated", "AWS::AutoScaling::AutoScalingGroup"),
]


def test_a_failed_boot_fails_the_deploy_naming_the_group_the_reason_and_the_boot_log(cfn):
    stub = cfn.stub
    stub.add_response("describe_stack_events", {"StackEvents": CREATE_ROOT_EVENTS}, {"StackName": ROOT})
    stub.add_response("describe_stacks", {"Stacks": [{"StackName": "k3s-dev", "StackId": ROOT,
                      "CreationTime": T0, "StackStatus": "ROLLBACK_COMPLETE"}]}, {"StackName": ROOT})
    stub.add_response("describe_stack_events", {"StackEvents": CREATE_ROOT_EVENTS}, {"StackName": ROOT})
    stub.add_response("describe_stack_events", {"StackEvents": CREATE_ROOT_EVENTS}, {"StackName": ROOT})
    stub.add_response("describe_stack_events", {"StackEvents": INIT_EVENTS}, {"StackName": INIT})
    out = io.StringIO()
    console = Console(out, live=False)
    watcher = Watcher(cfn, ROOT, "k3s-dev", on_progress=console, discovering=False)
    status = watcher.wait(poll=0)
    assert status == "ROLLBACK_COMPLETE"
    console(watcher.failure(status))
    lines = out.getvalue().splitlines()
    (error,) = [line for line in lines if line.startswith("error: ")]
    assert error == (f"error: ServerInit/ServerGroup (AWS::AutoScaling::AutoScalingGroup) CREATE_FAILED: "
                     f"Received FAILURE signal with UniqueId {INSTANCE}")
    assert any(f"aws ec2 get-console-output --instance-id {INSTANCE}" in line for line in lines)
    assert lines[-1].startswith("k3s-dev: ROLLBACK_COMPLETE: ")
