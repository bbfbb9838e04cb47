"""Walk every IAM policy in every rendered template: least privilege, enforced.

Allow statements on a secret, bucket, parameter or key name that resource; "*" is only for
actions listed in k3s_infra/components/iam_actions.py (no resource-level scoping exists, or
the resource is created at run time) and, against a reviewed fixed table here, for harmless
reads and creates; cluster-resource changes carry the cluster tag condition; scaling only on
groups tagged for this cluster (autoscaler AWS README: restrict by tag conditional), and only
by the autoscaler's own role: no node role drains the queue, scales or terminates (issue 22:
pods that call AWS have roles of their own, the nodes' stay out of their reach); and the
AWS cloud controller cannot change what CloudFormation made (issue #13.4): its mutating
statements match no CloudFormation resource but the node security groups, whose load
balancer rules it manages.
"""

from __future__ import annotations

import json

import pytest
import yaml

from k3s_infra.components import iam_actions
from k3s_infra.config import available_environments, load_environment
from k3s_infra.render import render

from tests.support.iam_eval import action_matches
from tests.support.iam_policies import OFFICIAL_CCM_POLICY, allow_statements, as_list, server_ccm_statements
from tests.support.oracle_helpers import DEPLOYABLE, ENVIRONMENT_FILES, plain_document


RISKY_PREFIXES = ("secretsmanager:", "s3:", "ssm:", "kms:", "sqs:", "iam:")

TAG_CONDITIONED = frozenset(a.JSONrepr() for a in (*iam_actions.CLOUD_CONTROLLER_ON_CLUSTER_RESOURCES,
                                                    *iam_actions.CLOUD_CONTROLLER_TAG_ON_CREATE))

# The one ssm: action on "*": the SSM Agent's registration (UpdateInstanceInformation), which
# names no parameter or document; both AWS policies for the agent grant it on "*"
# (AmazonSSMManagedInstanceCore, AmazonSSMManagedEC2InstanceDefaultPolicy). A fixed literal,
# not read from iam_actions.
AGENT_REGISTRATION = frozenset({"ssm:UpdateInstanceInformation"})

MUTATING_CCM = frozenset(a for a in OFFICIAL_CCM_POLICY if not a.split(":")[1].startswith("Describe"))


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
        unscoped = actions - iam_actions.UNSCOPED - iam_actions.AGENT_CHANNELS - iam_actions.AGENT_REGISTRATION
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
    scaling = {"autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"}
    seen = 0
    for stack_id, logical, statement in allow_statements(rendered[name].templates):
        if not scaling & set(as_list(statement["Action"])):
            continue
        seen += 1
        assert stack_id == "Identity", (stack_id, logical)  # a service account's role, never a node's
        assert set(as_list(statement["Action"])) <= scaling, (logical, statement.get("Sid"))
        assert statement["Condition"] == {
            "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster}": "owned"}}
        for resource in as_list(statement["Resource"]):
            assert resource != "*" and ":autoScalingGroup:" in json.dumps(resource), logical
    assert seen == (1 if rendered[name].env.autoscaling else 0)


# Moved off the node roles to the controllers' roles (issue 22): the node termination handler's
# queue and the autoscaler's scaling (aws-node-termination-handler README, queue processor
# policy; cluster-autoscaler AWS README).
OFF_THE_NODES = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "autoscaling:SetDesiredCapacity",
                 "autoscaling:TerminateInstanceInAutoScalingGroup")


@pytest.mark.parametrize("name", [*available_environments(), "all-addons"])
def test_no_node_role_drains_the_queue_scales_or_terminates(rendered, everything, name):
    templates = everything[3] if name == "all-addons" else rendered[name].templates
    node_roles = [r for r in templates["NodeIam"]["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert len(node_roles) == 3  # first server, joining servers, agents
    for role in node_roles:
        for policy in role["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                granted = [a for a in OFF_THE_NODES for pattern in as_list(statement.get("Action", []))
                           if action_matches(pattern, a)]
                assert not granted and "NotAction" not in statement, (statement.get("Sid"), granted)


def test_no_risky_action_on_any_wildcard(statements):
    for stack_id, logical, statement in statements:
        actions = as_list(statement["Action"])
        assert not any(a == "*" or a.endswith(":*") for a in actions), (logical, statement.get("Sid"))
        risky = [a for a in actions if a.startswith(RISKY_PREFIXES) and a not in AGENT_REGISTRATION]
        if risky:
            resources = json.dumps(as_list(statement["Resource"]))
            assert resources != '["*"]', (logical, statement.get("Sid"), risky)


def _written_by_people(name: str) -> list[dict]:
    """The inline statements an environment file's workload_roles list (rendered verbatim)."""
    document = plain_document(next(p for p in ENVIRONMENT_FILES if p.stem == name))
    return [s for role in document.get("workload_roles", []) for s in role.get("statements", [])]


@pytest.mark.parametrize("name", available_environments())
def test_secret_bucket_parameter_and_key_statements_name_their_resource(rendered, name):
    """The project's own statements name the resource it made (Ref/Sub/GetAtt); a person's
    (workload_roles) names a literal ARN; neither "*"."""
    people = _written_by_people(name)
    for stack_id, logical, statement in allow_statements(rendered[name].templates):
        actions = as_list(statement["Action"])
        if any(a.startswith(("secretsmanager:", "s3:", "ssm:", "kms:")) and a not in AGENT_REGISTRATION
               for a in actions):
            for resource in as_list(statement["Resource"]):
                assert resource != "*"
                text = json.dumps(resource)
                if statement in people:
                    assert stack_id == "Identity" and resource.startswith("arn:"), (logical, resource)
                    continue
                assert "Ref" in text or "Sub" in text or "GetAtt" in text, (logical, statement.get("Sid"))


# --- IAM: what may run on Resource "*" -------------------------------------------------

# A reviewed, fixed table (not k3s_infra.components.iam_actions): Describe/List calls without
# resource-level permissions, and what the AWS cloud controller creates or changes at run
# time (kubernetes/cloud-provider-aws docs/prerequisites.md, the control-plane policy).
# Actions outside TAG_CONDITIONED_ON_STAR must be harmless reads or creates.
UNCONDITIONED_ON_STAR = {
    "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeTags",
    "ec2:DescribeInstances", "ec2:DescribeInstanceTopology", "ec2:DescribeRegions", "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets", "ec2:DescribeVolumes", "ec2:DescribeAvailabilityZones", "ec2:DescribeVpcs",
    "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeLoadBalancerPolicies",
    "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetHealth",
    "ec2:CreateSecurityGroup", "elasticloadbalancing:CreateLoadBalancer",
    "elasticloadbalancing:CreateLoadBalancerListeners", "elasticloadbalancing:CreateLoadBalancerPolicy",
    "elasticloadbalancing:CreateListener", "elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:AddTags",
    # The cluster autoscaler's reads (kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md,
    # "Full Cluster Autoscaler Features Policy (Recommended)"): none takes a resource ARN.
    "autoscaling:DescribeScalingActivities", "ec2:DescribeImages", "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions", "ec2:GetInstanceTypesFromInstanceRequirements",
    # The SSM Agent's own message channels (AmazonSSMManagedInstanceCore): the services define no
    # resource type (Service Authorization Reference, "Amazon Message Gateway Service", "Amazon
    # Message Delivery Service"); what reaches a node is decided by the operator's ssm:StartSession
    # and ssm:SendCommand rights on its instance ARN (docs/operations.md, "Node access").
    "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel", "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage",
    "ec2messages:FailMessage", "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply",
    # ...and its registration, on "*" in both AWS policies for the agent (AmazonSSMManagedInstanceCore,
    # AmazonSSMManagedEC2InstanceDefaultPolicy): it describes only the calling instance.
    *AGENT_REGISTRATION,
}


def test_actions_on_every_resource_are_reviewed_reads_creates_or_cluster_tag_conditioned():
    path = next(p for p in DEPLOYABLE if p.stem == "all-addons")
    for stack in render(load_environment(path=path)).children:
        for logical, resource in yaml.safe_load(stack.body)["Resources"].items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            for policy in resource["Properties"].get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [
                        statement["Resource"]]
                    if "*" not in resources:
                        continue
                    actions = set(statement["Action"] if isinstance(statement["Action"], list) else
                                  [statement["Action"]])
                    extra = actions - UNCONDITIONED_ON_STAR
                    if extra:  # anything else must be limited to resources tagged with this cluster
                        (key,) = statement["Condition"]["StringEquals"]
                        assert key.startswith("aws:ResourceTag/kubernetes.io/cluster/"), (logical, extra)
                        assert not any(a.split(":")[1].startswith(("Get", "Put")) for a in extra), extra


# --- the AWS cloud controller cannot reach what CloudFormation owns (issue #13.4) ---------

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
