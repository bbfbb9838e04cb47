"""Lifecycle leaves nothing behind and nothing stuck (issue #12.6), through the real CLI
on the session's moto server."""

from __future__ import annotations

import io

import pytest
from botocore.exceptions import ClientError


def live_stacks(aws, prefix: str) -> list[str]:
    return [s["StackName"] for s in aws.cloudformation.list_stacks()["StackSummaries"]
            if s["StackName"].startswith(prefix) and s["StackStatus"] != "DELETE_COMPLETE"]


def test_destroy_empties_the_versioned_snapshot_bucket(cli, write_env, aws):
    stack = "k3s-versions"
    path = str(write_env("versions.yaml", deploy={"stack_name": stack}))
    assert cli("deploy", "--config", path, "--yes").code == 0
    bucket = {o["OutputKey"]: o["OutputValue"] for o in
              aws.cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}["SnapshotBucketName"]
    assert aws.s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    for i in range(3):  # three versions of one snapshot, then a delete marker, plus others
        aws.s3.put_object(Bucket=bucket, Key="etcd/dev/etcd-snapshot-a-1", Body=f"v{i}".encode())
    aws.s3.delete_object(Bucket=bucket, Key="etcd/dev/etcd-snapshot-a-1")
    for i in range(5):
        aws.s3.put_object(Bucket=bucket, Key=f"etcd/dev/etcd-snapshot-b-{i}", Body=b"x")
    aws.ssm.put_parameter(Name=f"/k3s-infra/{stack}/cluster-state", Value="initialised", Type="String",
                          Overwrite=True)  # still a stack resource until the boot change lands
    result = cli("destroy", "--config", path, "--yes")
    assert result.code == 0, result
    assert "emptied the snapshot bucket" in result.out and "(9 object versions" in result.out, result
    with pytest.raises(ClientError):
        aws.s3.head_bucket(Bucket=bucket)
    assert live_stacks(aws, stack) == []
    # the node-owned marker belongs to no stack: destroy removes it
    with pytest.raises(aws.ssm.exceptions.ParameterNotFound):
        aws.ssm.get_parameter(Name=f"/k3s-infra/{stack}/cluster-state")


def test_deploy_without_terminal_uploads_nothing_and_leaves_no_stack(cli, write_env, aws, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    path = str(write_env("noterm.yaml", deploy={"stack_name": "k3s-noterm"}))
    result = cli("deploy", "--config", path)
    assert result.code == 2 and "--yes" in result.err, result
    assert live_stacks(aws, "k3s-noterm") == []
    try:  # the shared artifact bucket may not even exist yet: nothing was uploaded either way
        keys = [o["Key"] for o in aws.s3.list_objects_v2(Bucket="k3s-infra-123456789012-eu-west-1",
                                                         Prefix="k3s-noterm/").get("Contents", [])]
    except aws.s3.exceptions.NoSuchBucket:
        keys = []
    assert keys == []


@pytest.mark.parametrize("answer", ["n", KeyboardInterrupt])
def test_no_or_ctrl_c_at_the_prompt_deletes_the_change_set_and_the_empty_stack(cli, write_env, aws, monkeypatch,
                                                                               answer):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    def reply(prompt):
        if answer is KeyboardInterrupt:
            raise KeyboardInterrupt
        return answer

    monkeypatch.setattr("sys.stdin", Terminal(""))
    monkeypatch.setattr("builtins.input", reply)
    path = str(write_env("prompted.yaml", deploy={"stack_name": "k3s-prompted"}))
    result = cli("deploy", "--config", path)
    assert result.code == (1 if answer == "n" else 130), result
    assert "change set discarded" in result.out
    assert live_stacks(aws, "k3s-prompted") == []  # the REVIEW_IN_PROGRESS stack is gone too


def test_protected_failed_create_rolls_back_clean_and_can_be_retried(cli, write_env, aws, monkeypatch):
    """A failure after some named secrets exist: the kubeconfig secret's name is taken, so the
    token secrets are created first and the kubeconfig one fails. With Retain the rollback
    would keep the token secrets and the retry would fail on their names. (deploy's own
    check for taken names is bypassed here, as if the name were taken after it ran.)"""
    stack = "k3s-retry"
    sm = aws.secretsmanager
    blocker = sm.create_secret(Name=f"k3s-infra/{stack}/kubeconfig", SecretString="in the way")["ARN"]
    path = str(write_env("retry.yaml", protected=True, deploy={"stack_name": stack}))
    with monkeypatch.context() as patched:
        patched.setattr("k3s_infra.deploy.retained.check_first_deploy", lambda aws, root: None)
        failed = cli("deploy", "--config", path, "--yes")
    assert failed.code == 1 and "ROLLBACK_COMPLETE" in failed.out, failed
    left = [s["Name"] for s in sm.list_secrets()["SecretList"] if f"/{stack}/" in s["Name"]]
    assert left == [f"k3s-infra/{stack}/kubeconfig"], left  # only the blocker: nothing retained
    sm.delete_secret(SecretId=blocker, ForceDeleteWithoutRecovery=True)
    assert cli("destroy", "--config", path, "--yes", "--allow-protected").code == 0
    retried = cli("deploy", "--config", path, "--yes")
    assert retried.code == 0, retried
    destroyed = cli("destroy", "--config", path, "--yes", "--allow-protected")
    assert destroyed.code == 0, destroyed
    for secret in sm.list_secrets()["SecretList"]:  # tidy the shared server (kept: protected)
        if f"/{stack}/" in secret["Name"]:
            sm.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)
