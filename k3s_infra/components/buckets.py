"""What every bucket of the cluster shares: SSE-S3 with a bucket key, all public access
blocked, and a policy statement refusing plain HTTP."""

from __future__ import annotations

from awacs.aws import Bool, Condition, Deny, Principal, Statement
from awacs.s3 import Action as S3Action
from troposphere import GetAtt, Join
from troposphere.s3 import (
    Bucket,
    BucketEncryption,
    PublicAccessBlockConfiguration,
    ServerSideEncryptionByDefault,
    ServerSideEncryptionRule,
)


def private_bucket(logical: str, public_policy: bool = False, **properties) -> Bucket:
    """``public_policy``: a bucket policy may still grant public reads (ACLs stay blocked)."""
    return Bucket(
        logical,
        BucketEncryption=BucketEncryption(ServerSideEncryptionConfiguration=[ServerSideEncryptionRule(
            ServerSideEncryptionByDefault=ServerSideEncryptionByDefault(SSEAlgorithm="AES256"),
            BucketKeyEnabled=True)]),
        PublicAccessBlockConfiguration=PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=not public_policy, IgnorePublicAcls=True,
            RestrictPublicBuckets=not public_policy),
        **properties)


def deny_insecure_transport(bucket_arn: GetAtt) -> Statement:
    return Statement(Sid="DenyInsecureTransport", Effect=Deny, Principal=Principal("*"), Action=[S3Action("*")],
                     Resource=[bucket_arn, Join("", [bucket_arn, "/*"])],
                     Condition=Condition(Bool("aws:SecureTransport", False)))
