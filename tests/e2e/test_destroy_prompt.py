"""destroy's question on a terminal comes after what it loses for good and what it keeps
(deploy/losses.py, cli/destroy.py): the snapshot objects the test put (every version and
delete marker, counted as emptying the bucket removes them: tests/e2e/destroy_table.py) with
their size, the secrets, the cluster key, the node-owned parameters. Answered no: nothing changes."""

from __future__ import annotations

import io

import pytest

# What the test puts in the snapshot bucket: three versions of one key, then a delete marker
# on it, and five more objects of 300 KiB. Expected: 3 + 1 + 5 = 9 objects of
# 1,000 + 2,000 + 3,000 + 5 * 307,200 = 1,542,000 bytes = 1.47 MiB (1 MiB = 1,048,576 bytes).
VERSIONS = (1_000, 2_000, 3_000)
OTHERS = 5
OTHER_SIZE = 300 * 1024
COUNT_AND_SIZE = "9 snapshot objects (1.5 MiB, every version)"


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _outputs(aws, stack: str) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in
            aws.cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}


def _fill(aws, bucket: str) -> None:
    for size in VERSIONS:
        aws.s3.put_object(Bucket=bucket, Key="etcd/dev/etcd-snapshot-a-1", Body=b"v" * size)
    aws.s3.delete_object(Bucket=bucket, Key="etcd/dev/etcd-snapshot-a-1")
    for i in range(OTHERS):
        aws.s3.put_object(Bucket=bucket, Key=f"etcd/dev/etcd-snapshot-b-{i}", Body=b"x" * OTHER_SIZE)


def _declined(cli, monkeypatch, *argv: str):
    asked = []
    monkeypatch.setattr("sys.stdin", Terminal(""))
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "n")
    result = cli("destroy", *argv)
    assert result.code == 1 and "not destroyed" in result.out, result
    assert len(asked) == 1 and asked[0].startswith("delete stack ")
    return result.out.splitlines()


@pytest.mark.parametrize("protected", [False, True])
def test_the_prompt_lists_what_is_lost_and_kept(cli, write_env, aws, monkeypatch, protected):
    stack = f"k3s-prompt-{'kept' if protected else 'gone'}"
    path = str(write_env(f"{stack}.yaml", protected=protected, deploy={"stack_name": stack}))
    assert cli("deploy", "--config", path, "--yes").code == 0
    bucket = _outputs(aws, stack)["SnapshotBucketName"]
    alias = f"alias/k3s-infra/{stack}"
    key = f"{aws.kms.describe_key(KeyId=alias)['KeyMetadata']['KeyId']} ({alias})"
    _fill(aws, bucket)
    marker = f"/k3s-infra/{stack}/cluster-state"
    aws.ssm.put_parameter(Name=marker, Value="initialised", Type="String", Overwrite=True)
    secrets = ", ".join(f"k3s-infra/{stack}/{what}" for what in ("token", "agent-token", "kubeconfig"))
    flags = ("--config", path, *(["--allow-protected"] if protected else []))

    lines = _declined(cli, monkeypatch, *flags)
    snapshots = f"  {COUNT_AND_SIZE} in s3://{bucket}"
    if protected:  # DeletionPolicy RetainExceptOnCreate keeps bucket, secrets and key
        assert lines[:4] == ["kept (protected environment: delete by hand when no longer needed):", snapshots,
                             f"  3 secrets: {secrets}", f"  the cluster key {key}"]
        assert lines[4:6] == ["deleted for good:", f"  the node-owned parameters {marker}"]
    else:  # secrets without a recovery window; the key after the template's PendingWindowInDays (7)
        assert lines[:5] == ["deleted for good:", snapshots, f"  3 secrets, without a recovery window: {secrets}",
                             f"  the cluster key {key}, after 7 days (until then: aws kms cancel-key-deletion)",
                             f"  the node-owned parameters {marker}"]
    # declined: nothing was touched
    versions = aws.s3.list_object_versions(Bucket=bucket)
    assert len(versions.get("Versions", [])) + len(versions.get("DeleteMarkers", [])) == 9

    monkeypatch.undo()
    destroyed = cli("destroy", *flags, "--yes")
    assert destroyed.code == 0, destroyed
    if protected:  # tidy the shared server: what the environment kept
        for secret in aws.secretsmanager.list_secrets()["SecretList"]:
            if f"/{stack}/" in secret["Name"]:
                aws.secretsmanager.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
        aws.kms.delete_alias(AliasName=alias)
