"""What the upgrade pre-flight reads (deploy/upgrade_reads.py) and the whole pre-flight
(upgrade_checks.run, for_plan) on strict botocore Stubbers shaped like the AWS API references
(CloudFormation DescribeStacks/DescribeStackResource, S3 HeadObject/ListObjectsV2, Auto Scaling
DescribeAutoScalingGroups, ELBv2 DescribeTargetHealth) and a fake Kubernetes API answering
recorded pages (its readyz, NodeList and metrics as kube-apiserver writes them)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy import DeployError, upgrade_checks, upgrade_reads
from k3s_infra.deploy.kubeapi import KubeApiError
from tests.unit.deploy.test_upgrade_checks import METRICS, NOT_READY, READY, node

ENV = load_environment("staging")  # three servers; its file extends defaults.yaml: k3s.version v1.33.5+k3s1
ACCOUNT, REGION = "123456789012", "eu-west-1"
ROOT_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/k3s-staging/5b3c9a40-0b1d-11f0-9c2e-0a1b2c3d4e5f"
TG = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/k3s-staging-api/50dc6c495c0c9188"
DIGEST = "3f7a1c2b9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"
BUCKET = "k3s-infra-123456789012-eu-west-1"            # staging's artifact bucket (account + region)
BINARY_KEY = f"k3s-staging/k3s/{DIGEST}/k3s"             # naming.k3s_artifact_key: <cluster>/k3s/<sha256>/<file>
SNAPSHOTS = "k3s-staging-snapshots-0a1b2c"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
SESSION = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


class FakeApi:
    """Recorded answers by path; every path asked is kept."""

    server = "https://k3s-staging-api-0a1b.elb.eu-west-1.amazonaws.com:6443"

    def __init__(self, answers: dict[str, tuple[int, str]]):
        self.answers, self.asked = answers, []

    def get(self, path):
        self.asked.append(path)
        answer = self.answers.get(path)
        if isinstance(answer, Exception):
            raise answer
        return answer


def node_list(*items) -> str:
    return json.dumps({"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "81234"},
                       "items": list(items)})


HEALTHY_API = {"/readyz?verbose": (200, READY), "/api/v1/nodes": (200, node_list(
    node("ip-10-0-1-11.eu-west-1.compute.internal"), node("ip-10-0-2-12.eu-west-1.compute.internal"),
    node("ip-10-0-3-13.eu-west-1.compute.internal"), node("ip-10-0-1-21.eu-west-1.compute.internal", etcd=False))),
    "/metrics": (200, METRICS)}


def root(**parameters) -> dict:
    """DescribeStacks' Stacks item of the deployed root (API_Stack.html)."""
    return {"StackId": ROOT_ID, "StackName": "k3s-staging", "CreationTime": NOW - timedelta(days=30),
            "LastUpdatedTime": NOW - timedelta(days=2), "StackStatus": "UPDATE_COMPLETE",
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            "Outputs": [{"OutputKey": "SnapshotBucketName", "OutputValue": SNAPSHOTS}]}


def aws_with_stubs():
    clients = {name: SESSION.client(name) for name in ("cloudformation", "s3", "autoscaling", "elbv2")}
    stubs = {name: Stubber(client) for name, client in clients.items()}
    return SimpleNamespace(env=ENV, check_account=lambda: ACCOUNT, **clients), stubs


def head(stub, version: str | None = "v1.33.5+k3s1", key: str = BINARY_KEY) -> None:
    """HeadObject: user metadata without its x-amz-meta- prefix (API_HeadObject.html)."""
    if version is None:
        stub.add_client_error("head_object", "404", "Not Found", 404, expected_params={"Bucket": BUCKET, "Key": key})
        return
    stub.add_response("head_object", {"ContentLength": 71_000_000, "ContentType": "application/octet-stream",
                                      "ETag": '"9b2cf535f27731c974343645a3985328-9"', "LastModified": NOW,
                                      "Metadata": {"k3s-version": version, "sha256": DIGEST}},
                      {"Bucket": BUCKET, "Key": key})


def _group(name: str, desired: int, *instances: tuple[str, str, str]) -> dict:
    return {"AutoScalingGroupName": name, "MinSize": desired, "MaxSize": desired, "DesiredCapacity": desired,
            "DefaultCooldown": 300, "AvailabilityZones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
            "HealthCheckType": "EC2", "CreatedTime": NOW - timedelta(days=30),
            "Instances": [{"InstanceId": i, "AvailabilityZone": "eu-west-1a", "LifecycleState": state,
                           "HealthStatus": health, "ProtectedFromScaleIn": False} for i, state, health in instances]}


def servers(stubs, *, unhealthy: str | None = None, target_group: bool = True) -> None:
    """Both server groups (ServerInit: 1, Servers: 2) and the API target group's health
    (``target_group`` False: neither stack has the ApiTargetGroupArn parameter)."""
    cfn, asg = stubs["cloudformation"], stubs["autoscaling"]
    members = {"ServerInit": ["i-0a1"], "Servers": ["i-0a2", "i-0a3"]}
    for logical, ids in members.items():
        physical = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/k3s-staging-{logical}-1AB2/6c4d"
        cfn.add_response("describe_stack_resource", {"StackResourceDetail": {
            "LogicalResourceId": logical, "PhysicalResourceId": physical, "ResourceType": "AWS::CloudFormation::Stack",
            "LastUpdatedTimestamp": NOW, "ResourceStatus": "UPDATE_COMPLETE"}},
            {"StackName": ROOT_ID, "LogicalResourceId": logical})
        cfn.add_response("describe_stacks", {"Stacks": [{
            "StackId": physical, "StackName": f"k3s-staging-{logical}-1AB2", "CreationTime": NOW,
            "StackStatus": "UPDATE_COMPLETE",
            "Parameters": [{"ParameterKey": "ApiTargetGroupArn", "ParameterValue": TG}] if target_group else [],
            "Outputs": [{"OutputKey": "AutoScalingGroupName", "OutputValue": f"k3s-staging-{logical}"}]}]},
            {"StackName": physical})
        asg.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [_group(
            f"k3s-staging-{logical}", len(ids), *((i, "InService", "Healthy") for i in ids))]},
            {"AutoScalingGroupNames": [f"k3s-staging-{logical}"]})
    if not target_group:
        return
    stubs["elbv2"].add_response("describe_target_health", {"TargetHealthDescriptions": [
        {"Target": {"Id": i, "Port": 6443}, "HealthCheckPort": "6443",
         "TargetHealth": {"State": "unhealthy", "Reason": "Target.FailedHealthChecks",
                          "Description": "Health checks failed"} if i == unhealthy else {"State": "healthy"}}
        for i in ("i-0a1", "i-0a2", "i-0a3")]}, {"TargetGroupArn": TG})


def snapshot_listing(stub, *ages: timedelta) -> None:
    """ListObjectsV2 of the snapshot folder (API_ListObjectsV2.html), one page."""
    contents = [{"Key": f"etcd/staging/etcd-snapshot-i-0a1-{int((NOW - age).timestamp())}", "LastModified": NOW - age,
                 "ETag": '"0a1b"', "Size": 9_437_184, "StorageClass": "STANDARD"} for age in ages]
    stub.add_response("list_objects_v2", {"IsTruncated": False, "Name": SNAPSHOTS, "Prefix": "etcd/staging/",
                                          "MaxKeys": 1000, "KeyCount": len(contents),
                                          **({"Contents": contents} if contents else {})},
                      {"Bucket": SNAPSHOTS, "Prefix": "etcd/staging/"})


# --- the version the stack pins ---------------------------------------------------------------

def test_the_pinned_version_is_the_staged_binarys_metadata():
    aws, stubs = aws_with_stubs()
    with stubs["s3"] as s3:
        head(s3)
        assert upgrade_reads.deployed_version(aws, root(K3sBinarySha256Amd64=DIGEST)) == "v1.33.5+k3s1"
        head(s3, version=None)
        assert upgrade_reads.deployed_version(aws, root(K3sBinarySha256Amd64=DIGEST)) is None
        # an arm64-only cluster pins k3s-arm64 (the release's file name for arm64)
        head(s3, "v1.33.5+k3s1", key=f"k3s-staging/k3s/{DIGEST}/k3s-arm64")
        assert upgrade_reads.deployed_version(aws, root(K3sBinarySha256Arm64=DIGEST)) == "v1.33.5+k3s1"
        assert upgrade_reads.deployed_version(aws, root()) is None  # no digest: nothing asked
        s3.assert_no_pending_responses()


# --- the servers as AWS sees them ---------------------------------------------------------------

@pytest.mark.parametrize("unhealthy, problems", [
    (None, []), ("i-0a2", ["i-0a2 is not healthy behind the API load balancer (K3s down?)"])])
def test_the_servers_as_aws_sees_them(unhealthy, problems):
    aws, stubs = aws_with_stubs()
    with stubs["cloudformation"], stubs["autoscaling"], stubs["elbv2"]:
        servers(stubs, unhealthy=unhealthy)
        assert upgrade_reads.server_problems(aws, {"StackId": ROOT_ID}) == (3, problems)
        for stub in stubs.values():
            stub.assert_no_pending_responses()


def test_servers_that_cannot_be_found_are_a_problem_not_a_pass():
    """No server stack (DescribeStackResource: ValidationError, "Resource ... does not exist"),
    or groups without the API target group: the etcd rule gets a problem to refuse on."""
    aws, stubs = aws_with_stubs()
    with stubs["cloudformation"], stubs["autoscaling"], stubs["elbv2"]:
        for logical in ("ServerInit", "Servers"):
            stubs["cloudformation"].add_client_error(
                "describe_stack_resource", "ValidationError", f"Resource {logical} does not exist for stack "
                "k3s-staging", 400, expected_params={"StackName": ROOT_ID, "LogicalResourceId": logical})
        assert upgrade_reads.server_problems(aws, {"StackId": ROOT_ID}) == (
            ENV.servers.count, ["the server groups cannot be found"])
        servers(stubs, target_group=False)
        assert upgrade_reads.server_problems(aws, {"StackId": ROOT_ID}) == (3, ["the API target group cannot be found"])
        for stub in stubs.values():
            stub.assert_no_pending_responses()


# --- the API --------------------------------------------------------------------------------------

def test_readyz_answering_500_still_lists_its_checks():
    reads = upgrade_reads.read_api(FakeApi({**HEALTHY_API, "/readyz?verbose": (500, NOT_READY)}))
    assert reads.readyz == NOT_READY and reads.errors == {}


@pytest.mark.parametrize("answers, failed", [
    ({"/readyz?verbose": (401, '{"kind":"Status","reason":"Unauthorized","code":401}')},
     {"readyz", "nodes", "metrics"}),
    ({**HEALTHY_API, "/metrics": (403, '{"kind":"Status","reason":"Forbidden","code":403}')}, {"metrics"}),
    ({**HEALTHY_API, "/api/v1/nodes": (200, '{"kind":"Status"}')}, {"nodes", "metrics"}),
    ({"/readyz?verbose": KubeApiError("cannot reach the Kubernetes API at https://x:6443: timed out")},
     {"readyz", "nodes", "metrics"}),
])
def test_what_the_api_did_not_answer_is_an_error_per_read(answers, failed):
    reads = upgrade_reads.read_api(FakeApi(answers))
    assert set(reads.errors) == failed
    assert all(getattr(reads, key) is None for key in failed)


# --- the whole pre-flight ---------------------------------------------------------------------------

def preflight(target: str, api: FakeApi, *, pinned: str = "v1.33.5+k3s1", unhealthy: str | None = None,
              snapshot_age: timedelta = timedelta(minutes=20)):
    aws, stubs = aws_with_stubs()
    with stubs["cloudformation"] as cfn, stubs["s3"] as s3, stubs["autoscaling"], stubs["elbv2"]:
        cfn.add_response("describe_stacks", {"Stacks": [root(K3sBinarySha256Amd64=DIGEST)]},
                         {"StackName": "k3s-staging"})
        head(s3, pinned)
        servers(stubs, unhealthy=unhealthy)
        snapshot_listing(s3, snapshot_age, snapshot_age + timedelta(hours=6))
        checked = upgrade_checks.run(aws, target, api=api, now=NOW)
        for stub in stubs.values():
            stub.assert_no_pending_responses()
    return checked


def test_a_healthy_cluster_one_minor_up_passes_every_rule():
    api = FakeApi(HEALTHY_API)
    checked = preflight("v1.34.12+k3s1", api)
    verdicts = {}
    for finding in checked.findings:
        verdicts.setdefault(finding.rule, set()).add(finding.verdict)
    assert set(verdicts) == set(upgrade_checks.RULES)
    # the one refusal: the fixture's API removed in 1.34, still requested
    assert [(f.rule, f.message.split()[0]) for f in checked.blocking()] == [("removed-apis", "resource.k8s.io/v1beta1")]
    assert verdicts["etcd-health"] == {"ok"} and verdicts["snapshot-age"] == {"ok"}
    assert [r.where for r in checked.running][0] == "the stack's pinned binary"
    assert {r.version for r in checked.running} == {"v1.33.5+k3s1"}
    assert api.asked == ["/readyz?verbose", "/api/v1/nodes", "/metrics"]


def test_a_server_down_an_old_snapshot_and_an_unreachable_api_each_refuse():
    api = FakeApi({"/readyz?verbose": KubeApiError("cannot reach the Kubernetes API at https://x:6443: timed out")})
    checked = preflight("v1.33.13+k3s1", api, unhealthy="i-0a3", snapshot_age=timedelta(minutes=61))
    refused = {f.rule: f.message for f in checked.blocking()}
    assert set(refused) == {"etcd-health", "snapshot-age", "removed-apis"}
    assert "i-0a3 is not healthy" in refused["etcd-health"] and "timed out" in refused["etcd-health"]
    assert "61 minutes old" in refused["snapshot-age"]
    assert checked.blocking({"etcd-health", "snapshot-age", "removed-apis"}) == []


def test_the_stack_not_deployed_is_no_upgrade():
    aws, stubs = aws_with_stubs()
    with stubs["cloudformation"] as cfn:
        cfn.add_client_error("describe_stacks", "ValidationError", "Stack with id k3s-staging does not exist")
        with pytest.raises(DeployError, match="not deployed"):
            upgrade_checks.run(aws, "v1.34.12+k3s1", api=FakeApi({}))


# --- plan: the same pre-flight when k3s.version was edited ---------------------------------------------

def test_plan_of_the_pinned_version_reads_nothing_more():
    aws, stubs = aws_with_stubs()
    api = FakeApi({})
    with stubs["cloudformation"] as cfn, stubs["s3"] as s3:
        cfn.add_response("describe_stacks", {"Stacks": [root(K3sBinarySha256Amd64=DIGEST)]})
        head(s3, ENV.k3s.version)
        assert upgrade_checks.for_plan(aws, api=api) is None
        cfn.add_client_error("describe_stacks", "ValidationError", "Stack with id k3s-staging does not exist")
        assert upgrade_checks.for_plan(aws, api=api) is None  # a first deploy upgrades nothing
    assert api.asked == []


def test_plan_after_an_edit_of_k3s_version_runs_the_pre_flight():
    aws, stubs = aws_with_stubs()
    with stubs["cloudformation"] as cfn, stubs["s3"] as s3, stubs["autoscaling"], stubs["elbv2"]:
        cfn.add_response("describe_stacks", {"Stacks": [root(K3sBinarySha256Amd64=DIGEST)]})
        head(s3, "v1.32.13+k3s1")  # the stack pins 1.32; the file says 1.33.5
        cfn.add_response("describe_stacks", {"Stacks": [root(K3sBinarySha256Amd64=DIGEST)]})
        head(s3, "v1.32.13+k3s1")
        servers(stubs)
        snapshot_listing(s3, timedelta(minutes=5))
        checked = upgrade_checks.for_plan(aws, api=FakeApi(HEALTHY_API), now=NOW)
    assert checked.target == ENV.k3s.version
    skew = next(f for f in checked.findings if f.rule == "version-skew")
    # the nodes report v1.33.5+k3s1 (the fake NodeList), the stack pins 1.32.13: the oldest decides
    assert skew.verdict == "warn" and "v1.32.13+k3s1 -> v1.33.5+k3s1" in skew.message


def test_a_target_that_is_no_k3s_release_is_refused_before_anything_is_read():
    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"asked AWS for {name} before checking the target")

    with pytest.raises(ValueError, match="is not a K3s release like v1.33.5"):
        upgrade_checks.run(Untouchable(), "1.34")
