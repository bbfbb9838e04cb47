"""deploy/losses.py bucket_contents: what emptying the snapshot bucket removes, every page of
ListObjectVersions (versions and delete markers counted, versions' sizes summed: a delete
marker has no size, https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectVersions.html),
and a bucket that cannot be listed named as such in destroy's prompt, never counted as empty."""

from __future__ import annotations

from datetime import datetime, timezone

import boto3
from botocore.stub import Stubber

from k3s_infra.cli.destroy import loss_lines
from k3s_infra.deploy.losses import BucketContents, Losses, bucket_contents

WHEN = datetime(2026, 1, 2, tzinfo=timezone.utc)


def _s3():
    client = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x",
                          endpoint_url="https://s3.invalid")
    return client, Stubber(client)


def _version(key: str, size: int, version: str) -> dict:
    return {"Key": key, "VersionId": version, "Size": size, "IsLatest": True, "LastModified": WHEN, "ETag": '"e"'}


def test_every_page_every_version_and_marker():
    s3, stub = _s3()
    stub.add_response("list_object_versions", {
        "Versions": [_version("a", 100, "1"), _version("a", 200, "2")], "IsTruncated": True,
        "NextKeyMarker": "a", "NextVersionIdMarker": "2",
        "DeleteMarkers": [{"Key": "a", "VersionId": "3", "IsLatest": True, "LastModified": WHEN}]}, {"Bucket": "snaps"})
    stub.add_response("list_object_versions", {"Versions": [_version("b", 4096, "4")], "IsTruncated": False},
                      {"Bucket": "snaps", "KeyMarker": "a", "VersionIdMarker": "2"})
    with stub:
        assert bucket_contents(s3, "snaps") == BucketContents("snaps", 4, 4396)


def test_a_bucket_gone_is_empty_and_one_that_cannot_be_listed_is_not_counted():
    s3, stub = _s3()
    stub.add_client_error("list_object_versions", "NoSuchBucket", http_status_code=404)
    stub.add_client_error("list_object_versions", "AccessDenied", http_status_code=403)
    with stub:
        gone = bucket_contents(s3, "gone")
        denied = bucket_contents(s3, "denied")
    assert gone == BucketContents("gone", 0, error="NoSuchBucket")
    assert (gone.objects, gone.size) == (0, 0)  # nothing to lose: no object, no byte
    assert denied == BucketContents("denied", None, error="AccessDenied")
    lines = loss_lines(Losses(False, denied, (), None, 7, ()))
    assert lines == ["deleted for good:", "  the snapshots in s3://denied (not counted: AccessDenied)"]
