"""The AWS cloud controller's calls for Services of type LoadBalancer, each decided against the
rendered server roles' policies (k3s_infra/components/iam.py _cloud_controller_statements,
evaluated by tests/support/iam_eval.py).

The table is the controller's source at the pinned version (config/defaults.py CCM_IMAGE_TAG
v1.33.0: kubernetes/cloud-provider-aws tag v1.33.0, commit 40f1f7ac; pkg/providers/v1/<file>:<line>
at that commit): every EC2, ELB (classic) and ELBv2 call it makes for a Service of type
LoadBalancer, classic ELB and NLB (service.beta.kubernetes.io/aws-load-balancer-type: nlb),
creating, updating and deleting, written as the IAM authorizations AWS makes of it:
- a create call that carries tags is authorized as the create action, and as
  elasticloadbalancing:AddTags / ec2:CreateTags on the new resource (no tags yet) with
  <service>:CreateAction = the call and the request's tags in aws:RequestTag / aws:TagKeys (ELB
  User Guide, "API permissions to tag resources during creation"; Service Authorization
  Reference, Elastic Load Balancing V2: CreateListener authorizes elasticloadbalancing:AddTags);
- CreateListener is authorized on the load balancer it adds to (Service Authorization Reference,
  resource loadbalancer/net: aws:ResourceTag of the load balancer, aws:RequestTag of the
  listener's tags); ModifyListener / DeleteListener on the listener, target-group calls on the
  target group, classic ELB calls on loadbalancer/<name>, security group calls on the group;
- what the controller made carries kubernetes.io/cluster/<cluster>=owned (tags.go buildTags with
  ResourceLifecycleOwned), the node security groups `shared` (naming.ccm_discovery_tags).
The negative rows are the same changes on what CloudFormation made (the API load balancers,
listeners and target groups, with the tags the rendered templates give them), on another
cluster's resources, tagging outside creation, and tagging on creation with a tag the
controller never sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from k3s_infra.components import iam_actions
from k3s_infra.config import available_environments
from k3s_infra.model import naming
from tests.support.iam_eval import Request, allowed
from tests.support.iam_policies import Cluster
from tests.support.oracle_helpers import resolve

OWN = "kubernetes.io/cluster/<cluster>"  # <cluster>: this cluster's name (naming.cluster_name)
OTHER = "kubernetes.io/cluster/another-cluster"
SERVICE = "kubernetes.io/service-name"  # aws.go TagNameKubernetesService
OWNED, SHARED, FOREIGN = {OWN: "owned"}, {OWN: "shared"}, {OTHER: "owned"}
EXTRA = {"team": "payments"}  # the Service's service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags
# ensureLoadBalancer / ensureLoadBalancerv2: the additional tags, the service name, buildTags(owned).
LB_TAGS = {**EXTRA, SERVICE: "default/web", **OWNED}
# ensureSecurityGroup: the additional tags and buildTags(owned), no service name.
SG_TAGS = {**EXTRA, **OWNED}
CLOUDFORMATION = None  # tags: those the rendered templates give each resource of that shape

# Load balancer names are cloudprovider.DefaultLoadBalancerName: "a" + the Service UID, 32 characters.
NAME = "a0123456789abcdef0123456789abcde"
SHAPES = {  # shape -> (service, resource part of the ARN)
    "*": ("", "*"),
    "nlb": ("elasticloadbalancing", f"loadbalancer/net/{NAME}/0123456789abcdef"),
    "listener": ("elasticloadbalancing", f"listener/net/{NAME}/0123456789abcdef/fedcba9876543210"),
    "rule": ("elasticloadbalancing", f"listener-rule/net/{NAME}/0123456789abcdef/fedcba9876543210/0a1b2c3d4e5f6a7b"),
    "tg": ("elasticloadbalancing", "targetgroup/k8s-default-web-0a1b2c3d4e/0123456789abcdef"),
    "clb": ("elasticloadbalancing", f"loadbalancer/{NAME}"),
    "sg": ("ec2", "security-group/sg-0123456789abcdef0"),
    "vpc": ("ec2", "vpc/vpc-0123456789abcdef0"),
    # CloudFormation's, tags from the rendered templates (CLOUDFORMATION):
    "api-nlb": ("elasticloadbalancing", "loadbalancer/net/k3s-ApiLo-1A2B3C4D5E6F/0fedcba987654321"),
    "api-listener": ("elasticloadbalancing", "listener/net/k3s-ApiLo-1A2B3C4D5E6F/0fedcba987654321/0a1b2c3d4e5f6a7b"),
    "api-tg": ("elasticloadbalancing", "targetgroup/k3s-ApiTa-1A2B3C4D5E6F/0fedcba987654321"),
    "node-sg": ("ec2", "security-group/sg-0fedcba9876543210"),
}
TEMPLATE_TYPES = {"api-nlb": "AWS::ElasticLoadBalancingV2::LoadBalancer",
                  "api-listener": "AWS::ElasticLoadBalancingV2::Listener",
                  "api-tg": "AWS::ElasticLoadBalancingV2::TargetGroup",
                  "node-sg": "AWS::EC2::SecurityGroup"}


@dataclass(frozen=True)
class Call:
    where: str  # the controller's source (a call), or why it must be refused (a negative row)
    action: str
    shape: str  # a key of SHAPES: what the call acts on
    tags: dict[str, str] | None = field(default_factory=dict)  # the resource's tags; CLOUDFORMATION
    request_tags: dict[str, str] | None = None  # Tags / TagSpecifications sent with the call
    create_action: str | None = None  # <service>:CreateAction (the tagging half of a create call)


def _describe(action: str, where: str) -> Call:
    return Call(where, action, "*")


CONTROLLER_CALLS = [
    # --- discovery (no resource-level permissions exist) ---
    _describe("ec2:DescribeInstances", "instances.go describeAllInstancesCached -> aws.go:3210 describeInstances"),
    _describe("ec2:DescribeSubnets", "aws.go:1616 findSubnets, :1805/:1824 resolveSubnetNameOrIDs, "
                                     ":2043 getSubnetCidrs"),
    _describe("ec2:DescribeRouteTables", "aws.go:1661 findELBSubnets"),
    _describe("ec2:DescribeAvailabilityZones", "zones.go:111 zoneCache.populate (aws.go:1736 findELBSubnets)"),
    _describe("ec2:DescribeSecurityGroups", "aws.go:1223 findSecurityGroup, :1533 ensureSecurityGroup, "
                                            ":2708 getTaggedSecurityGroups, :2764, :2944"),
    _describe("elasticloadbalancing:DescribeLoadBalancers", "aws.go:1127 describeLoadBalancer, "
                                                            ":1174 describeLoadBalancerv2; aws_loadbalancer.go:386"),
    _describe("elasticloadbalancing:DescribeListeners", "aws_loadbalancer.go:209 ensureLoadBalancerv2"),
    _describe("elasticloadbalancing:DescribeTargetGroups", "aws_loadbalancer.go:227, :678; aws.go:2891"),
    _describe("elasticloadbalancing:DescribeTargetHealth", "aws_loadbalancer.go:734 obtainTargetGroupActualTargets"),
    _describe("elasticloadbalancing:DescribeLoadBalancerAttributes", "aws_loadbalancer.go:441 reconcileLBAttributes, "
                                                                     ":1213 ensureLoadBalancer"),
    _describe("elasticloadbalancing:DescribeLoadBalancerPolicies",
              "aws_loadbalancer.go:1503 ensureSSLNegotiationPolicy"),
    # --- NLB: ensureLoadBalancerv2, createListenerV2, ensureTargetGroup, EnsureLoadBalancerDeleted ---
    Call("aws_loadbalancer.go:187 ensureLoadBalancerv2", "elasticloadbalancing:CreateLoadBalancer", "nlb",
         request_tags=LB_TAGS),
    Call("aws_loadbalancer.go:187 ensureLoadBalancerv2 (its Tags)", "elasticloadbalancing:AddTags", "nlb",
         request_tags=LB_TAGS, create_action="CreateLoadBalancer"),
    Call("aws_loadbalancer.go:616 ensureTargetGroup", "elasticloadbalancing:CreateTargetGroup", "tg",
         request_tags=LB_TAGS),
    Call("aws_loadbalancer.go:616 ensureTargetGroup (its Tags)", "elasticloadbalancing:AddTags", "tg",
         request_tags=LB_TAGS, create_action="CreateTargetGroup"),
    Call("aws_loadbalancer.go:561 createListenerV2", "elasticloadbalancing:CreateListener", "nlb", OWNED,
         request_tags=LB_TAGS),
    Call("aws_loadbalancer.go:561 createListenerV2 (its Tags)", "elasticloadbalancing:AddTags", "listener",
         request_tags=LB_TAGS, create_action="CreateListener"),
    Call("aws_loadbalancer.go:699 ensureTargetGroupTargets", "elasticloadbalancing:RegisterTargets", "tg", OWNED),
    Call("aws_loadbalancer.go:711 ensureTargetGroupTargets", "elasticloadbalancing:DeregisterTargets", "tg", OWNED),
    Call("aws_loadbalancer.go:668 ensureTargetGroup", "elasticloadbalancing:ModifyTargetGroup", "tg", OWNED),
    Call("aws_loadbalancer.go:484 reconcileLBAttributes", "elasticloadbalancing:ModifyLoadBalancerAttributes", "nlb",
         OWNED),
    Call("aws_loadbalancer.go:321 ensureLoadBalancerv2", "elasticloadbalancing:ModifyListener", "listener", OWNED),
    Call("aws_loadbalancer.go:570 deleteListenerV2", "elasticloadbalancing:DeleteListener", "listener", OWNED),
    Call("aws_loadbalancer.go:328 ensureLoadBalancerv2, :574 deleteListenerV2, aws.go:2906 EnsureLoadBalancerDeleted",
         "elasticloadbalancing:DeleteTargetGroup", "tg", OWNED),
    Call("aws.go:2898 EnsureLoadBalancerDeleted", "elasticloadbalancing:DeleteLoadBalancer", "nlb", OWNED),
    # updateInstanceSecurityGroupsForNLB (aws_loadbalancer.go:787): client, health and MTU rules on
    # every group with the cluster tag, through aws.go:1443 addSecurityGroupIngress / :1503 remove.
    Call("aws.go:1443 addSecurityGroupIngress (NLB and ELB rules)", "ec2:AuthorizeSecurityGroupIngress", "node-sg",
         CLOUDFORMATION),
    Call("aws.go:1503 removeSecurityGroupIngress (NLB and ELB rules)", "ec2:RevokeSecurityGroupIngress", "node-sg",
         CLOUDFORMATION),
    Call("aws.go:1503 removeSecurityGroupIngress (NLB rules on an ELB's group)", "ec2:RevokeSecurityGroupIngress",
         "sg", OWNED),
    # --- classic ELB: EnsureLoadBalancer, ensureLoadBalancer, EnsureLoadBalancerDeleted ---
    Call("aws.go:1572 ensureSecurityGroup", "ec2:CreateSecurityGroup", "sg", request_tags=SG_TAGS),
    Call("aws.go:1572 ensureSecurityGroup", "ec2:CreateSecurityGroup", "vpc", request_tags=SG_TAGS),
    Call("aws.go:1572 ensureSecurityGroup (its TagSpecifications)", "ec2:CreateTags", "sg", request_tags=SG_TAGS,
         create_action="CreateSecurityGroup"),
    Call("aws.go:1371 setSecurityGroupIngress", "ec2:AuthorizeSecurityGroupIngress", "sg", OWNED),
    Call("aws.go:1382 setSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "sg", OWNED),
    Call("aws_loadbalancer.go:1021 ensureLoadBalancer", "elasticloadbalancing:CreateLoadBalancer", "clb",
         request_tags=LB_TAGS),
    Call("aws_loadbalancer.go:1021 ensureLoadBalancer (its Tags)", "elasticloadbalancing:AddTags", "clb",
         request_tags=LB_TAGS, create_action="CreateLoadBalancer"),
    Call("aws_loadbalancer.go:1573 createProxyProtocolPolicy, :1526 ensureSSLNegotiationPolicy",
         "elasticloadbalancing:CreateLoadBalancerPolicy", "clb", OWNED),
    Call("aws_loadbalancer.go:1592 setBackendPolicies", "elasticloadbalancing:SetLoadBalancerPoliciesForBackendServer",
         "clb", OWNED),
    Call("aws_loadbalancer.go:1553 setSSLNegotiationPolicy", "elasticloadbalancing:SetLoadBalancerPoliciesOfListener",
         "clb", OWNED),
    Call("aws_loadbalancer.go:1058 ensureLoadBalancer", "elasticloadbalancing:DetachLoadBalancerFromSubnets", "clb",
         OWNED),
    Call("aws_loadbalancer.go:1070 ensureLoadBalancer", "elasticloadbalancing:AttachLoadBalancerToSubnets", "clb",
         OWNED),
    Call("aws_loadbalancer.go:1093 ensureLoadBalancer", "elasticloadbalancing:ApplySecurityGroupsToLoadBalancer",
         "clb", OWNED),
    Call("aws_loadbalancer.go:1109 ensureLoadBalancer", "elasticloadbalancing:DeleteLoadBalancerListeners", "clb",
         OWNED),
    Call("aws_loadbalancer.go:1120 ensureLoadBalancer", "elasticloadbalancing:CreateLoadBalancerListeners", "clb",
         OWNED),
    # The additional tags again on an existing load balancer, without the cluster tag.
    Call("aws_loadbalancer.go:1199 ensureLoadBalancer -> aws.go:1161 addLoadBalancerTags",
         "elasticloadbalancing:AddTags", "clb", OWNED, request_tags=EXTRA),
    Call("aws_loadbalancer.go:1228 ensureLoadBalancer", "elasticloadbalancing:ModifyLoadBalancerAttributes", "clb",
         OWNED),
    Call("aws_loadbalancer.go:1427 ensureLoadBalancerHealthCheck", "elasticloadbalancing:ConfigureHealthCheck", "clb",
         OWNED),
    Call("aws_loadbalancer.go:1468 ensureLoadBalancerInstances",
         "elasticloadbalancing:RegisterInstancesWithLoadBalancer", "clb", OWNED),
    Call("aws_loadbalancer.go:1479 ensureLoadBalancerInstances",
         "elasticloadbalancing:DeregisterInstancesFromLoadBalancer", "clb", OWNED),
    Call("aws.go:3010 EnsureLoadBalancerDeleted", "elasticloadbalancing:DeleteLoadBalancer", "clb", OWNED),
    Call("aws.go:3026 EnsureLoadBalancerDeleted", "ec2:DeleteSecurityGroup", "sg", OWNED),
]


def _on_cloudformation(shape: str, *actions: str, request_tags=None) -> list[Call]:
    return [Call(f"CloudFormation's {shape}", a, shape, CLOUDFORMATION, request_tags) for a in actions]


def _tag_on_create(why: str, tags: dict[str, str]) -> list[Call]:
    return [*(Call(why, "elasticloadbalancing:AddTags", shape, request_tags=tags, create_action=create)
              for shape, create in (("listener", "CreateListener"), ("nlb", "CreateLoadBalancer"),
                                    ("tg", "CreateTargetGroup"), ("clb", "CreateLoadBalancer"))),
            Call(why, "ec2:CreateTags", "sg", request_tags=tags, create_action="CreateSecurityGroup")]


NEVER = [
    # What CloudFormation made: the API load balancers carry no cluster tag.
    *_on_cloudformation("api-nlb", "elasticloadbalancing:CreateListener", request_tags=LB_TAGS),
    *_on_cloudformation("api-nlb", "elasticloadbalancing:ModifyLoadBalancerAttributes",
                        "elasticloadbalancing:DeleteLoadBalancer"),
    *_on_cloudformation("api-listener", "elasticloadbalancing:ModifyListener", "elasticloadbalancing:DeleteListener"),
    *_on_cloudformation("api-tg", "elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets",
                        "elasticloadbalancing:ModifyTargetGroup", "elasticloadbalancing:DeleteTargetGroup"),
    *(c for shape in ("api-nlb", "api-listener", "api-tg")  # claiming it: tagging it `owned` outside creation
      for c in _on_cloudformation(shape, "elasticloadbalancing:AddTags", request_tags=OWNED)),
    *_on_cloudformation("node-sg", "ec2:DeleteSecurityGroup"),
    *_on_cloudformation("node-sg", "ec2:CreateTags", request_tags=OWNED),
    # Another cluster's, or a `shared` one.
    Call("another cluster's NLB", "elasticloadbalancing:CreateListener", "nlb", FOREIGN, request_tags=LB_TAGS),
    Call("a shared NLB", "elasticloadbalancing:CreateListener", "nlb", SHARED, request_tags=LB_TAGS),
    Call("another cluster's listener", "elasticloadbalancing:ModifyListener", "listener", FOREIGN),
    Call("another cluster's target group", "elasticloadbalancing:RegisterTargets", "tg", FOREIGN),
    Call("another cluster's target group", "elasticloadbalancing:DeleteTargetGroup", "tg", FOREIGN),
    Call("another cluster's ELB", "elasticloadbalancing:DeleteLoadBalancer", "clb", FOREIGN),
    Call("another cluster's ELB", "elasticloadbalancing:AddTags", "clb", FOREIGN, request_tags=OWNED),
    Call("an untagged security group", "ec2:AuthorizeSecurityGroupIngress", "sg"),
    Call("another cluster's node group", "ec2:AuthorizeSecurityGroupIngress", "sg", {OTHER: "shared"}),
    Call("another cluster's security group", "ec2:DeleteSecurityGroup", "sg", FOREIGN),
    # Tagging an existing resource outside creation: not even tags.go:194 readRepairClusterTags,
    # which would claim a group found by name without the cluster tag.
    Call("tags.go:194 readRepairClusterTags", "ec2:CreateTags", "sg", request_tags=SG_TAGS),
    Call("an existing untagged target group", "elasticloadbalancing:AddTags", "tg", request_tags=LB_TAGS),
    Call("an existing untagged listener", "elasticloadbalancing:AddTags", "listener", request_tags=LB_TAGS),
    # Tagging at creation with what the controller never sends.
    *_tag_on_create("created `shared`", {**EXTRA, SERVICE: "default/web", **SHARED}),
    *_tag_on_create("created with another cluster's tag", {**EXTRA, SERVICE: "default/web", **FOREIGN}),
    *_tag_on_create("created without the cluster tag", {**EXTRA, SERVICE: "default/web"}),
    Call("CreateRule: the controller makes no listener rules", "elasticloadbalancing:AddTags", "rule",
         request_tags=LB_TAGS, create_action="CreateRule"),
]


@pytest.fixture(params=available_environments())
def cluster(request, rendered) -> Cluster:
    return Cluster(rendered[request.param].env, rendered[request.param].templates)


def _cloudformation_tags(cluster: Cluster, shape: str) -> list[tuple[str, dict[str, str]]]:
    """(logical ID, tags as deployed) of every rendered resource of that shape; node-sg: the
    security groups that carry the cluster tag (the node groups, naming.ccm_discovery_tags)."""
    found = []
    for stack_id, template in cluster.templates.items():
        for logical, resource in template["Resources"].items():
            if resource["Type"] == TEMPLATE_TYPES[shape]:
                values = cluster.stack_values(stack_id)  # nested stacks only hold these resources
                tags = {t["Key"]: resolve(t["Value"], values) for t in resource["Properties"].get("Tags", [])}
                if shape != "node-sg" or naming.ccm_cluster_tag_key(cluster.env) in tags:
                    found.append((logical, tags))
    assert found, f"no {shape} rendered"
    return found


def _requests(cluster: Cluster, call: Call) -> list[tuple[str, Request]]:
    """The call as IAM sees it: once per CloudFormation resource of its shape, else once."""
    name = naming.cluster_name(cluster.env)

    def real(tags: dict[str, str]) -> dict[str, str]:
        return {k.replace("<cluster>", name): v for k, v in tags.items()}

    service, resource = SHAPES[call.shape]
    arn = "*" if resource == "*" else cluster.arn(service, resource)
    targets = (_cloudformation_tags(cluster, call.shape) if call.tags is CLOUDFORMATION
               else [(call.shape, real(call.tags))])
    found = []
    for target, tags in targets:
        context: dict[str, str | list[str]] = {f"aws:ResourceTag/{k}": v for k, v in tags.items()}
        if call.request_tags is not None:
            context |= {f"aws:RequestTag/{k}": v for k, v in real(call.request_tags).items()}
            context["aws:TagKeys"] = list(real(call.request_tags))
        if call.create_action:
            context[f"{call.action.split(':', 1)[0]}:CreateAction"] = call.create_action
        found.append((f"{call.where}: {call.action} on {target}", Request(call.action, arn, context)))
    return found


def _wrong(policies: list[dict], decisions: list[tuple[str, Request]], want: bool) -> list[str]:
    return [what for what, request in decisions if allowed(policies, request) != want]


def test_every_call_the_controller_makes_is_allowed_on_the_servers(cluster):
    calls = [r for call in CONTROLLER_CALLS for r in _requests(cluster, call)]
    servers = [n for n in cluster.nodes if n.role != "agent"]
    assert servers
    for node in servers:
        wrong = _wrong(node.policies, calls, True)
        assert not wrong, f"{node.stack_id} is refused: " + "; ".join(wrong)


def test_the_same_changes_elsewhere_are_denied_to_every_node(cluster):
    calls = [r for call in NEVER for r in _requests(cluster, call)]
    for node in cluster.nodes:
        wrong = _wrong(node.policies, calls, False)
        assert not wrong, f"{node.stack_id} is allowed: " + "; ".join(wrong)


def test_agents_make_none_of_the_controller_changes(cluster):
    """The controller runs on the servers only; an agent's role reads at most."""
    changes = [r for call in CONTROLLER_CALLS if call.shape != "*" for r in _requests(cluster, call)]
    for node in cluster.of_role("agent"):
        wrong = _wrong(node.policies, changes, False)
        assert not wrong, f"{node.stack_id} is allowed: " + "; ".join(wrong)


def test_the_grants_are_what_the_controller_calls():
    """Least privilege: every action granted for the controller's load balancers is one it
    calls, and tags at creation are allowed for exactly the create calls that send tags."""
    granted = {a.JSONrepr() for a in (*iam_actions.CLOUD_CONTROLLER_CREATE, *iam_actions.CLOUD_CONTROLLER_TAG_ON_CREATE,
                                      *iam_actions.CLOUD_CONTROLLER_NODE_INGRESS,
                                      *iam_actions.CLOUD_CONTROLLER_ON_CLUSTER_RESOURCES)}
    called = {call.action for call in CONTROLLER_CALLS}
    assert granted - called == set()
    assert called - granted <= {a.JSONrepr() for a in iam_actions.DESCRIBE_ONLY}
    on_create = {(action.JSONrepr(), create) for action, creates in iam_actions.CLOUD_CONTROLLER_TAG_ON_CREATE.items()
                 for create in creates}
    assert on_create == {(call.action, call.create_action) for call in CONTROLLER_CALLS if call.create_action}
