"""destroy's parts (k3s_infra/deploy/teardown.py) against botocore Stubbers whose answers are
shaped as the APIs return them: what a destroy lists as retained (the resources whose
DeletionPolicy keeps them: Retain, RetainExceptOnCreate,
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html,
DescribeStackResources naming their physical IDs), and emptying a bucket before the delete
(CloudFormation cannot delete a bucket that holds any object version:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/delete-bucket.html)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from k3s_infra.deploy import teardown

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
DATA = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev-ClusterData-1AB2/7f00"


def _client(service):
    return boto3.client(service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x",
                        endpoint_url=f"https://{service}.invalid")


def _resource(logical: str, physical: str, kind: str) -> dict:
    """One DescribeStackResources item (API_StackResource.html)."""
    return {"StackName": "k3s-dev-ClusterData-1AB2", "StackId": DATA, "LogicalResourceId": logical,
            "PhysicalResourceId": physical, "ResourceType": kind, "Timestamp": T0, "ResourceStatus": "CREATE_COMPLETE"}


def test_only_what_a_deletion_policy_keeps_is_listed_as_retained():
    template = {"Resources": {
        "Key": {"Type": "AWS::KMS::Key", "DeletionPolicy": "RetainExceptOnCreate", "Properties": {}},
        "Token": {"Type": "AWS::SecretsManager::Secret", "DeletionPolicy": "Retain", "Properties": {}},
        "Scratch": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Delete", "Properties": {}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {}}}}  # no policy: deleted with the stack
    rendering = SimpleNamespace(fmt="json", children=[SimpleNamespace(stack_id="ClusterData",
                                                                      body=json.dumps(template))])
    cfn = _client("cloudformation")
    with Stubber(cfn) as stub:
        stub.add_response("describe_stack_resources", {"StackResources": [
            _resource("Key", "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "AWS::KMS::Key"),
            _resource("Token", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k3s-dev/token-AbCdEf",
                      "AWS::SecretsManager::Secret"),
            _resource("Scratch", "k3s-dev-scratch-1ab2", "AWS::S3::Bucket"),
            _resource("Role", "k3s-dev-role-1AB2", "AWS::IAM::Role")]}, {"StackName": DATA})
        kept = teardown._retained(SimpleNamespace(cloudformation=cfn), rendering, [("ClusterData", {"StackId": DATA})])
        stub.assert_no_pending_responses()
    assert sorted(kept) == [
        ("ClusterData", "AWS::KMS::Key", "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"),
        ("ClusterData", "AWS::SecretsManager::Secret",
         "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k3s-dev/token-AbCdEf")]


def test_a_bucket_already_gone_counts_as_empty_and_one_that_cannot_be_listed_stops_the_destroy():
    s3 = _client("s3")
    with Stubber(s3) as stub:
        stub.add_client_error("list_object_versions", "NoSuchBucket", "The specified bucket does not exist", 404,
                              expected_params={"Bucket": "k3s-dev-snapshots", "Prefix": ""})
        stub.add_client_error("list_object_versions", "AccessDenied", "Access Denied", 403,
                              expected_params={"Bucket": "k3s-dev-snapshots", "Prefix": ""})
        assert teardown.empty_bucket(s3, "k3s-dev-snapshots") == 0
        with pytest.raises(ClientError, match="AccessDenied"):
            teardown.empty_bucket(s3, "k3s-dev-snapshots")
        stub.assert_no_pending_responses()


def test_a_delete_that_keeps_failing_is_cleaned_up_and_retried_twice_then_reported(rig, monkeypatch):
    """DELETE_FAILED while the cloud controller keeps making load balancers (or a snapshot races
    the bucket's emptying): cleaned up and deleted again, three deletes in all (the CLI says
    "retrying (1/2)", "(2/2)"), then the failure is reported, not retried for ever."""
    from k3s_infra.deploy import leftovers
    from k3s_infra.deploy.progress import DeleteRetry, Failed, LeftoversFound, LoadBalancerProtectionRemoved
    from tests.support.stack_stubs import ROOT

    found = leftovers.Leftovers("kubernetes.io/cluster/k3s-dev=owned", (leftovers.Leftover(
        leftovers.LOAD_BALANCER, "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/k8s-web/1a2b",
        "k8s-web", "vpc-0a1b2c3d4e5f60718"),))
    monkeypatch.setattr(leftovers, "find", lambda aws, vpc=None: found)
    monkeypatch.setattr(leftovers, "delete", lambda aws, what, on_wait=None: rig.effects.append("leftovers deleted")
                        or leftovers.Cleanup(what.resources, (), (), 0.0))
    rig.root("CREATE_COMPLETE")
    rig.resources()  # the nested stacks, counted for the question
    rig.resources()  # Watcher.prime
    rig.events()
    for _ in range(3):
        rig.cfn.add_response("delete_stack", {}, {"StackName": ROOT})
        rig.events()
        rig.by_id("DELETE_FAILED")
        rig.events()
    seen: list = []
    result = teardown.destroy(rig.aws, confirm=lambda request: True, on_progress=seen.append, poll=0)
    rig.check()
    assert (result.outcome, result.status) == ("failed", "DELETE_FAILED")
    assert rig.effects == ["leftovers deleted", "DeleteStack"] * 3
    assert [(m.attempt, m.retries) for m in seen if isinstance(m, DeleteRetry)] == [(1, 2), (2, 2)]
    assert [m.status for m in seen if isinstance(m, Failed)] == ["DELETE_FAILED"]
    assert [m for m in seen if isinstance(m, LeftoversFound)] == [LeftoversFound(found)] * 3  # each said
    assert not [m for m in seen if isinstance(m, LoadBalancerProtectionRemoved)]  # none was protected


def test_destroy_of_a_stack_that_is_not_there_says_so_and_removes_only_the_templates(rig):
    from k3s_infra.deploy.progress import ArtifactsCleaned, NothingToDestroy

    rig.root(None)
    seen: list = []
    result = teardown.destroy(rig.aws, confirm=lambda request: True, on_progress=seen.append, poll=0)
    rig.check()
    assert result.outcome == "absent" and rig.effects == ["templates removed"]
    assert seen == [NothingToDestroy("k3s-dev", "eu-west-1"), ArtifactsCleaned(rig.aws.env.artifact_bucket,
                                                                                 existed=False)]
