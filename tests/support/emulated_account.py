"""The emulated AWS account every end-to-end test deploys into (tests/e2e/conftest.py
builds it in a moto server)."""

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's account, as in environments/dev.yaml
# The root's status after a first deploy: the create, then the update that records the roll
# order (deploy/roll_order.py), which the emulator carries out as an update.
FIRST_DEPLOY_STATUS = "UPDATE_COMPLETE"
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
AMI_PARAMETER_ARM64 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"


def nested_outputs(aws, stack: str, logical: str) -> dict[str, str]:
    """Outputs of the root ``stack``'s nested stack ``logical``, as deployed in the emulator."""
    cfn = aws.cloudformation
    (resource,) = [r for r in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
                   if r["LogicalResourceId"] == logical]
    nested = cfn.describe_stacks(StackName=resource["PhysicalResourceId"])["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in nested.get("Outputs", [])}
