"""Packaging: every child template into the artifact bucket under its
content-addressed key (unchanged children are not uploaded again); the bucket is
created encrypted, private and owner-enforced when it does not exist. The enabled
add-ons' manifests go there too (bootstrap/bundle.py addons_object), SSE-KMS, since
they hold the user's chart values and are in no template."""

from __future__ import annotations

from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from k3s_infra.bootstrap import bundle
from k3s_infra.model import naming
from k3s_infra.render import Rendering

# How the add-ons' manifests appear among the uploaded files.
ADDONS_FILE = "addons (manifests)"
# CloudFormation accepts at most this many bytes inline (TemplateBody); more needs S3.
MAX_INLINE_BODY = 51_200


@dataclass
class Package:
    rendering: Rendering
    uploaded: list[str]
    reused: list[str]
    # The root CloudFormation gets, by change set type: CREATE takes the root of a first create
    # (node stacks together), UPDATE the ordered one (stacks/root.py roll_order). A body, or
    # the URL of a root too large to send inline.
    roots: dict[str, dict[str, str]] = field(default_factory=dict)

    def template_args(self, change_set_type: str = "UPDATE") -> dict[str, str]:
        """TemplateBody or TemplateURL for the root, whichever CloudFormation accepts."""
        return self.roots[change_set_type]


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def ensure_bucket(s3, bucket: str, region: str, tags: dict[str, str]) -> bool:
    """Create the artifact bucket if needed. Returns True when it was created."""
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    args: dict = {"Bucket": bucket}
    if region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**args)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True,
        "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]})
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    if tags:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
    return True


def _exists(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def package(aws, rendering: Rendering) -> Package:
    """Upload the children (content-addressed: an existing key already holds these bytes)."""
    env = rendering.env
    bucket = env.artifact_bucket
    ensure_bucket(aws.s3, bucket, env.region, naming.cluster_tags(env))
    uploaded, reused = [], []
    for child in rendering.children:
        if _exists(aws.s3, bucket, child.key):
            reused.append(child.file)
            continue
        aws.s3.put_object(Bucket=bucket, Key=child.key, Body=child.body.encode(),
                          ContentType="text/yaml" if rendering.fmt == "yaml" else "application/json")
        uploaded.append(child.file)
    charts = bundle.addons_object(env)
    if charts:
        if _exists(aws.s3, bucket, charts.key):
            reused.append(ADDONS_FILE)
        else:
            # aws:kms with the account's AWS managed key for S3 (aws/s3): its key policy lets
            # principals of this account use it only through S3 (AWS KMS Developer Guide, "AWS
            # managed keys"), so the server roles' s3:GetObject on this key is all they need.
            aws.s3.put_object(Bucket=bucket, Key=charts.key, Body=charts.body.encode(), ContentType="text/yaml",
                              ServerSideEncryption="aws:kms")
            uploaded.append(ADDONS_FILE)
    result = Package(rendering, uploaded, reused)
    for kind, root in (("UPDATE", rendering.root), ("CREATE", rendering.create_root or rendering.root)):
        if len(root.body.encode()) <= MAX_INLINE_BODY:
            result.roots[kind] = {"TemplateBody": root.body}
            continue
        key = naming.artifact_key(env, root.file, root.sha256)
        if not _exists(aws.s3, bucket, key):
            aws.s3.put_object(Bucket=bucket, Key=key, Body=root.body.encode())
        result.roots[kind] = {"TemplateURL": naming.template_url(env, key)}
    return result
