"""DescribeAutoScalingGroups takes at most 50 names a call
(https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingGroups.html):
the deployer batches, against botocore's Stubber, which checks every call's parameters."""

from __future__ import annotations

from types import SimpleNamespace

import boto3
from botocore.stub import Stubber

from k3s_infra.deploy.groups import describe_groups, group_of, nested_stack, nested_stacks


def test_more_than_fifty_groups_are_described_in_batches():
    client = boto3.client("autoscaling", region_name="eu-west-1", aws_access_key_id="x",
                          aws_secret_access_key="x", endpoint_url="https://autoscaling.invalid")
    names = [f"k3s-group-{i:03}" for i in range(120)]

    def group(name):
        return {"AutoScalingGroupName": name, "MinSize": 0, "MaxSize": 1, "DesiredCapacity": 0,
                "DefaultCooldown": 300, "AvailabilityZones": ["eu-west-1a"], "HealthCheckType": "EC2",
                "CreatedTime": "2026-01-01T00:00:00Z"}

    with Stubber(client) as stub:
        for start in (0, 50, 100):
            batch = names[start:start + 50]
            stub.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [group(n) for n in batch]},
                              {"AutoScalingGroupNames": batch})
        found = describe_groups(client, names + names[:3])  # duplicates are asked once
        stub.assert_no_pending_responses()
    assert sorted(found) == names


ROOT = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev/1111"
SERVERS = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev-Servers-1/2222"


def _cfn():
    return boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x",
                        aws_secret_access_key="x", endpoint_url="https://cloudformation.invalid")


def _stack(status: str, outputs: dict[str, str] | None = None) -> dict:
    return {"StackId": SERVERS, "StackName": "k3s-dev-Servers-1", "CreationTime": "2026-01-02T03:04:05Z",
            "StackStatus": status, "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in (outputs or {}).items()]}


def _resource(physical: str | None) -> dict:
    detail = {"LogicalResourceId": "Servers", "ResourceType": "AWS::CloudFormation::Stack",
              "LastUpdatedTimestamp": "2026-01-02T03:04:05Z", "ResourceStatus": "CREATE_COMPLETE"}
    return {"StackResourceDetail": {**detail, "PhysicalResourceId": physical} if physical else detail}


def test_a_nested_stack_deleted_missing_or_without_an_id_is_none():
    """DescribeStacks by ID still answers for a deleted stack (DELETE_COMPLETE)."""
    cfn = _cfn()
    with Stubber(cfn) as stub:
        stub.add_response("describe_stack_resource", _resource(SERVERS),
                          {"StackName": ROOT, "LogicalResourceId": "Servers"})
        stub.add_response("describe_stacks", {"Stacks": [_stack("DELETE_COMPLETE")]}, {"StackName": SERVERS})
        assert nested_stack(cfn, ROOT, "Servers") is None
        stub.add_response("describe_stack_resource", _resource(None))
        assert nested_stack(cfn, ROOT, "Servers") is None
        stub.add_client_error("describe_stack_resource", "ValidationError", "Resource Servers does not exist")
        assert nested_stack(cfn, ROOT, "Servers") is None
        stub.add_response("describe_stack_resource", _resource(SERVERS))
        stub.add_response("describe_stacks", {"Stacks": [_stack("UPDATE_COMPLETE")]}, {"StackName": SERVERS})
        assert nested_stack(cfn, ROOT, "Servers")["StackId"] == SERVERS
        stub.assert_no_pending_responses()


def test_the_nested_stacks_are_the_stack_resources_with_an_id_and_an_unreadable_one_shows_its_status():
    cfn = _cfn()
    summary = {"ResourceType": "AWS::CloudFormation::Stack", "LastUpdatedTimestamp": "2026-01-02T03:04:05Z",
               "ResourceStatus": "UPDATE_COMPLETE"}
    listing = {"StackResourceSummaries": [
        {**summary, "LogicalResourceId": "Servers", "PhysicalResourceId": SERVERS},
        {**summary, "LogicalResourceId": "Draining", "PhysicalResourceId": SERVERS.replace("Servers", "Draining"),
         "ResourceStatus": "DELETE_FAILED"},
        {**summary, "LogicalResourceId": "Identity", "ResourceStatus": "CREATE_IN_PROGRESS"},  # no ID yet
        {**summary, "LogicalResourceId": "ApiDnsName", "ResourceType": "AWS::SSM::Parameter",
         "PhysicalResourceId": "k3s-dev-api"}]}
    with Stubber(cfn) as stub:  # a call for anything else fails the test
        stub.add_response("list_stack_resources", listing, {"StackName": ROOT})
        stub.add_response("describe_stacks", {"Stacks": [_stack("UPDATE_COMPLETE")]}, {"StackName": SERVERS})
        stub.add_client_error("describe_stacks", "AccessDenied", "not authorized")
        found = nested_stacks(cfn, ROOT)
        stub.assert_no_pending_responses()
    assert [(logical, stack["StackStatus"]) for logical, stack in found] == [
        ("Servers", "UPDATE_COMPLETE"), ("Draining", "DELETE_FAILED")]
    assert found[1][1]["Outputs"] == []


def test_a_node_stack_without_its_group_output_has_no_group():
    cfn = _cfn()
    aws = SimpleNamespace(cloudformation=cfn, autoscaling=None)  # no group is described
    with Stubber(cfn) as stub:
        stub.add_response("describe_stack_resource", _resource(SERVERS))
        stub.add_response("describe_stacks", {"Stacks": [_stack("CREATE_IN_PROGRESS")]}, {"StackName": SERVERS})
        stack, group = group_of(aws, ROOT, "Servers")
    assert stack["StackId"] == SERVERS and group is None
