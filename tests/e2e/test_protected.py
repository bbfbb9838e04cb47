"""A protected environment end to end: termination protection after deploy, destroy refused
without the override, and with it: protection lifted, stacks deleted, retained data named."""

from __future__ import annotations
from tests.support.emulated_account import FIRST_DEPLOY_STATUS

STACK = "k3s-guarded-life"


def _api_load_balancers(aws, stack: str = STACK) -> list[str]:
    cfn = aws.cloudformation
    api = cfn.describe_stack_resource(StackName=stack, LogicalResourceId="ApiEndpoint")
    outputs = cfn.describe_stacks(StackName=api["StackResourceDetail"]["PhysicalResourceId"])["Stacks"][0]["Outputs"]
    return [o["OutputValue"] for o in outputs if o["OutputKey"] in ("ApiLoadBalancerArn", "PublicApiLoadBalancerArn")]


def _api_load_balancers_gone(aws, arns: list[str]) -> bool:
    present = {lb["LoadBalancerArn"] for lb in aws.elbv2.describe_load_balancers()["LoadBalancers"]}
    return not present & set(arns)


def _deletion_protection(aws, arn: str) -> bool:
    attributes = aws.elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    return {a["Key"]: a["Value"] for a in attributes}.get("deletion_protection.enabled") == "true"


def test_protected_environment_lifecycle(cli, write_env, aws):
    path = str(write_env("guarded-life.yaml", protected=True, deploy={"stack_name": STACK}))
    cfn = aws.cloudformation
    deployed = cli("deploy", "--config", path, "--yes")
    assert deployed.code == 0, deployed
    assert "termination protection on" in deployed.out
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["EnableTerminationProtection"] is True
    # deploy turned on the API load balancers' deletion protection (issue 23), not the template
    api = _api_load_balancers(aws)
    assert api and all(_deletion_protection(aws, arn) for arn in api)

    refused = cli("destroy", "--config", path, "--yes")
    assert refused.code == 2 and "--allow-protected" in refused.err, refused
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == FIRST_DEPLOY_STATUS

    status = cli("status", "--config", path)
    assert "termination protection on" in status.out.splitlines()[0], status

    destroyed = cli("destroy", "--config", path, "--yes", "--allow-protected")
    assert destroyed.code == 0, destroyed
    assert "termination protection removed" in destroyed.out
    assert "deletion protection removed from the load balancers" in destroyed.out, destroyed
    assert _api_load_balancers_gone(aws, api)
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
    # the kept key keeps its alias (issue 23), and the alias's name is refused like the secrets'
    kms = aws.kms
    alias = f"alias/k3s-infra/{STACK}"
    (entry,) = [a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == alias]
    assert entry["TargetKeyId"] in kept, destroyed
    assert f"{alias}  (KMS alias of the kept cluster key)" in again.err and "delete-alias" in again.err
    assert [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == STACK
            and s["StackStatus"] != "DELETE_COMPLETE"] == []
    for arn in kept_secrets:  # tidy the shared server
        sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    kms.delete_alias(AliasName=alias)

