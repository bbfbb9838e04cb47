"""S3 bucket for etcd snapshots: encrypted, private, versioned, TLS only, expiring."""

from __future__ import annotations

from dataclasses import dataclass

from awacs.aws import Bool as BoolCondition
from awacs.aws import Condition, Deny, PolicyDocument, Principal, Statement
from awacs.s3 import Action as S3Action
from troposphere import GetAtt, Join, Ref
from troposphere.s3 import (
    AbortIncompleteMultipartUpload,
    Bucket,
    BucketEncryption,
    BucketPolicy,
    LifecycleConfiguration,
    LifecycleRule,
    NoncurrentVersionExpiration,
    PublicAccessBlockConfiguration,
    ServerSideEncryptionByDefault,
    ServerSideEncryptionRule,
    VersioningConfiguration,
)

from k3s_infra.components.template import StackTemplate
from k3s_infra.config import EtcdSnapshots


@dataclass(frozen=True)
class BucketRefs:
    name: Ref
    arn: GetAtt


def build(t: StackTemplate, snapshots: EtcdSnapshots, retain: bool) -> BucketRefs:
    bucket = t.add(Bucket(
        "SnapshotBucket",
        BucketEncryption=BucketEncryption(ServerSideEncryptionConfiguration=[ServerSideEncryptionRule(
            ServerSideEncryptionByDefault=ServerSideEncryptionByDefault(SSEAlgorithm="AES256"),
            BucketKeyEnabled=True)]),
        PublicAccessBlockConfiguration=PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True),
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
        Statement=[Statement(
            Sid="DenyInsecureTransport", Effect=Deny, Principal=Principal("*"), Action=[S3Action("*")],
            Resource=[bucket_arn, Join("", [bucket_arn, "/*"])],
            Condition=Condition(BoolCondition("aws:SecureTransport", False)))])))
    return BucketRefs(name=Ref(bucket), arn=bucket_arn)

