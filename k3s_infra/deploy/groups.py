"""The cluster's nested stacks and node groups as deployed, found through the root;
their auto scaling groups described in batches of at most 50 names per call
(https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingGroups.html:
"You can specify up to 50 names")."""

from __future__ import annotations

from botocore.exceptions import ClientError

from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.deploy import stack_states
from k3s_infra.deploy.events import STACK_TYPE

MAX_NAMES_PER_CALL = 50


def describe_groups(autoscaling, names: list[str]) -> dict[str, dict]:
    """Auto scaling group name -> description; names that do not exist are absent."""
    result: dict[str, dict] = {}
    unique = list(dict.fromkeys(names))
    for start in range(0, len(unique), MAX_NAMES_PER_CALL):
        batch = unique[start:start + MAX_NAMES_PER_CALL]
        for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate(AutoScalingGroupNames=batch):
            result.update({g["AutoScalingGroupName"]: g for g in page["AutoScalingGroups"]})
    return result


def nested_stack(cfn, root_id: str, logical_id: str) -> dict | None:
    """The described nested stack ``logical_id`` of the root, or None when it has none."""
    try:
        found = cfn.describe_stack_resource(StackName=root_id, LogicalResourceId=logical_id)
    except ClientError:
        return None
    physical = found.get("StackResourceDetail", {}).get("PhysicalResourceId")
    if not physical:
        return None
    stacks = cfn.describe_stacks(StackName=physical)["Stacks"]
    return stacks[0] if stacks and stacks[0]["StackStatus"] != stack_states.DELETE_COMPLETE else None


def nested_stacks(cfn, stack: str) -> list[tuple[str, dict]]:
    """(logical ID, described stack) of the root's nested stacks; one that cannot be
    described shows its resource status and no outputs."""
    result = []
    pages = cfn.get_paginator("list_stack_resources").paginate(StackName=stack)
    for summary in (s for page in pages for s in page["StackResourceSummaries"]):
        if summary.get("ResourceType") == STACK_TYPE and summary.get("PhysicalResourceId"):
            try:
                result.append((summary["LogicalResourceId"],
                               cfn.describe_stacks(StackName=summary["PhysicalResourceId"])["Stacks"][0]))
            except ClientError:
                result.append((summary["LogicalResourceId"],
                               {"StackStatus": summary.get("ResourceStatus", "?"), "Outputs": []}))
    return result


def outputs(stack: dict | None) -> dict[str, str]:
    return {i["OutputKey"]: i["OutputValue"] for i in (stack or {}).get("Outputs", [])}


def cluster_vpc(aws, root_id: str) -> str | None:
    """The cluster's VPC: the file's, or the managed Network stack's VpcId output (None when
    that cannot be read: deploy/leftovers.py then searches the region by the tag alone)."""
    if not aws.env.network.managed:
        return aws.env.network.vpc_id
    return outputs(nested_stack(aws.cloudformation, root_id, naming.STACK_NETWORK)).get(o.VPC_ID)


def parameters(stack: dict | None) -> dict[str, str]:
    return {i["ParameterKey"]: i.get("ParameterValue", "") for i in (stack or {}).get("Parameters", [])}


def group_of(aws, root_id: str, logical_id: str) -> tuple[dict | None, dict | None]:
    """(nested stack, its auto scaling group) for a node group stack of the root."""
    stack = nested_stack(aws.cloudformation, root_id, logical_id)
    name = outputs(stack).get(o.AUTO_SCALING_GROUP)
    if not name:
        return stack, None
    return stack, describe_groups(aws.autoscaling, [name]).get(name)
