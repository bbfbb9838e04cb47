"""The cluster's OIDC issuer for pod IAM: a private S3 bucket behind CloudFront with origin
access control, and the IAM OIDC provider that trusts it.

Why CloudFront: STS fetches the issuer's discovery document and JWKS over public HTTPS. An
S3 website or public-read bucket would need S3 Block Public Access off (and many accounts
block it account-wide); CloudFront with origin access control reads a bucket that stays fully
private (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/private-content-restricting-access-to-s3.html).
The first server writes the two documents (bootstrap/first_server.sh publish_issuer); the
issuer URL is https://<distribution domain> (the kube-apiserver's service-account-issuer).
"""

from __future__ import annotations

from dataclasses import dataclass

from awacs.aws import Allow, Condition, PolicyDocument, Principal, Statement, StringEquals
from awacs.s3 import GetObject
from troposphere import GetAtt, Join, Ref, Sub
from troposphere.cloudfront import (
    DefaultCacheBehavior,
    Distribution,
    DistributionConfig,
    Origin,
    OriginAccessControl,
    OriginAccessControlConfig,
    S3OriginConfig,
)
from troposphere.iam import OIDCProvider
from troposphere.s3 import BucketPolicy, OwnershipControls, OwnershipControlsRule

from k3s_infra.components import buckets
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import defaults
from k3s_infra.model import pod_identity

DISCOVERY_KEY, JWKS_KEY = pod_identity.DISCOVERY_KEY, pod_identity.JWKS_KEY


@dataclass(frozen=True)
class IssuerRefs:
    url: Sub  # https://<distribution domain>, no trailing slash
    host: GetAtt  # the distribution's domain: the prefix of the trust conditions' keys
    bucket: Ref
    provider_arn: Ref


def build(t: StackTemplate, access_control_name: str, behind_cloudfront: bool = True) -> IssuerRefs:
    """The issuer; where CloudFront with origin access control does not exist (the aws-us-gov
    and aws-cn partitions: "Amazon CloudFront is not available in the AWS GovCloud (US)
    partition", AWS GovCloud (US) User Guide; no AWS::CloudFront::OriginAccessControl in
    aws-cn's resource types) the bucket serves its two documents itself (public_issuer)."""
    if not behind_cloudfront:
        return public_issuer(t)
    bucket = t.add(buckets.private_bucket(
        "IssuerBucket",
        OwnershipControls=OwnershipControls(Rules=[OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]),
    ), name_tag=False)
    for check, reason in (
            ("CKV_AWS_18", "two public documents the first server rewrites; CloudTrail data events audit writes"),
            ("CKV_AWS_21", "nothing to keep: the first server republishes both documents at every boot")):
        t.skip_check(bucket, check, reason)
    access = t.add(OriginAccessControl("IssuerOriginAccessControl", OriginAccessControlConfig=OriginAccessControlConfig(
        Name=access_control_name, Description="CloudFront reads the OIDC issuer bucket (SigV4)",
        OriginAccessControlOriginType="s3", SigningBehavior="always", SigningProtocol="sigv4")))
    distribution = t.add(Distribution("IssuerDistribution", DistributionConfig=DistributionConfig(
        Comment="OIDC issuer of the cluster's service account tokens", Enabled=True, HttpVersion="http2",
        IPV6Enabled=True, PriceClass="PriceClass_100",
        Origins=[Origin(Id="issuer", DomainName=GetAtt(bucket, "RegionalDomainName"),
                        # With origin access control the identity stays empty (CloudFront
                        # Developer Guide, "Restrict access to an Amazon S3 origin").
                        S3OriginConfig=S3OriginConfig(OriginAccessIdentity=""),
                        OriginAccessControlId=GetAtt(access, "Id"))],
        DefaultCacheBehavior=DefaultCacheBehavior(
            TargetOriginId="issuer", ViewerProtocolPolicy="https-only", AllowedMethods=["GET", "HEAD"],
            CachedMethods=["GET", "HEAD"], Compress=True, CachePolicyId=defaults.CLOUDFRONT_CACHING_DISABLED))))
    for check, reason in (
            ("CKV_AWS_68", "serves two public documents to STS; a WAF adds cost and no protection here"),
            ("CKV_AWS_86", "two public documents; CloudTrail records the bucket's writes"),
            ("CKV_AWS_174", "the default *.cloudfront.net certificate; a TLS 1.2 minimum needs a custom domain")):
        t.skip_check(distribution, check, reason)
    bucket_arn = GetAtt(bucket, "Arn")
    distribution_arn = Sub("arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${Id}",
                           Id=Ref(distribution))
    t.add(BucketPolicy("IssuerBucketPolicy", Bucket=Ref(bucket), PolicyDocument=PolicyDocument(
        Version="2012-10-17",
        Statement=[
            # Only this distribution reads, only objects (CloudFront Developer Guide, "Give the
            # origin access control permission to access the S3 bucket").
            Statement(Sid="CloudFrontReadsThroughOriginAccessControl", Effect=Allow,
                      Principal=Principal("Service", "cloudfront.amazonaws.com"), Action=[GetObject],
                      Resource=[Join("", [bucket_arn, "/*"])],
                      Condition=Condition(StringEquals("AWS:SourceArn", distribution_arn))),
            buckets.deny_insecure_transport(bucket_arn)])))
    host = GetAtt(distribution, "DomainName")
    url = Sub("https://${Host}", Host=host)
    return IssuerRefs(url=url, host=host, bucket=Ref(bucket), provider_arn=_provider(t, url))


def public_issuer(t: StackTemplate) -> IssuerRefs:
    """The bucket's regional HTTPS endpoint as the issuer, as amazon-eks-pod-identity-webhook's
    SELF_HOSTED_SETUP.md does: a bucket policy lets anyone read exactly the two documents; ACLs
    stay blocked, and nothing else in the bucket is readable. Account-wide S3 Block Public
    Access refuses that policy: such an account needs an exception for this bucket."""
    bucket = t.add(buckets.private_bucket("IssuerBucket", public_policy=True, OwnershipControls=OwnershipControls(
        Rules=[OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")])), name_tag=False)
    bucket_arn = GetAtt(bucket, "Arn")
    t.add(BucketPolicy("IssuerBucketPolicy", Bucket=Ref(bucket), PolicyDocument=PolicyDocument(
        Version="2012-10-17",
        Statement=[
            Statement(Sid="StsReadsTheIssuerDocuments", Effect=Allow, Principal=Principal("*"), Action=[GetObject],
                      Resource=[Join("", [bucket_arn, "/" + key]) for key in (DISCOVERY_KEY, JWKS_KEY)]),
            buckets.deny_insecure_transport(bucket_arn)])))
    host = GetAtt(bucket, "RegionalDomainName")
    url = Sub("https://${Host}", Host=host)
    return IssuerRefs(url=url, host=host, bucket=Ref(bucket), provider_arn=_provider(t, url))


def _provider(t: StackTemplate, url: Sub) -> Ref:
    """The IAM OIDC provider of the issuer, for the STS audience. With a thumbprint IAM needs
    nothing from the issuer when the provider is created (before the first server has
    published anything); for a certificate that chains to a CA IAM trusts (CloudFront's and
    S3's do) it is not used ("IAM uses its library of trusted root certificate authorities"
    and then does not use the thumbprints: IAM User Guide, "Obtain the thumbprint for an OpenID
    Connect identity provider"). This one is the value AWS's own EKS examples give."""
    return Ref(t.add(OIDCProvider("IssuerProvider", Url=url, ClientIdList=[defaults.TOKEN_AUDIENCE],
                                  ThumbprintList=[defaults.OIDC_THUMBPRINT])))
