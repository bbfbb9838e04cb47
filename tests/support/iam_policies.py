"""Walking IAM in rendered templates: every Allow statement of every identity policy, and the
statements of the server role that grant the AWS cloud controller's actions, against the
controller's documented policy (kubernetes/cloud-provider-aws v1.33.0 docs/prerequisites.md).

Used by tests/properties/test_least_privilege_iam.py, tests/unit/components/test_iam.py and
the autoscaler's tests."""

from __future__ import annotations


def allow_statements(templates: dict[str, dict]):
    """(stack, resource, statement) for every Allow in an identity policy."""
    for stack_id, template in templates.items():
        for logical, resource in template["Resources"].items():
            p = resource.get("Properties", {})
            documents = []
            if resource["Type"] == "AWS::IAM::Role":
                documents = [policy["PolicyDocument"] for policy in p.get("Policies", [])]
            elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                documents = [p["PolicyDocument"]]
            for document in documents:
                for statement in document["Statement"]:
                    if statement["Effect"] == "Allow":
                        yield stack_id, logical, statement


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# The documented policy of the controller, kubernetes/cloud-provider-aws v1.33.0 docs/prerequisites.md
# (control plane policy), fixed here as the reference.
OFFICIAL_CCM_POLICY = frozenset("""
autoscaling:DescribeAutoScalingGroups autoscaling:DescribeLaunchConfigurations autoscaling:DescribeTags
ec2:DescribeInstances ec2:DescribeRegions ec2:DescribeRouteTables ec2:DescribeSecurityGroups ec2:DescribeSubnets
ec2:DescribeVolumes ec2:DescribeAvailabilityZones ec2:CreateSecurityGroup ec2:CreateTags ec2:CreateVolume
ec2:ModifyInstanceAttribute ec2:ModifyVolume ec2:AttachVolume ec2:AuthorizeSecurityGroupIngress ec2:CreateRoute
ec2:DeleteRoute ec2:DeleteSecurityGroup ec2:DeleteVolume ec2:DetachVolume ec2:RevokeSecurityGroupIngress
ec2:DescribeVpcs ec2:DescribeInstanceTopology elasticloadbalancing:AddTags
elasticloadbalancing:AttachLoadBalancerToSubnets elasticloadbalancing:ApplySecurityGroupsToLoadBalancer
elasticloadbalancing:CreateLoadBalancer elasticloadbalancing:CreateLoadBalancerPolicy
elasticloadbalancing:CreateLoadBalancerListeners elasticloadbalancing:ConfigureHealthCheck
elasticloadbalancing:DeleteLoadBalancer elasticloadbalancing:DeleteLoadBalancerListeners
elasticloadbalancing:DescribeLoadBalancers elasticloadbalancing:DescribeLoadBalancerAttributes
elasticloadbalancing:DetachLoadBalancerFromSubnets elasticloadbalancing:DeregisterInstancesFromLoadBalancer
elasticloadbalancing:ModifyLoadBalancerAttributes elasticloadbalancing:RegisterInstancesWithLoadBalancer
elasticloadbalancing:SetLoadBalancerPoliciesForBackendServer elasticloadbalancing:CreateListener
elasticloadbalancing:CreateTargetGroup elasticloadbalancing:DeleteListener elasticloadbalancing:DeleteTargetGroup
elasticloadbalancing:DescribeListeners elasticloadbalancing:DescribeLoadBalancerPolicies
elasticloadbalancing:DescribeTargetGroups elasticloadbalancing:DescribeTargetHealth
elasticloadbalancing:ModifyListener elasticloadbalancing:ModifyTargetGroup elasticloadbalancing:RegisterTargets
elasticloadbalancing:DeregisterTargets elasticloadbalancing:SetLoadBalancerPoliciesOfListener
iam:CreateServiceLinkedRole kms:DescribeKey
""".split())
# Beyond the controller's list: the node termination handler's discovery.
OTHER_USERS = frozenset({"autoscaling:DescribeAutoScalingInstances"})


# What every node role may do for itself, not for the cloud controller: the boot tags its own
# instance ready (components/iam.py ready_tag_statement; decided in test_iam_decisions.py).
NODE_SELF_SIDS = frozenset({"TagOwnInstanceReady"})


def server_ccm_statements(templates):
    return [s for stack, logical, s in allow_statements(templates) if logical == "ServerRole"
            and s.get("Sid") not in NODE_SELF_SIDS
            and set(as_list(s["Action"])) & OFFICIAL_CCM_POLICY | OTHER_USERS]
