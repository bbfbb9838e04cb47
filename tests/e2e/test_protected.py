"""A protected environment end to end: termination protection after deploy, destroy refused
without the override, and with it: protection lifted, stacks deleted, retained data named."""

from __future__ import annotations

STACK = "k3s-guarded-life"


def test_protected_environment_lifecycle(cli, write_env, aws):
    path = str(write_env("guarded-life.yaml", protected=True, deploy={"stack_name": STACK}))
    cfn = aws.cloudformation
    deployed = cli("deploy", "--config", path, "--yes")
    assert deployed.code == 0, deployed
    assert "termination protection on" in deployed.out
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["EnableTerminationProtection"] is True

    refused = cli("destroy", "--config", path, "--yes")
    assert refused.code == 2 and "--allow-protected" in refused.err, refused
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"

    status = cli("status", "--config", path)
    assert "termination protection on" in status.out.splitlines()[0], status

    destroyed = cli("destroy", "--config", path, "--yes", "--allow-protected")
    assert destroyed.code == 0, destroyed
    assert "termination protection removed" in destroyed.out
    live = [s for s in cfn.list_stacks()["StackSummaries"]
            if s["StackName"].startswith(STACK) and s["StackStatus"] != "DELETE_COMPLETE"]
    assert live == []
    # the config retains cluster data in protected environments: destroy says what it kept
    kept = destroyed.out.split("retained", 1)[1]
    assert "AWS::SecretsManager::Secret" in kept and "AWS::S3::Bucket" in kept, destroyed
    sm = aws.secretsmanager
    kept_secrets = [x["ARN"] for x in sm.list_secrets()["SecretList"] if f"/{STACK}/" in x["Name"]]
    assert len(kept_secrets) == 3 and all(arn in kept for arn in kept_secrets)
    # a redeploy would collide with the kept names: refused before anything is uploaded, each named
    again = cli("deploy", "--config", path, "--yes")
    assert again.code == 2, again
    assert all(f"k3s-infra/{STACK}/{what}" in again.err for what in ("token", "agent-token", "kubeconfig"))
    assert "delete-secret" in again.err and "stack_name" in again.err
    assert [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == STACK
            and s["StackStatus"] != "DELETE_COMPLETE"] == []
    for arn in kept_secrets:  # tidy the shared server
        sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
