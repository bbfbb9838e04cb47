"""The artifact bucket and the children's upload (deploy/package.py) against botocore's
Stubber, as docs/operations.md "Deploying" says: children under content-addressed keys, uploaded only
when the key is not there yet; the bucket created if missing, private (the four public
access blocks, owner-enforced), encrypted, versioned, tagged as the cluster. HeadBucket and
HeadObject answer a missing bucket or key with 404 (botocore names the code "404", S3's REST
errors "NoSuchBucket"/"NoSuchKey", some endpoints "NotFound"):
https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html. The root's inline/URL
choice is test_package_inline.py's."""

from __future__ import annotations

from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import ANY, Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy import package
from k3s_infra.model import naming
from k3s_infra.render import render

ENV = load_environment("dev")
BUCKET = ENV.artifact_bucket
TAGS = {"k3s-infra:cluster": "k3s-dev"}


@pytest.fixture
def s3():
    client = boto3.client("s3", region_name=ENV.region, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        client.stub = stub
        yield client
        stub.assert_no_pending_responses()


def test_an_existing_bucket_is_used_as_it_is(s3):
    s3.stub.add_response("head_bucket", {}, {"Bucket": BUCKET})
    assert package.ensure_bucket(s3, BUCKET, ENV.region, TAGS) is False


def _created(s3, region: str, tags: dict[str, str]) -> None:
    s3.stub.add_response("create_bucket", {}, {"Bucket": BUCKET, **(
        {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}})})
    s3.stub.add_response("put_public_access_block", {}, {"Bucket": BUCKET, "PublicAccessBlockConfiguration": {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}})
    s3.stub.add_response("put_bucket_encryption", {}, {"Bucket": BUCKET, "ServerSideEncryptionConfiguration": {
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]}})
    s3.stub.add_response("put_bucket_ownership_controls", {}, {"Bucket": BUCKET, "OwnershipControls": {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}})
    s3.stub.add_response("put_bucket_versioning", {}, {"Bucket": BUCKET, "VersioningConfiguration": {"Status": "Enabled"}})
    if tags:
        s3.stub.add_response("put_bucket_tagging", {}, {"Bucket": BUCKET, "Tagging": {
            "TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}})


@pytest.mark.parametrize("code", ["404", "NoSuchBucket", "NotFound"])
@pytest.mark.parametrize("region, tags", [("eu-west-1", TAGS), ("us-east-1", {})])
def test_a_missing_bucket_is_created_private_encrypted_owner_enforced_versioned_and_tagged(s3, code, region, tags):
    """us-east-1 takes no LocationConstraint (S3 API Reference, CreateBucket)."""
    s3.stub.add_client_error("head_bucket", code, expected_params={"Bucket": BUCKET})
    _created(s3, region, tags)
    assert package.ensure_bucket(s3, BUCKET, region, tags) is True


def test_a_bucket_that_cannot_be_looked_at_is_an_error(s3):
    s3.stub.add_client_error("head_bucket", "403", "Forbidden", 403, expected_params={"Bucket": BUCKET})
    with pytest.raises(Exception, match="403"):
        package.ensure_bucket(s3, BUCKET, ENV.region, TAGS)


@pytest.fixture
def rendering():
    return render(ENV)


@pytest.mark.parametrize("missing", ["404", "NoSuchKey", "NotFound"])
def test_children_already_uploaded_are_reused_and_the_others_uploaded_into_a_bucket_made_first(
        s3, rendering, monkeypatch, missing):
    monkeypatch.setattr(package.bundle, "addons_object", lambda env: None)
    s3.stub.add_client_error("head_bucket", "404", expected_params={"Bucket": BUCKET})
    _created(s3, ENV.region, naming.cluster_tags(ENV))
    first, *rest = rendering.children
    s3.stub.add_response("head_object", {"ContentLength": 1}, {"Bucket": BUCKET, "Key": first.key})
    for child in rest:
        s3.stub.add_client_error("head_object", missing, expected_params={"Bucket": BUCKET, "Key": child.key})
        s3.stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": child.key, "Body": ANY, "ContentType": ANY})
    done = package.package(SimpleNamespace(s3=s3), rendering)
    assert done.reused == [first.file] and done.uploaded == [c.file for c in rest]
    assert set(done.roots) == {"UPDATE", "CREATE"}


def test_a_key_that_cannot_be_looked_at_is_an_error(s3, rendering, monkeypatch):
    monkeypatch.setattr(package.bundle, "addons_object", lambda env: None)
    s3.stub.add_response("head_bucket", {}, {"Bucket": BUCKET})
    s3.stub.add_client_error("head_object", "403", "Forbidden", 403)
    with pytest.raises(Exception, match="403"):
        package.package(SimpleNamespace(s3=s3), rendering)


@pytest.mark.parametrize("fmt, content_type", [("yaml", "text/yaml"), ("json", "application/json")])
def test_each_child_is_uploaded_with_the_content_type_of_its_format(s3, monkeypatch, fmt, content_type):
    monkeypatch.setattr(package.bundle, "addons_object", lambda env: None)
    rendering = render(ENV, fmt=fmt)
    s3.stub.add_response("head_bucket", {}, {"Bucket": BUCKET})
    for child in rendering.children:
        s3.stub.add_client_error("head_object", "404", expected_params={"Bucket": BUCKET, "Key": child.key})
        s3.stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": child.key, "Body": child.body.encode(),
                                                "ContentType": content_type})
    package.package(SimpleNamespace(s3=s3), rendering)


def test_the_add_ons_manifests_go_up_once_encrypted_with_kms(s3, rendering, monkeypatch):
    """docs/node-boot.md "Add-on manifests": the manifests hold the user's chart values: SSE-KMS (aws/s3), and
    content-addressed like the children (a key already there holds these bytes)."""
    charts = SimpleNamespace(key=f"{ENV.stack_name}/addons/0a1b/addons.yaml", body="kind: HelmChart\n")
    monkeypatch.setattr(package.bundle, "addons_object", lambda env: charts)
    for present in (False, True):
        s3.stub.add_response("head_bucket", {}, {"Bucket": BUCKET})
        for child in rendering.children:
            s3.stub.add_response("head_object", {"ContentLength": 1}, {"Bucket": BUCKET, "Key": child.key})
        if present:
            s3.stub.add_response("head_object", {"ContentLength": 1}, {"Bucket": BUCKET, "Key": charts.key})
        else:
            s3.stub.add_client_error("head_object", "404", expected_params={"Bucket": BUCKET, "Key": charts.key})
            s3.stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": charts.key, "Body": charts.body.encode(),
                                                    "ContentType": "text/yaml", "ServerSideEncryption": "aws:kms"})
        done = package.package(SimpleNamespace(s3=s3), rendering)
        assert (package.ADDONS_FILE in done.reused, package.ADDONS_FILE in done.uploaded) == (present, not present)
