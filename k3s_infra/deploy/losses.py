"""What a destroy loses for good and what it keeps, read before it asks (nothing changes):
the etcd snapshots in the snapshot bucket, the cluster's secrets, its KMS key and the
node-owned SSM parameters. ``destroy`` shows it with its question; the library only returns it.

What becomes of each (tests/e2e/destroy_table.py holds the whole table, with its sources):
- a protected environment (``protected: true``) keeps the snapshot bucket with every object,
  the secrets and the key (DeletionPolicy RetainExceptOnCreate, components/template.py);
- otherwise destroy empties the snapshot bucket (every version and delete marker) before the
  stack delete; CloudFormation deletes the secrets without a recovery window (the resource has
  no property for one: https://github.com/aws-cloudformation/cloudformation-coverage-roadmap/issues/1999)
  and schedules the key's deletion after its PendingWindowInDays, cancellable until then
  (https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html);
- the node-owned parameters belong to no stack: destroy deletes them either way."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from k3s_infra.components.cluster_key import PENDING_WINDOW_DAYS
from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.deploy import changeset, retained


@dataclass(frozen=True)
class BucketContents:
    bucket: str
    objects: int | None  # object versions and delete markers; None: could not be listed
    size: int = 0        # bytes, every version
    error: str = ""      # why it could not be listed


@dataclass(frozen=True)
class Losses:
    protected: bool                   # the snapshot bucket (with its contents), secrets and key are kept
    snapshots: BucketContents | None  # None: the stack names no snapshot bucket (yet)
    secrets: tuple[str, ...]          # this environment's secrets that exist now
    key: str | None                   # the cluster key: "<key ID> (<alias>)"
    key_pending_days: int             # days before KMS deletes a key that is not kept
    parameters: tuple[str, ...]       # node-owned SSM parameters present: deleted either way


def assess(aws) -> Losses | None:
    """What destroying ``aws.env``'s stack would lose or keep; None when there is no stack."""
    env = aws.env
    root = changeset.stack_state(aws.cloudformation, env.stack_name)
    if root is None:
        return None
    outputs = {item["OutputKey"]: item["OutputValue"] for item in root.get("Outputs", [])}
    bucket = outputs.get(o.SNAPSHOT_BUCKET)
    secrets = tuple(name for name, deleting in retained.existing(aws) if not deleting)
    return Losses(env.protected, bucket_contents(aws.s3, bucket) if bucket else None, secrets,
                  _key(aws), PENDING_WINDOW_DAYS[False], _parameters(aws))


def bucket_contents(s3, bucket: str) -> BucketContents:
    """Every object version and delete marker of ``bucket`` (what emptying it removes), and the
    bytes of the versions (a delete marker has none)."""
    objects = size = 0
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            objects += len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))
            size += sum(version.get("Size", 0) for version in page.get("Versions", []))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        return BucketContents(bucket, 0 if code == "NoSuchBucket" else None, error=code)
    return BucketContents(bucket, objects, size)


def _key(aws) -> str | None:
    """The cluster key, by its alias ("<key ID> (alias/...)"): the key's ID is generated, the
    alias is how a person finds it (components/cluster_key.py). ListAliases, as a first deploy
    reads it (deploy/retained.py): no other KMS permission needed. None: no key holds it."""
    alias = naming.cluster_key_alias(naming.cluster_name(aws.env))
    for page in aws.client("kms").get_paginator("list_aliases").paginate():
        for entry in page.get("Aliases", []):
            if entry.get("AliasName") == alias and entry.get("TargetKeyId"):
                return f"{entry['TargetKeyId']} ({alias})"
    return None


def _parameters(aws) -> tuple[str, ...]:
    names = [naming.cluster_state_parameter(aws.env), naming.restore_request_parameter(aws.env)]
    found = {p["Name"] for p in aws.ssm.get_parameters(Names=names).get("Parameters", [])}
    return tuple(name for name in names if name in found)
