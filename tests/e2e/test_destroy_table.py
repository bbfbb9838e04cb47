"""destroy, per environment kind, against destroy_table.py: one deploy each (unprotected,
protected), data put where a running cluster puts it (snapshot versions and a delete marker,
the node-owned parameters), then each destroy variant and the emulator's state read back."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from k3s_infra.config import load_environment
from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from tests.e2e.destroy_table import COLUMNS, DESTROY, EXIT, SOURCES


@dataclass
class Seen:
    """What the deploy made and the test put there, found before any destroy."""
    stack: str
    snapshot_bucket: str
    issuer_bucket: str
    key_id: str
    alias: str
    secrets: list[str]
    node_parameters: list[str]
    stack_parameters: list[str]
    artifact_bucket: str
    snapshot_versions: int
    template_versions: int


def _versions(s3, bucket: str, prefix: str) -> int | None:
    """Object versions and delete markers under ``prefix``; None: no such bucket."""
    try:
        pages = list(s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix))
    except ClientError:
        return None
    return sum(len(p.get("Versions", [])) + len(p.get("DeleteMarkers", [])) for p in pages)


def _deploy_and_seed(cli, write_env, aws, stack: str, **overrides) -> tuple[str, Seen]:
    path = str(write_env(f"{stack}.yaml", deploy={"stack_name": stack}, **overrides))
    deployed = cli("deploy", "--config", path, "--yes")
    assert deployed.code == 0, deployed
    env = load_environment(path=path)
    outputs = {i["OutputKey"]: i["OutputValue"] for i in
               aws.cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
    alias = naming.cluster_key_alias(naming.cluster_name(env))
    (key_id,) = [a["TargetKeyId"] for a in aws.kms.list_aliases()["Aliases"] if a["AliasName"] == alias]
    stack_parameters = [p["Name"] for p in aws.ssm.get_parameters_by_path(
        Path=f"/{naming.TAG_PREFIX}/{stack}", Recursive=True)["Parameters"]]
    node_parameters = [naming.cluster_state_parameter(env), naming.restore_request_parameter(env)]
    for name in node_parameters:  # as the first server and 'restore' write them
        aws.ssm.put_parameter(Name=name, Value="x", Type="String", Overwrite=True)
    bucket = outputs[o.SNAPSHOT_BUCKET]
    for body in (b"v1", b"v2"):  # two versions of one snapshot, a delete marker, another snapshot
        aws.s3.put_object(Bucket=bucket, Key="etcd/dev/etcd-snapshot-a-1", Body=body)
    aws.s3.delete_object(Bucket=bucket, Key="etcd/dev/etcd-snapshot-a-1")
    aws.s3.put_object(Bucket=bucket, Key="etcd/dev/etcd-snapshot-b-2", Body=b"v1")
    seen = Seen(stack, bucket, outputs[o.ISSUER_BUCKET], key_id, alias,
                [naming.secret_name(env, what) for what in ("token", "agent-token", "kubeconfig")],
                node_parameters, stack_parameters, env.artifact_bucket, 4,
                _versions(aws.s3, env.artifact_bucket, f"{stack}/") or 0)
    assert seen.stack_parameters and seen.template_versions, seen  # something for each row to delete
    assert _observe(aws, seen) == {item: "kept" for item in DESTROY}
    return path, seen


def _one(states: list[str]) -> str:
    return states[0] if len(set(states)) == 1 else f"mixed {states}"


def _exists(call, missing: tuple[str, ...], **kwargs) -> bool:
    try:
        call(**kwargs)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] in missing:
            return False
        raise


def _secret(aws, name: str) -> str:
    try:
        described = aws.secretsmanager.describe_secret(SecretId=name)
    except aws.secretsmanager.exceptions.ResourceNotFoundException:
        return "deleted"
    return "deleted" if "DeletedDate" in described else "kept"  # scheduled: no longer readable either


def _key(aws, key_id: str) -> str:
    try:
        state = aws.kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
    except aws.kms.exceptions.NotFoundException:
        return "deleted"
    return {"Enabled": "kept", "PendingDeletion": "scheduled"}.get(state, state)


def _count(found: int | None, before: int) -> str:
    return "deleted" if not found else "kept" if found == before else f"{found} of {before} versions"


def _observe(aws, seen: Seen) -> dict[str, str]:
    """The words of destroy_table.py for what the emulator holds now."""
    live = [s for s in aws.cloudformation.list_stacks()["StackSummaries"]
            if s["StackName"].startswith(seen.stack) and s["StackStatus"] != "DELETE_COMPLETE"]
    bucket = {name: "kept" if _exists(aws.s3.head_bucket, ("404", "NoSuchBucket"), Bucket=name) else "deleted"
              for name in (seen.snapshot_bucket, seen.issuer_bucket)}
    aliases = {a["AliasName"] for a in aws.kms.list_aliases()["Aliases"]}

    def parameter(name: str) -> str:
        return "kept" if _exists(aws.ssm.get_parameter, ("ParameterNotFound",), Name=name) else "deleted"

    return {
        "stacks": "kept" if live else "deleted",
        "snapshot bucket": bucket[seen.snapshot_bucket],
        "snapshot objects": _count(_versions(aws.s3, seen.snapshot_bucket, "etcd/"), seen.snapshot_versions),
        "issuer bucket": bucket[seen.issuer_bucket],
        "secrets": _one([_secret(aws, name) for name in seen.secrets]),
        "kms key": _key(aws, seen.key_id),
        "kms alias": "kept" if seen.alias in aliases else "deleted",
        "node parameters": _one([parameter(name) for name in seen.node_parameters]),
        "stack parameters": _one([parameter(name) for name in seen.stack_parameters]),
        "templates": _count(_versions(aws.s3, seen.artifact_bucket, f"{seen.stack}/"), seen.template_versions),
    }


def _column(kind: str) -> dict[str, str]:
    return {item: row[COLUMNS.index(kind)] for item, row in DESTROY.items()}


def test_the_table_cites_a_source_for_every_row():
    assert set(SOURCES) == set(DESTROY) and all("http" in SOURCES[i] or ".py" in SOURCES[i] for i in SOURCES)


def test_destroy_of_an_unprotected_environment(cli, write_env, aws):
    path, seen = _deploy_and_seed(cli, write_env, aws, "k3s-table-open")
    # --allow-protected lifts protection this environment does not have: the same destroy
    plain = cli("destroy", "--config", path, "--dry-run")
    flagged = cli("destroy", "--config", path, "--dry-run", "--allow-protected")
    assert (plain.code, plain.out) == (flagged.code, flagged.out) == (0, plain.out), (plain, flagged)
    destroyed = cli("destroy", "--config", path, "--yes")
    assert destroyed.code == EXIT["unprotected"], destroyed
    assert _observe(aws, seen) == _column("unprotected"), destroyed


def test_destroy_of_a_protected_environment(cli, write_env, aws):
    path, seen = _deploy_and_seed(cli, write_env, aws, "k3s-table-kept", protected=True)
    refused = cli("destroy", "--config", path, "--yes")
    assert refused.code == EXIT["protected"] and "--allow-protected" in refused.err, refused
    assert _observe(aws, seen) == _column("protected"), refused
    destroyed = cli("destroy", "--config", path, "--yes", "--allow-protected")
    assert destroyed.code == EXIT["protected --allow-protected"], destroyed
    assert _observe(aws, seen) == _column("protected --allow-protected"), destroyed
    # tidy the shared server: what the destroy kept, as a person would remove it
    for name in seen.secrets:
        aws.secretsmanager.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    aws.kms.delete_alias(AliasName=seen.alias)
    aws.kms.schedule_key_deletion(KeyId=seen.key_id, PendingWindowInDays=7)
    for page in aws.s3.get_paginator("list_object_versions").paginate(Bucket=seen.snapshot_bucket):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            aws.s3.delete_object(Bucket=seen.snapshot_bucket, Key=item["Key"], VersionId=item["VersionId"])
    aws.s3.delete_bucket(Bucket=seen.snapshot_bucket)
