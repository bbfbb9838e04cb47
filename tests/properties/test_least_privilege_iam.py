"""Walk every IAM policy in every rendered template: least privilege, enforced.

Allow statements on a secret, bucket, parameter or key name that resource;
"*" is only for actions listed in k3s_infra/components/iam_actions.py (no resource-level
scoping exists, or the resource is created at run time), and cluster-resource
changes carry the cluster tag condition.
"""

from __future__ import annotations

import json

import pytest

from k3s_infra.components import iam_actions
from k3s_infra.config import available_environments

RISKY_PREFIXES = ("secretsmanager:", "s3:", "ssm:", "kms:", "sqs:", "iam:")
TAG_CONDITIONED = frozenset(a.JSONrepr() for a in (*iam_actions.CLOUD_CONTROLLER_ON_CLUSTER_RESOURCES,
                                                    *iam_actions.CLOUD_CONTROLLER_TAG_ON_CREATE))


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


@pytest.fixture(params=available_environments())
def statements(request, rendered):
    found = list(allow_statements(rendered[request.param].templates))
    assert found  # the walk sees the node roles
    return found


def test_wildcard_resources_only_for_listed_actions(statements):
    for stack_id, logical, statement in statements:
        if "*" not in as_list(statement["Resource"]):
            continue
        actions = set(as_list(statement["Action"]))
        unscoped = actions - iam_actions.UNSCOPED
        assert unscoped <= TAG_CONDITIONED, (stack_id, logical, statement.get("Sid"), unscoped)
        if unscoped:
            # Either only the controller's own (`owned`) resources, or tagging at creation.
            conditions = statement["Condition"]["StringEquals"]
            owned = {k: v for k, v in conditions.items() if k.startswith("aws:ResourceTag/kubernetes.io/cluster/")}
            on_create = {k for k in conditions if k.endswith(":CreateAction")}
            assert owned and set(owned.values()) == {"owned"} or on_create, statement.get("Sid")


@pytest.mark.parametrize("name", available_environments())
def test_autoscaling_writes_only_on_groups_tagged_for_this_cluster(rendered, name):
    """SetDesiredCapacity / TerminateInstanceInAutoScalingGroup: never on "*", only on
    autoScalingGroup ARNs, only where the group carries k8s.io/cluster-autoscaler/<cluster>
    = owned (autoscaler AWS README: restrict by tag conditional)."""
    cluster = rendered[name].env.stack_name
    scaling = {a.JSONrepr() for a in iam_actions.AUTOSCALER_SCALING}
    seen = 0
    for _, logical, statement in allow_statements(rendered[name].templates):
        if not scaling & set(as_list(statement["Action"])):
            continue
        seen += 1
        assert set(as_list(statement["Action"])) <= scaling, (logical, statement.get("Sid"))
        assert statement["Condition"] == {
            "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster}": "owned"}}
        for resource in as_list(statement["Resource"]):
            assert resource != "*" and ":autoScalingGroup:" in json.dumps(resource), logical
    assert seen == (1 if rendered[name].env.autoscaling else 0)


def test_no_risky_action_on_any_wildcard(statements):
    for stack_id, logical, statement in statements:
        actions = as_list(statement["Action"])
        assert not any(a == "*" or a.endswith(":*") for a in actions), (logical, statement.get("Sid"))
        risky = [a for a in actions if a.startswith(RISKY_PREFIXES)]
        if risky:
            resources = json.dumps(as_list(statement["Resource"]))
            assert resources != '["*"]', (logical, statement["Sid"], risky)


def test_secret_bucket_parameter_and_key_statements_name_their_resource(statements):
    for _, logical, statement in statements:
        actions = as_list(statement["Action"])
        if any(a.startswith(("secretsmanager:", "s3:", "ssm:", "kms:")) for a in actions):
            for resource in as_list(statement["Resource"]):
                assert resource != "*"
                text = json.dumps(resource)
                assert "Ref" in text or "Sub" in text or "GetAtt" in text, (logical, statement["Sid"])


def test_the_listed_unscoped_actions_are_only_reads_or_creates():
    for action in iam_actions.UNSCOPED:
        verb = action.split(":", 1)[1]
        assert verb.startswith(("Describe", "List", "Get", "Create", "AddTags")), action


# --- the AWS cloud controller cannot reach what CloudFormation owns (issue #13.4) ---------

# The documented policy of the controller, cloud-provider-aws v1.33.0 docs/prerequisites.md
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
# Left out on purpose: routes (aws_routes.go; --configure-cloud-routes=false), EBS volumes
# and their KMS key (no volume code in the external controller). Instance topology is granted
# (pkg/resourcemanagers/topology.go asks for it for network-topology labels).
NOT_NEEDED = frozenset({"ec2:ModifyInstanceAttribute", "ec2:CreateRoute", "ec2:DeleteRoute", "ec2:CreateVolume",
                        "ec2:ModifyVolume", "ec2:AttachVolume", "ec2:DeleteVolume", "ec2:DetachVolume",
                        "kms:DescribeKey"})
# Beyond the controller's list: the node termination handler's discovery.
OTHER_USERS = frozenset({"autoscaling:DescribeAutoScalingInstances"})
MUTATING_CCM = frozenset(a for a in OFFICIAL_CCM_POLICY if not a.split(":")[1].startswith("Describe"))


def server_ccm_statements(templates):
    return [s for stack, logical, s in allow_statements(templates) if logical == "ServerRole"
            and set(as_list(s["Action"])) & OFFICIAL_CCM_POLICY | OTHER_USERS]


def test_cloud_controller_actions_match_its_documented_policy(rendered):
    granted = set().union(*(set(as_list(s["Action"])) for s in server_ccm_statements(rendered["prod"].templates)))
    granted &= OFFICIAL_CCM_POLICY | OTHER_USERS | {a.JSONrepr() for a in iam_actions.DESCRIBE_ONLY}
    assert granted - OFFICIAL_CCM_POLICY == OTHER_USERS | {"elasticloadbalancing:DescribeLoadBalancerAttributes"} - \
        OFFICIAL_CCM_POLICY
    assert OFFICIAL_CCM_POLICY - granted == NOT_NEEDED


def _tags(resource: dict) -> dict[str, str]:
    p = resource.get("Properties", {})
    found = {t["Key"]: t["Value"] for t in p.get("Tags", []) if isinstance(t, dict) and "Key" in t}
    for spec in p.get("LaunchTemplateData", {}).get("TagSpecifications", []):
        found |= {t["Key"]: t["Value"] for t in spec["Tags"]}
    return found


def _matches(statement: dict, tags: dict[str, str]) -> bool:
    """Whether a statement's aws:ResourceTag conditions (StringEquals) allow a resource with these tags."""
    conditions = statement.get("Condition", {}).get("StringEquals", {})
    for key, wanted in conditions.items():
        if key.startswith("aws:ResourceTag/") and tags.get(key.split("/", 1)[1]) not in as_list(wanted):
            return False
    return True


@pytest.fixture(params=available_environments())
def env_rendering(request, rendered):
    return rendered[request.param]


def test_cloud_controller_cannot_change_what_cloudformation_made(env_rendering):
    """Every CloudFormation resource: no mutating controller statement's tag condition matches it,
    except the load balancer rules on the node security groups; the API load balancer, its target
    group and security group carry no cluster tag at all."""
    templates = env_rendering.templates
    mutating = [s for s in server_ccm_statements(templates)
                if set(as_list(s["Action"])) & MUTATING_CCM and "*" in json.dumps(s["Resource"])
                and not any(k.endswith(":CreateAction") for k in s.get("Condition", {}).get("StringEquals", {}))]
    assert mutating and all(s.get("Condition") for s in mutating if set(as_list(s["Action"])) - iam_actions.UNSCOPED)
    checked = 0
    for stack_id, template in templates.items():
        for logical, resource in template["Resources"].items():
            tags = _tags(resource)
            if logical in ("ApiLoadBalancer", "ApiTargetGroup", "ApiLoadBalancerSecurityGroup"):
                assert not any(k.startswith("kubernetes.io/cluster/") for k in tags), logical
            assert "owned" not in {v for k, v in tags.items() if k.startswith("kubernetes.io/cluster/")}, logical
            for statement in mutating:
                if not set(as_list(statement["Action"])) - iam_actions.UNSCOPED:
                    continue  # creates only
                only_groups = "security-group/" in json.dumps(statement["Resource"])
                if only_groups and resource["Type"] != "AWS::EC2::SecurityGroup":
                    continue  # its Resource ARNs name security groups only
                if _matches(statement, tags):
                    assert resource["Type"] == "AWS::EC2::SecurityGroup" and logical != \
                        "ApiLoadBalancerSecurityGroup", (logical, statement["Sid"])
                    assert set(as_list(statement["Action"])) == {"ec2:AuthorizeSecurityGroupIngress",
                                                                 "ec2:RevokeSecurityGroupIngress"}
            checked += 1
    assert checked > 20


def test_cloud_controller_tags_only_what_it_creates(env_rendering):
    """ec2:CreateTags / elasticloadbalancing:AddTags: on an existing resource only if it is already the
    controller's (`owned`), else only while creating (CreateAction) and only with its `owned` tag."""
    cluster_key = f"kubernetes.io/cluster/{env_rendering.env.stack_name}"
    tagging = [s for s in server_ccm_statements(env_rendering.templates)
               if {"ec2:CreateTags", "elasticloadbalancing:AddTags"} & set(as_list(s["Action"]))]
    assert {a for s in tagging for a in as_list(s["Action"])} >= {"ec2:CreateTags", "elasticloadbalancing:AddTags"}
    for statement in tagging:
        equals = statement["Condition"]["StringEquals"]
        if f"aws:ResourceTag/{cluster_key}" in equals:
            assert equals[f"aws:ResourceTag/{cluster_key}"] == "owned"
            continue
        assert equals[f"aws:RequestTag/{cluster_key}"] == "owned", statement["Sid"]
        (create_key,) = [k for k in equals if k.endswith(":CreateAction")]
        assert set(as_list(equals[create_key])) <= {"CreateSecurityGroup", "CreateLoadBalancer", "CreateTargetGroup"}
        assert statement["Condition"]["ForAnyValue:StringEquals"]["aws:TagKeys"] == [cluster_key]
