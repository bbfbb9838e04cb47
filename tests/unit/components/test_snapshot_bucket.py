"""The etcd snapshot bucket (k3s_infra/components/snapshot_bucket.py): encrypted, versioned,
expiring, retained in protected environments, and blocking every kind of public access (all
four S3 Block Public Access settings, each explicitly true:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html).
"""

from __future__ import annotations

from k3s_infra.components import snapshot_bucket
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import EtcdSnapshots

from tests.support.rendering import component_resources as _resources


def test_snapshot_bucket_blocks_every_kind_of_public_access():
    """All four S3 Block Public Access settings, each explicitly true
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html)."""
    t = StackTemplate("test", {})
    snapshot_bucket.build(t, EtcdSnapshots(), retain=False)
    block = _resources(t)["SnapshotBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    assert block == {"BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
                     "RestrictPublicBuckets": True}


def test_snapshot_bucket_is_encrypted_private_and_expiring(r):
    bucket = r.resources("ClusterData", "AWS::S3::Bucket")["SnapshotBucket"]
    p = bucket["Properties"]
    assert p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(p["PublicAccessBlockConfiguration"].values())
    assert p["VersioningConfiguration"]["Status"] == "Enabled"
    (rule,) = p["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == r.env.k3s.etcd_snapshots.expire_days
    # RetainExceptOnCreate: kept on delete, not by a failed first create's rollback
    assert bucket["DeletionPolicy"] == ("RetainExceptOnCreate" if r.env.protected else "Delete")
    assert bucket["UpdateReplacePolicy"] == ("Retain" if r.env.protected else "Delete")


def test_snapshot_bucket_is_versioned(r):
    bucket = r.resources("ClusterData", "AWS::S3::Bucket")["SnapshotBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
