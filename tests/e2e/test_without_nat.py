"""A managed network without NAT (network.create.nat_gateways: none) deploys: the nodes reach
only VPC endpoints, so K3s comes from the artifact bucket (deploy/artifacts.py), which the
deployer fills from --artifacts DIR when this machine has no way to the release either; here
k3s.release_url names a host that does not resolve (.invalid: RFC 2606) and the cache is empty.
Pre-flight warns (it no longer refuses) and names what still needs a registry. Through the real
CLI on the session's moto server."""

from __future__ import annotations

import base64
import hashlib

import pytest

from tests.support.k3s_release import write_release

STACK = "k3s-offline"
UNREACHABLE = "https://k3s-release.invalid/k3s"
POOL = {"name": "general", "instance_types": ["t3.small"], "min_size": 1, "desired": 1, "max_size": 2,
        "root_volume_gb": 30}
IMAGES = "k3s-airgap-images-amd64.tar.zst"


@pytest.fixture(scope="module")
def config(write_env):
    return str(write_env("offline.yaml", base="staging", agent_pools=[POOL],
                         network={"create": {"cidr": "10.40.0.0/16", "availability_zones": 3, "nat_gateways": "none"}},
                         servers={"count": 1, "instance_type": "t3.small"},
                         k3s={"release_url": UNREACHABLE}, deploy={"stack_name": STACK}))


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("K3S_INFRA_CACHE", str(tmp_path / "empty-cache"))  # nothing downloaded before
    return tmp_path / "empty-cache"


def _nested(aws, logical: str) -> dict:
    cfn = aws.cloudformation
    (resource,) = [r for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
                   if r["LogicalResourceId"] == logical]
    return cfn.describe_stacks(StackName=resource["PhysicalResourceId"])["Stacks"][0]


def test_without_the_release_or_artifacts_dir_nothing_is_created_and_the_error_says_why(cli, config, aws,
                                                                                       offline_cache, monkeypatch):
    # The checksums come from the official release: out of reach too (no test reaches GitHub).
    monkeypatch.setattr("k3s_infra.config.defaults.K3S_OFFICIAL_RELEASE_URL", "https://k3s-official.invalid/k3s")
    result = cli("deploy", "--config", config, "--yes")
    assert result.code == 1, result
    assert result.err.startswith("error: cannot download https://k3s-official.invalid/k3s/v1."), result
    assert "--artifacts DIR" in result.err and "Traceback" not in result.err
    with pytest.raises(aws.cloudformation.exceptions.ClientError):
        aws.cloudformation.describe_stacks(StackName=STACK)
    assert not list(offline_cache.rglob("*.part"))


def test_a_network_without_nat_deploys_from_artifacts_dir(cli, config, aws, tmp_path, offline_cache):
    digests = write_release(tmp_path / "release", ("amd64",))
    plan = cli("plan", "--config", config, "--artifacts", str(tmp_path / "release"))
    assert plan.code == 0, plan
    result = cli("deploy", "--config", config, "--yes", "--artifacts", str(tmp_path / "release"))
    assert result.code == 0, result
    # Pre-flight passed with a warning naming what still needs a registry in reach.
    assert "warning: network.create.nat_gateways: the nodes have no way to the internet" in result.out
    assert "chart from https://kubernetes.github.io/cloud-provider-aws" in result.out
    assert f"K3s k3s: sha256 {digests['k3s']} verified ({tmp_path / 'release' / 'k3s'})" in result.out
    assert not offline_cache.exists()  # nothing downloaded, nothing cached
    # The digests of what was staged went to the root, and from it to each node stack.
    root = {p["ParameterKey"]: p["ParameterValue"]
            for p in aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["Parameters"]}
    assert (root["K3sBinarySha256Amd64"], root["K3sImagesSha256Amd64"]) == (digests["k3s"], digests[IMAGES])
    bucket = "k3s-infra-123456789012-eu-west-1"  # deploy.artifact_bucket's default: k3s-infra-<account>-<region>
    for name in ("k3s", IMAGES, "sha256sum-amd64.txt"):
        body = aws.s3.get_object(Bucket=bucket, Key=f"{STACK}/k3s/{digests[name]}/{name}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == digests[name]
    for logical in ("ServerInit", "AgentPoolGeneral"):
        stack = _nested(aws, logical)
        node = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
        assert (node["K3sBinarySha256"], node["K3sImagesSha256"]) == (digests["k3s"], digests[IMAGES])
        template = next(r for r in aws.cloudformation.list_stack_resources(StackName=stack["StackId"])[
            "StackResourceSummaries"] if r["ResourceType"] == "AWS::EC2::LaunchTemplate")
        data = aws.ec2.describe_launch_template_versions(LaunchTemplateId=template["PhysicalResourceId"])[
            "LaunchTemplateVersions"][0]["LaunchTemplateData"]["UserData"]
        text = base64.b64decode(data).decode()
        assert f"K3S_BINARY_SHA256='{digests['k3s']}'" in text and f"ARTIFACT_BUCKET='{bucket}'" in text
        assert "github.com" not in text and "RELEASE_URL" not in text
    # No NAT: the private route tables have no default route; the S3 gateway endpoint serves them.
    network = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in aws.cloudformation.list_stack_resources(
        StackName=_nested(aws, "Network")["StackId"])["StackResourceSummaries"]}
    assert not [name for name in network if name.startswith(("NatGateway", "PrivateDefaultRoute"))]
    assert "S3Endpoint" in network

    result = cli("destroy", "--config", config, "--yes")
    assert result.code == 0, result
    try:  # destroy removes the staged files with the templates (and the bucket, if no other cluster uses it)
        left = aws.s3.list_object_versions(Bucket=bucket, Prefix=f"{STACK}/").get("Versions", [])
    except aws.s3.exceptions.NoSuchBucket:
        left = []
    assert left == [] and "template and K3s objects" in result.out, result
