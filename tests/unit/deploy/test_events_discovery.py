"""Nested-stack discovery against botocore's Stubber: on AWS a nested stack resource's
physical ID is its ARN, so polling lists resources but never re-describes known stacks."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from k3s_infra.deploy.events import Watcher

ROOT = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev/1111"
CHILD = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev-Security-ABC/2222"


def _summary(logical, physical):
    return {"LogicalResourceId": logical, "PhysicalResourceId": physical, "ResourceType": "AWS::CloudFormation::Stack",
            "LastUpdatedTimestamp": "2026-01-02T03:04:05Z", "ResourceStatus": "CREATE_IN_PROGRESS"}


def test_discovery_uses_arns_and_resolves_bare_names_once():
    cfn = boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x",
                       aws_secret_access_key="x", endpoint_url="https://cloudformation.invalid")
    iam = CHILD.replace("Security-ABC/2222", "NodeIam-XYZ/3333")
    root_listing = {"StackResourceSummaries": [_summary("Security", CHILD), _summary("NodeIam", "k3s-dev-NodeIam-XYZ")]}
    empty = {"StackResourceSummaries": []}
    with Stubber(cfn) as stub:
        # first poll: the root, then the stacks it names
        stub.add_response("list_stack_resources", root_listing, {"StackName": ROOT})
        # a bare name (as emulators give) is described once; an ARN never is
        stub.add_response("describe_stacks", {"Stacks": [{
            "StackName": "k3s-dev-NodeIam-XYZ", "StackId": iam, "CreationTime": "2026-01-02T03:04:05Z",
            "StackStatus": "CREATE_IN_PROGRESS"}]}, {"StackName": "k3s-dev-NodeIam-XYZ"})
        stub.add_response("list_stack_resources", empty, {"StackName": iam})
        stub.add_response("list_stack_resources", empty, {"StackName": CHILD})
        # second poll: every known stack is listed again, nothing is described
        stub.add_response("list_stack_resources", empty, {"StackName": iam})
        stub.add_response("list_stack_resources", empty, {"StackName": CHILD})
        stub.add_response("list_stack_resources", root_listing, {"StackName": ROOT})
        watcher = Watcher(cfn, ROOT, "k3s-dev")
        watcher.discover()
        watcher.discover()
        stub.assert_no_pending_responses()
    assert {ref.label for ref in watcher.stacks.values()} == {"k3s-dev", "Security", "NodeIam"}
