"""`k3s-infra snapshots` and the default of `restore` (deploy/snapshots.py list_snapshots): the
snapshots K3s uploaded, newest first by LastModified, whatever the key order. S3 lists keys in
UTF-8 binary order, at most 1,000 a page (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html);
K3s names a snapshot by its key's basename, keeps its metadata under <folder>/.metadata/ and
skips empty objects (k3s-io/k3s pkg/etcd/s3/s3.go, ListSnapshots). Driven by strict botocore
stubs of ListObjectsV2, shaped like S3's answer."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy import snapshots
from k3s_infra.model import outputs as o

ENV = load_environment("dev")
BUCKET, FOLDER = "k3s-dev-snapshots", "etcd/dev"
ROOT = {"Outputs": [{"OutputKey": o.SNAPSHOT_BUCKET, "OutputValue": BUCKET}]}
SESSION = boto3.Session(region_name=ENV.region, aws_access_key_id="testing", aws_secret_access_key="testing")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def _object(key: str, modified: str, size: int = 2_097_152) -> dict:
    return {"Key": f"{FOLDER}/{key}", "LastModified": _at(modified), "ETag": '"0a1b"', "Size": size,
            "StorageClass": "STANDARD"}


# (row, pages of objects in key order, the names listed, newest first)
LISTINGS = [
    ("key order and time order disagree", [[
        _object("etcd-snapshot-i-0aaa-1700000300", "2024-01-01T00:00:00"),
        _object("etcd-snapshot-i-0bbb-1700000100", "2025-06-01T00:00:00"),
        _object("etcd-snapshot-i-0ccc-1700000200", "2024-06-01T00:00:00")]],
     ["etcd-snapshot-i-0bbb-1700000100", "etcd-snapshot-i-0ccc-1700000200", "etcd-snapshot-i-0aaa-1700000300"]),
    ("one second apart", [[_object("b", "2025-01-01T00:00:00"), _object("a", "2025-01-01T00:00:01")]], ["a", "b"]),
    ("the newest on the first page of two",
     [[_object("a", "2025-03-01T00:00:00")], [_object("b", "2025-01-01T00:00:00")]], ["a", "b"]),
    ("the newest on the second page", [[_object("a", "2025-01-01T00:00:00")], [_object("b", "2025-03-01T00:00:00")]],
     ["b", "a"]),
    ("metadata is no snapshot", [[_object("a", "2025-01-01T00:00:00"), _object(".metadata/a", "2025-01-01T00:00:01")]],
     ["a"]),
    ("a name that merely contains .metadata", [[_object("x.metadata", "2025-01-01T00:00:00")]], ["x.metadata"]),
    ("an empty object is skipped, one byte is kept", [[_object("empty", "2025-02-01T00:00:00", size=0),
                                                       _object("tiny", "2025-01-01T00:00:00", size=1)]], ["tiny"]),
    ("nothing", [[]], []),
]


@pytest.mark.parametrize("row, pages, names", LISTINGS, ids=[listing[0] for listing in LISTINGS])
def test_snapshots_are_listed_newest_first_by_time(row, pages, names):
    s3 = SESSION.client("s3")
    with Stubber(s3) as stub:
        for n, objects in enumerate(pages):
            more = n + 1 < len(pages)
            response = {"IsTruncated": more, "Name": BUCKET, "Prefix": f"{FOLDER}/", "MaxKeys": 1000,
                        "KeyCount": len(objects), **({"Contents": objects} if objects else {}),
                        **({"NextContinuationToken": f"token-{n + 2}"} if more else {})}
            token = {"ContinuationToken": f"token-{n + 1}"} if n else {}
            params = {"Bucket": BUCKET, "Prefix": f"{FOLDER}/", **token}
            stub.add_response("list_objects_v2", response, params)
        aws = SimpleNamespace(env=ENV, s3=s3, check_account=lambda: None)
        assert [s.name for s in snapshots.list_snapshots(aws, ROOT)] == names
        stub.assert_no_pending_responses()


def test_another_account_is_refused_before_the_bucket_is_listed():
    class Refused(Exception):
        pass

    def refuse():
        raise Refused("credentials are for account 999999999999")

    s3 = SESSION.client("s3")
    with Stubber(s3):  # nothing queued: a listing fails the test
        with pytest.raises(Refused):
            snapshots.list_snapshots(SimpleNamespace(env=ENV, s3=s3, check_account=refuse), ROOT)
