"""S3 bucket for etcd snapshots: encrypted, private, versioned, TLS only, expiring."""

from __future__ import annotations

from dataclasses import dataclass

from awacs.aws import PolicyDocument
from troposphere import GetAtt, Ref
from troposphere.s3 import (
    AbortIncompleteMultipartUpload,
    BucketPolicy,
    LifecycleConfiguration,
    LifecycleRule,
    NoncurrentVersionExpiration,
    VersioningConfiguration,
)

from k3s_infra.components import buckets
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import EtcdSnapshots


@dataclass(frozen=True)
class BucketRefs:
    name: Ref
    arn: GetAtt


def build(t: StackTemplate, snapshots: EtcdSnapshots, retain: bool) -> BucketRefs:
    bucket = t.add(buckets.private_bucket(
        "SnapshotBucket",
        VersioningConfiguration=VersioningConfiguration(Status="Enabled"),
        LifecycleConfiguration=LifecycleConfiguration(Rules=[LifecycleRule(
            Id="expire-snapshots", Status="Enabled", ExpirationInDays=snapshots.expire_days,
            NoncurrentVersionExpiration=NoncurrentVersionExpiration(NoncurrentDays=7),
            AbortIncompleteMultipartUpload=AbortIncompleteMultipartUpload(DaysAfterInitiation=1))]),
    ), name_tag=False)
    t.set_retention(bucket, retain)
    t.skip_check(bucket, "CKV_AWS_18", "only the server role writes here, under one prefix; object access is "
                                       "audited with CloudTrail data events, not a second log bucket per cluster")
    bucket_arn = GetAtt(bucket, "Arn")
    t.add(BucketPolicy("SnapshotBucketPolicy", Bucket=Ref(bucket), PolicyDocument=PolicyDocument(
        Version="2012-10-17",
        Statement=[buckets.deny_insecure_transport(bucket_arn)])))
    return BucketRefs(name=Ref(bucket), arn=bucket_arn)

