"""Walking IAM in rendered templates: every Allow statement of every identity policy, and the
statements of the server role that grant the AWS cloud controller's actions, against the
controller's documented policy (kubernetes/cloud-provider-aws v1.33.0 docs/prerequisites.md).

Used by tests/properties/test_least_privilege_iam.py, tests/unit/components/test_iam.py and
the autoscaler's tests; the trust of the service accounts' roles, evaluated with
tests/support/iam_eval.py, for tests/unit/components/test_workload_trust.py and
test_iam_decisions.py."""

from __future__ import annotations

import json
from dataclasses import dataclass

import yaml

from tests.support.iam_eval import OidcProvider, WebIdentityToken, trusted, web_identity
from tests.support.oracle_helpers import bundle_files, launch_template_data, node_stack_ids, resolve


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
# Beyond the controller's list: the servers' watch finds its own group (bootstrap/watch.sh,
# describe-auto-scaling-instances); the node termination handler has its own role now.
OTHER_USERS = frozenset({"autoscaling:DescribeAutoScalingInstances"})


# What every node role may do for itself, not for the cloud controller: the boot tags its own
# instance ready (components/iam.py ready_tag_statement; decided in test_iam_decisions.py).
NODE_SELF_SIDS = frozenset({"TagOwnInstanceReady"})


# The servers' roles: the first server's and the joining servers' (both run the controller).
SERVER_ROLES = ("FirstServerRole", "ServerRole")


def server_ccm_statements(templates, roles: tuple[str, ...] = SERVER_ROLES):
    return [s for stack, logical, s in allow_statements(templates) if logical in roles
            and s.get("Sid") not in NODE_SELF_SIDS
            and set(as_list(s["Action"])) & (OFFICIAL_CCM_POLICY | OTHER_USERS)]


# --- roles for service accounts (the Identity stack) ---------------------------------------

# Kubernetes service account tokens: sub = system:serviceaccount:<namespace>:<name>
# (https://kubernetes.io/docs/reference/access-authn-authz/service-accounts-admin/); the pod
# identity webhook projects them for the audience sts.amazonaws.com (aws/amazon-eks-pod-identity-webhook
# README, --token-audience default), the client ID IAM's provider must list.
STS_AUDIENCE = "sts.amazonaws.com"
# The example distribution domain of the CloudFront Developer Guide, as the issuer's host.
EXAMPLE_ISSUER_HOST = "d111111abcdef8.cloudfront.net"
# The controllers' own service accounts, as their charts name them in kube-system:
# aws/eks-charts aws-node-termination-handler and kubernetes/autoscaler cluster-autoscaler.
NTH_SERVICE_ACCOUNT = "kube-system/aws-node-termination-handler"
AUTOSCALER_SERVICE_ACCOUNT = "kube-system/cluster-autoscaler"


def subject(service_account: str) -> str:
    namespace, name = service_account.split("/", 1)
    return f"system:serviceaccount:{namespace}:{name}"


def example_provider(account: str, host: str = EXAMPLE_ISSUER_HOST) -> OidcProvider:
    """The IAM OIDC provider IAM would create for https://<host>: ARN
    arn:aws:iam::<account>:oidc-provider/<host> (IAM User Guide, "IAM identifiers")."""
    return OidcProvider(f"arn:aws:iam::{account}:oidc-provider/{host}", f"https://{host}", (STS_AUDIENCE,))


def issuer_values(provider) -> dict[str, str]:
    """What the Identity stack's Ref/GetAtt on its provider and distribution resolve to."""
    return {"IssuerProvider": provider.arn, "IssuerDistribution.DomainName": provider.url.removeprefix("https://")}


def roles_of(template: dict, values) -> dict[str, dict]:
    """logical ID -> {"trust": the parsed trust policy, "policies": identity policy documents,
    "properties": the raw properties}, every AWS::IAM::Role resolved with ``values``."""
    found = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        p = resource["Properties"]
        trust = resolve(p["AssumeRolePolicyDocument"], values)
        found[logical] = {"trust": json.loads(trust) if isinstance(trust, str) else trust,
                          "policies": [resolve(x["PolicyDocument"], values) for x in p.get("Policies", [])],
                          "properties": p}
    return found


def token(provider: OidcProvider, service_account: str, aud: str = STS_AUDIENCE) -> WebIdentityToken:
    return WebIdentityToken(iss=provider.url, sub=subject(service_account), aud=aud)


def roles_trusting(roles: dict[str, dict], provider, service_account: str) -> list[str]:
    """The roles a pod of this service account gets through this provider (trust evaluated)."""
    request = web_identity(token(provider, service_account), [provider], "arn:aws:iam::000000000000:role/any")
    return [logical for logical, role in roles.items() if request and trusted(role["trust"], request)]


# --- a rendered cluster as IAM sees it (tests/unit/components/test_iam_decisions.py) ----------

UUID = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"


class Outputs(dict):
    """Pseudo parameters, plus a distinct made-up value for every nested-stack output and
    every other parameter (the root's image IDs)."""

    def __init__(self, region: str, account: str, stack_name: str):
        super().__init__({"AWS::Partition": "aws", "AWS::Region": region, "AWS::AccountId": account,
                          "AWS::StackName": stack_name, "AWS::URLSuffix": "amazonaws.com"})
        self.region, self.account = region, account

    def __missing__(self, key: str) -> str:
        stack, _, name = key.partition(".Outputs.")
        if not name:
            return f"made-up-{key}".lower()
        return (f"arn:aws:made-up:{self.region}:{self.account}:{stack}/{name}" if name.endswith("Arn")
                else f"made-up-{stack}-{name}".lower())


@dataclass
class Node:
    stack_id: str
    role: str  # boot.env ROLE
    boot: dict[str, str]  # boot.env, deploy-time values filled in
    k3s: dict  # config.yaml, deploy-time values filled in
    group_tags: dict[str, str]
    policies: list[dict]
    iam_role: dict  # the role's properties (trust policy, path)


class Cluster:
    """A rendered environment as IAM sees it: every node (its boot.env and K3s config with
    deploy-time values filled in, its group's tags, its role's policies resolved) and the
    roles of the service accounts (Identity stack), each nested-stack output a distinct
    made-up value."""

    def __init__(self, env, templates: dict[str, dict]):
        self.env, self.templates = env, templates
        self.root_values = Outputs(env.region, env.account_id, env.stack_name)
        self.nodes = [self._node(stack_id) for stack_id in node_stack_ids(templates)]
        provider = example_provider(env.account_id)
        self.workload = roles_of(templates["Identity"], self.stack_values("Identity") | issuer_values(provider))
        self.provider = provider

    def policies_of(self, service_account: str) -> list[dict] | None:
        """The identity policies a pod of this service account gets (None: no role trusts it)."""
        found = roles_trusting(self.workload, self.provider, service_account)
        assert len(found) <= 1, found
        return self.workload[found[0]]["policies"] if found else None

    def stack_values(self, stack_id: str) -> dict[str, str]:
        # Nested stacks are named <root>-<logical ID>-<suffix> (AWS CloudFormation User Guide,
        # "Nested stacks").
        wiring = self.templates["Root"]["Resources"][stack_id]["Properties"].get("Parameters", {})
        values = Outputs(self.env.region, self.env.account_id, f"{self.env.stack_name}-{stack_id}-1A2B3C4D5E6F")
        values.update({name: p["Default"] for name, p in self.templates[stack_id].get("Parameters", {}).items()
                       if "Default" in p})
        values.update({name: resolve(value, self.root_values) for name, value in wiring.items()})
        return values

    def _node(self, stack_id: str) -> Node:
        template, values = self.templates[stack_id], self.stack_values(stack_id)
        # The user data as the instance gets it: Fn::Sub applied, then its plain write_files.
        user_data = resolve(launch_template_data(template)["UserData"]["Fn::Base64"], values)
        filled = {f["path"]: f["content"] for f in yaml.safe_load(user_data)["write_files"] if "encoding" not in f}
        # The facts its boot reads from SSM (boot.sh bind_facts), as the stacks wrote them.
        for marker, value in self._facts(filled["/etc/k3s-infra/boot.env"]).items():
            filled = {path: text.replace(marker, value) for path, text in filled.items()}
        # What its scripts read: boot.env, and a server's bundle.env (sourced with the bundle).
        env_text = filled["/etc/k3s-infra/boot.env"] + bundle_files(template).get(
            "/usr/local/lib/k3s-infra/bundle.env", "")
        boot = {k: v.strip("'") for k, v in (line.split("=", 1) for line in env_text.splitlines())}
        (group,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
        tags = {t["Key"]: resolve(t["Value"], values) for t in group["Properties"]["Tags"]}
        role = self._role(stack_id, launch_template_data(template))
        policies = [resolve(p["PolicyDocument"], self.stack_values("NodeIam")) for p in role["Policies"]]
        policies += self._attached(role)
        return Node(stack_id, boot["ROLE"], boot, yaml.safe_load(filled["/etc/rancher/k3s/config.yaml"]), tags,
                    policies, role)

    def _facts(self, boot_env: str) -> dict[str, str]:
        """Marker -> value of every fact boot.env's FACTS names: the SSM parameter of that name a
        stack writes, its value resolved in that stack."""
        (line,) = [line for line in boot_env.splitlines() if line.startswith("FACTS=")] or [""]
        found = {}
        for pair in line.removeprefix("FACTS=").strip("'").split():
            name, parameter = pair.split("=", 1)
            ((stack, value),) = [(stack, r["Properties"]["Value"]) for stack, t in self.templates.items()
                                 for r in t.get("Resources", {}).values()
                                 if r["Type"] == "AWS::SSM::Parameter" and r["Properties"]["Name"] == parameter]
            # The same value as the stack's output of it, when it has one (the made-up values are
            # per output: tests/support/iam_policies.py Outputs).
            outputs = [key for key, o in self.templates[stack].get("Outputs", {}).items() if o["Value"] == value]
            found[f"@@K3S_INFRA_FACT_{name}@@"] = (
                resolve({"Fn::GetAtt": [stack, f"Outputs.{outputs[0]}"]}, self.root_values) if outputs
                else resolve(value, self.stack_values(stack)))
        return found

    def _attached(self, role: dict) -> list[dict]:
        """Policies another stack attaches to the role (AWS::IAM::Policy Roles: the role's name, an
        output of the NodeIam stack wired through the root), resolved in their stack."""
        found = []
        for stack, template in self.templates.items():
            wiring = self.templates["Root"]["Resources"].get(stack, {}).get("Properties", {}).get("Parameters", {})
            for resource in template.get("Resources", {}).values():
                if resource["Type"] != "AWS::IAM::Policy":
                    continue
                for ref in resource["Properties"]["Roles"]:
                    producer, output = wiring[ref["Ref"]]["Fn::GetAtt"]
                    named = self.templates[producer]["Outputs"][output.removeprefix("Outputs.")]["Value"]
                    if self.templates[producer]["Resources"][named["Ref"]]["Properties"] is role:
                        found.append(resolve(resource["Properties"]["PolicyDocument"], self.stack_values(stack)))
        return found

    def _role(self, stack_id: str, launch: dict) -> dict:
        """The role behind the launch template's instance profile, followed through the root."""
        (parameter,) = launch["IamInstanceProfile"]["Arn"].values()
        (stack, output) = self.templates["Root"]["Resources"][stack_id]["Properties"]["Parameters"][parameter][
            "Fn::GetAtt"]
        iam = self.templates[stack]
        profile_id, _ = iam["Outputs"][output.removeprefix("Outputs.")]["Value"]["Fn::GetAtt"]
        assert stack == "NodeIam"
        (role_ref,) = iam["Resources"][profile_id]["Properties"]["Roles"]
        return iam["Resources"][role_ref["Ref"]]["Properties"]

    # --- ARNs in AWS's formats -------------------------------------------------------------
    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.env.region if region else ''}:{self.env.account_id}:{resource}"

    def group_arn(self, node: Node) -> str:
        return self.arn("autoscaling", f"autoScalingGroup:{UUID}:autoScalingGroupName/{node.stack_id}-Group-X1")

    def of_role(self, *roles: str) -> list[Node]:
        return [n for n in self.nodes if n.role in roles]
