"""destroy's degraded path against botocore's Stubber: when the root's resources cannot be
listed (e.g. a stack left half-created), the stack is still deleted and the wait completes."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import boto3
from botocore.stub import ANY, Stubber

from k3s_infra.cli.destroy import question
from k3s_infra.cli.progress import Console
from k3s_infra.config import load_environment
from k3s_infra.deploy import teardown

ROOT = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev/1111"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _event(n, status, reason=None):
    e = {"StackId": ROOT, "EventId": f"e{n}", "StackName": "k3s-dev", "LogicalResourceId": "k3s-dev",
         "ResourceType": "AWS::CloudFormation::Stack", "Timestamp": T0.replace(second=n), "ResourceStatus": status}
    if reason:
        e["ResourceStatusReason"] = reason
    return e


def _client(service):
    return boto3.client(service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x",
                        endpoint_url=f"https://{service}.invalid")


def test_destroy_deletes_a_stack_whose_resources_cannot_be_listed(monkeypatch, unlocked):
    cfn, s3_client, ssm_client = _client("cloudformation"), _client("s3"), _client("ssm")
    elbv2_client, elb_client, ec2_client = _client("elbv2"), _client("elb"), _client("ec2")
    root = {"StackName": "k3s-dev", "StackId": ROOT, "CreationTime": T0, "StackStatus": "CREATE_FAILED"}
    with Stubber(cfn) as c, Stubber(s3_client) as s, Stubber(ssm_client) as m, Stubber(elbv2_client) as v2, \
            Stubber(elb_client) as v1, Stubber(ec2_client) as e:
        c.add_response("describe_stacks", {"Stacks": [root]}, {"StackName": "k3s-dev"})
        c.add_client_error("list_stack_resources", "InternalFailure", http_status_code=500,
                           expected_params={"StackName": ROOT})
        # no API endpoint stack (deploy/protection.py), and nothing the cloud controller made,
        # before the delete and after (deploy/leftovers.py)
        c.add_client_error("describe_stack_resource", "ValidationError", expected_params={
            "StackName": ROOT, "LogicalResourceId": "ApiEndpoint"})
        for _ in range(2):
            v2.add_response("describe_load_balancers", {"LoadBalancers": []}, {})
            v1.add_response("describe_load_balancers", {"LoadBalancerDescriptions": []}, {})
            v2.add_response("describe_target_groups", {"TargetGroups": []}, {})
            # only in the cluster's VPC (dev brings vpc-0a1b2c3d4e5f60718)
            e.add_response("describe_security_groups", {"SecurityGroups": []}, {"Filters": [
                {"Name": "tag:kubernetes.io/cluster/k3s-dev", "Values": ["owned"]},
                {"Name": "vpc-id", "Values": ["vpc-0a1b2c3d4e5f60718"]}]})
        # Watcher.prime: discovery fails the same way, the root's history is marked as seen
        c.add_client_error("list_stack_resources", "InternalFailure", http_status_code=500,
                           expected_params={"StackName": ROOT})
        c.add_response("describe_stack_events", {"StackEvents": [_event(1, "CREATE_FAILED")]}, {"StackName": ROOT})
        c.add_response("delete_stack", {}, {"StackName": ROOT})
        c.add_response("describe_stack_events", {"StackEvents": [
            _event(3, "DELETE_COMPLETE"), _event(2, "DELETE_IN_PROGRESS", "User Initiated"),
            _event(1, "CREATE_FAILED")]}, {"StackName": ROOT})
        c.add_client_error("describe_stacks", "ValidationError", f"Stack with id {ROOT} does not exist",
                           expected_params={"StackName": ROOT})
        c.add_response("describe_stack_events", {"StackEvents": [_event(3, "DELETE_COMPLETE")]}, {"StackName": ROOT})
        # the node-owned parameters belong to no stack: destroy deletes them (already gone here)
        for name in ("/k3s-infra/k3s-dev/cluster-state", "/k3s-infra/k3s-dev/restore-request"):
            m.add_client_error("delete_parameter", "ParameterNotFound", http_status_code=400,
                               expected_params={"Name": name})
        s.add_client_error("head_bucket", "404", http_status_code=404, expected_params={"Bucket": ANY})

        class Aws:
            env = load_environment("dev")
            cloudformation, s3, ssm = cfn, s3_client, ssm_client
            ec2, elbv2 = ec2_client, elbv2_client

            @staticmethod
            def client(service):
                return {"elb": elb_client}[service]

            @staticmethod
            def check_account():
                return "123456789012"

        monkeypatch.setattr("time.sleep", lambda seconds: None)
        asked = []
        out = io.StringIO()
        outcome = teardown.destroy(Aws, confirm=lambda request: asked.append(question(request)) or True,
                                   on_progress=Console(out), poll=0).outcome
        c.assert_no_pending_responses()
        s.assert_no_pending_responses()
        m.assert_no_pending_responses()
    text = out.getvalue()
    assert outcome == "destroyed", text
    assert "warning: cannot list the resources of k3s-dev (ClientError); deleting it anyway" in text
    assert asked == ["delete stack k3s-dev and its nested stacks in 123456789012/eu-west-1"]
    streamed = [line.split()[3] for line in text.splitlines() if line[:2].isdigit()]
    assert streamed == ["DELETE_IN_PROGRESS", "DELETE_COMPLETE"]  # history before the delete is not repeated
    assert "k3s-dev: DELETE_COMPLETE" in text and "nothing retained" in text
