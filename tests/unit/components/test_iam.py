"""Node roles' statements (k3s_infra/components/iam.py), read from the rendered NodeIam stack:
three roles (first server, joining servers, agents); each signals only its own node stacks and
reports health only for its own role's groups; the restore request and the marker, named from
config, are the first server's only; snapshot objects only under the etcd-s3-folder K3s writes
to (https://docs.k3s.io/cli/etcd-snapshot); the OIDC issuer's two documents written by the
first server only; add-on secrets for the servers only; the drain queue and the cluster
autoscaler's scaling on no node role but on the controllers' own roles (Identity stack):
scaling only on groups carrying its discovery tag, with its reads (kubernetes/autoscaler
cluster-autoscaler/cloudprovider/aws/README.md, "Full Cluster Autoscaler Features Policy");
the AWS cloud controller's actions match its documented policy (kubernetes/cloud-provider-aws v1.33.0
docs/prerequisites.md) minus what it does not need, and it tags only what it creates.
Whole-template walks (least privilege, what "*" may carry) are in
tests/properties/test_least_privilege_iam.py; evaluated decisions in test_iam_decisions.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from k3s_infra.components import iam_actions
from k3s_infra.config import available_environments, load_environment, read_document
from k3s_infra.model import addons, naming
from k3s_infra.render import render

from tests.support.autoscaler import PREFIX, SCALING, cluster_of, groups
from tests.support.iam_policies import (
    AUTOSCALER_SERVICE_ACCOUNT,
    NTH_SERVICE_ACCOUNT,
    OFFICIAL_CCM_POLICY,
    OTHER_USERS,
    SERVER_ROLES,
    allow_statements,
    as_list,
    server_ccm_statements,
    subject,
)
from tests.support.oracle_helpers import bundle_files, DEPLOYABLE, written_files


ROOT = Path(__file__).resolve().parents[3]


def _statements(r, role: str) -> dict[str, dict]:
    (policy,) = r.resources("NodeIam", "AWS::IAM::Role")[f"{role}Role"]["Properties"]["Policies"]
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


def _flatten_sub(value) -> str:
    """A nested Fn::Sub as one string; Refs become ${Name} (enough to compare ARNs' shapes)."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
    for name, inner in variables.items():
        text = text.replace("${" + name + "}", _flatten_sub(inner))
    return text


# Left out on purpose: routes (aws_routes.go; --configure-cloud-routes=false), EBS volumes
# and their KMS key (no volume code in the external controller). Instance topology is granted
# (pkg/resourcemanagers/topology.go asks for it for network-topology labels).
NOT_NEEDED = frozenset({"ec2:ModifyInstanceAttribute", "ec2:CreateRoute", "ec2:DeleteRoute", "ec2:CreateVolume",
                        "ec2:ModifyVolume", "ec2:AttachVolume", "ec2:DeleteVolume", "ec2:DetachVolume",
                        "kms:DescribeKey"})


@pytest.fixture(params=available_environments())
def env_rendering(request, rendered):
    return rendered[request.param]


# --- signals, health and the cluster-state marker ------------------------------------

@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_node_roles_signal_only_their_own_node_stacks(rendered, env_name):
    r = rendered[env_name]
    expected = {"FirstServer": ["ServerInit"], "Server": ["Servers"], "Agent": ["AgentPool*"]}
    for role, stacks in expected.items():
        statements = _statements(r, role)
        signalling = [s for s in statements.values() if "cloudformation:SignalResource" in json.dumps(s["Action"])]
        assert [s["Sid"] for s in signalling] == ["SignalOwnNodeStack"]
        (statement,) = signalling
        assert statement["Action"] == ["cloudformation:SignalResource"]
        # Nested stacks are named <root>-<LogicalId>-<suffix>; the root passes its own name.
        resources = [res["Fn::Sub"] for res in statement["Resource"]]
        assert [text for text, _ in resources] == [
            "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${Root}-" + s + "-*/*"
            for s in stacks]
        assert all(variables == {"Root": {"Ref": "RootStackName"}} for _, variables in resources)
    assert r.root["Resources"]["NodeIam"]["Properties"]["Parameters"]["RootStackName"] == {"Ref": "AWS::StackName"}


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_marker_and_restore_request_names_come_from_config(rendered, env_name):
    r = rendered[env_name]
    for stack_id in ("NodeIam", "ServerInit"):
        values = r.root["Resources"][stack_id]["Properties"]["Parameters"]
        assert values["ClusterStateParameterName"] == naming.cluster_state_parameter(r.env)
        assert values["RestoreRequestParameterName"] == naming.restore_request_parameter(r.env)
    s = _statements(r, "FirstServer")
    # PutParameter: a lone first server leaves a request for its replacement (bootstrap/watch.sh).
    assert set(s["RestoreRequest"]["Action"]) == {"ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter"}
    assert "RestoreRequestParameterName" in json.dumps(s["RestoreRequest"]["Resource"])
    assert "ClusterStateParameterName" in json.dumps(s["ClusterStateMarker"]["Resource"])
    for other in ("Server", "Agent"):  # joining servers and agents never touch either
        text = json.dumps(_statements(r, other))
        assert "RestoreRequestParameterName" not in text and "ClusterStateParameterName" not in text, other
    # Only this cluster's groups of the node's own role (an agent must not be able to fail the
    # servers; k3s-infra:role tags: server-init, server, agent).
    for role, tag in (("FirstServer", "server-init"), ("Server", "server"), ("Agent", "agent")):
        health = _statements(r, role)["ReportOwnHealth"]
        assert health["Action"] == ["autoscaling:SetInstanceHealth"]
        assert health["Condition"] == {"StringEquals": {
            "autoscaling:ResourceTag/k3s-infra:cluster": r.env.stack_name,
            "autoscaling:ResourceTag/k3s-infra:role": [tag]}}, role


# --- data: snapshots, add-on secrets, the drain queue --------------------------------

@pytest.mark.parametrize("path", DEPLOYABLE, ids=lambda p: p.stem)
def test_snapshot_object_grant_is_the_folder_k3s_writes_to(path):
    """The servers may touch snapshot objects only under the etcd-s3-folder their K3s config
    names (https://docs.k3s.io/cli/etcd-snapshot: --etcd-s3-folder), never the whole bucket."""
    rendering = render(load_environment(path=path))
    templates = {s.stack_id: yaml.safe_load(s.body) for s in rendering.children}
    folder = yaml.safe_load(written_files(templates["ServerInit"])["/etc/rancher/k3s/config.yaml"])["etcd-s3-folder"]
    assert folder and "*" not in folder
    object_resources = []
    issuer = "${IssuerBucketName}"  # the OIDC issuer's bucket: test_only_the_first_server_publishes_the_issuer
    for resource in templates["NodeIam"]["Resources"].values():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if statement.get("Sid") in ("ReadAddonManifests", "ReadK3sArtifacts"):  # the artifact bucket:
                    continue  # test_only_servers_read_the_addon_manifests, test_every_node_reads_the_staged_k3s_files
                if any(a in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:*") for a in actions):
                    object_resources += [_flatten_sub(r) for r in statement["Resource"]
                                         if issuer not in _flatten_sub(r)]
    assert object_resources
    for arn in object_resources:
        assert re.fullmatch(r"arn:\$\{AWS::Partition\}:s3:::\$\{[A-Za-z]+\}/" + re.escape(folder) + r"/\*", arn), arn


def test_only_servers_read_the_addon_manifests(everything):
    """Issue 24: the add-ons' object (the user's chart values, in no template) is readable by the
    server roles alone, and only under this cluster's add-ons prefix of the artifact bucket,
    which holds the object the bundle pins."""
    from tests.support.iam_eval import Request, allowed
    from tests.support.iam_policies import roles_of

    env, _, _, templates = everything
    values = {"AWS::Partition": "aws", "AWS::Region": env.region, "AWS::AccountId": env.account_id,
              "AWS::URLSuffix": "amazonaws.com"}
    values |= {name: f"x-{name}" for name in templates["NodeIam"].get("Parameters", {})}
    node_roles = roles_of(templates["NodeIam"], values)
    settings = dict(line.split("=", 1) for line in
                    bundle_files(templates["ServerInit"])["/usr/local/lib/k3s-infra/bundle.env"].splitlines())
    bucket, key = settings["ADDONS_BUCKET"].strip("'"), settings["ADDONS_KEY"].strip("'")
    assert bucket == env.artifact_bucket  # where the deployer uploads (deploy/package.py)

    def reads(role: str, object_key: str) -> bool:
        return allowed(node_roles[role]["policies"], Request("s3:GetObject", f"arn:aws:s3:::{bucket}/{object_key}"))

    assert reads("FirstServerRole", key) and reads("ServerRole", key)
    assert not reads("AgentRole", key)
    other_cluster = key.replace(f"{env.stack_name}/", "k3s-other/", 1)
    assert not reads("ServerRole", other_cluster) and not reads("ServerRole", f"{env.stack_name}/templates/x.yaml")


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_every_node_reads_the_staged_k3s_files_and_nothing_else_new(rendered, env_name):
    """Issue 25: every node reads the K3s binary and airgap images the deployer staged in the
    artifact bucket (deploy/artifacts.py, <stack>/k3s/<sha256>/<file>; boot.sh install_k3s), and
    only them: this cluster's prefix, GetObject alone; no other key, cluster, action or listing."""
    from tests.support.iam_eval import Request, allowed
    from tests.support.iam_policies import roles_of

    r = rendered[env_name]
    env, template = r.env, r.templates["NodeIam"]
    values = {"AWS::Partition": "aws", "AWS::Region": env.region, "AWS::AccountId": env.account_id,
              "AWS::URLSuffix": "amazonaws.com"} | {name: f"x-{name}" for name in template.get("Parameters", {})}
    node_roles = roles_of(template, values)
    bucket, stack = env.artifact_bucket, env.stack_name  # deploy.artifact_bucket's default, deploy.stack_name

    def can(role: str, action: str, resource: str) -> bool:
        return allowed(node_roles[f"{role}Role"]["policies"], Request(action, f"arn:aws:s3:::{resource}"))

    staged = [f"{bucket}/{stack}/k3s/{'a' * 64}/{name}" for name in ("k3s", "k3s-arm64",
                                                                      "k3s-airgap-images-amd64.tar.zst")]
    for role in ("FirstServer", "Server", "Agent"):
        assert all(can(role, "s3:GetObject", key) for key in staged), role
        assert not any(can(role, action, staged[0]) for action in ("s3:PutObject", "s3:DeleteObject")), role
        for other in (f"{bucket}/k3s-other/k3s/{'a' * 64}/k3s", f"{bucket}/{stack}/templates/0123/root.yaml",
                      f"{bucket}/{stack}/k3s-other/x", f"another-bucket/{stack}/k3s/{'a' * 64}/k3s"):
            assert not can(role, "s3:GetObject", other), (role, other)
        assert not can(role, "s3:ListBucket", bucket), role
        statement = _statements(r, role)["ReadK3sArtifacts"]
        assert statement["Action"] == ["s3:GetObject"]
        assert statement["Resource"] == [{"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{bucket}/{stack}/k3s/*"}]
        # The artifact bucket appears in no other new statement (servers also read the add-ons' object).
        naming_bucket = [sid for sid, s in _statements(r, role).items() if bucket in json.dumps(s)]
        allowed_too = {"ReadAddonManifests"} if role != "Agent" else set()
        assert "ReadK3sArtifacts" in naming_bucket and set(naming_bucket) - allowed_too == {"ReadK3sArtifacts"}, role


def test_only_the_server_roles_read_the_addon_secrets(everything):
    env, _, _, templates = everything
    roles = {k: r for k, r in templates["NodeIam"]["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    for server in SERVER_ROLES:
        statements = {s["Sid"]: s for s in roles[server]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]}
        assert statements["ReadAddonSecrets"]["Action"] == ["secretsmanager:GetSecretValue"]
        assert statements["ReadAddonSecrets"]["Resource"] == [{"Ref": s.output} for s in addons.secret_specs(env)]
    agent = json.dumps(roles["AgentRole"])
    assert not any(s.output in agent for s in addons.secret_specs(env))


def test_only_the_first_server_publishes_the_issuer_documents(rendered):
    """The two documents of service account issuer discovery, at the paths the API server
    serves them (https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/
    #service-account-issuer-discovery): /.well-known/openid-configuration and /openid/v1/jwks."""
    templates = rendered["prod"].templates
    writes = [(stack, logical, s) for stack, logical, s in allow_statements(templates)
              if "IssuerBucket" in json.dumps(s["Resource"])]
    (stack, logical, statement), = writes
    # A policy of its own (stacks/issuer_access.py), attached to the first server's role: the
    # role's stack and the first server never wait for the Identity stack's distribution.
    assert (stack, logical, statement["Action"]) == ("IssuerAccess", "PublishIssuerDocuments", ["s3:PutObject"])
    assert sorted(_flatten_sub(r) for r in statement["Resource"]) == [
        "arn:${AWS::Partition}:s3:::${IssuerBucketName}/.well-known/openid-configuration",
        "arn:${AWS::Partition}:s3:::${IssuerBucketName}/openid/v1/jwks"]
    policy = templates["IssuerAccess"]["Resources"]["PublishIssuerDocuments"]["Properties"]
    assert policy["Roles"] == [{"Ref": "FirstServerRoleName"}]
    wired = templates["Root"]["Resources"]["IssuerAccess"]["Properties"]["Parameters"]
    assert wired["FirstServerRoleName"] == {"Fn::GetAtt": ["NodeIam", "Outputs.FirstServerRoleName"]}
    assert templates["NodeIam"]["Outputs"]["FirstServerRoleName"]["Value"] == {"Ref": "FirstServerRole"}
    assert wired["IssuerBucketName"] == {"Fn::GetAtt": ["Identity", "Outputs.IssuerBucketName"]}


def test_no_node_role_drains_the_queue_the_handler_has_its_own_role(rendered, switched):
    templates = rendered["prod"].templates
    assert "sqs:" not in json.dumps(templates["NodeIam"]) and "DrainQueueArn" not in templates["NodeIam"]["Parameters"]
    queue = [(stack, logical, s) for stack, logical, s in allow_statements(templates) if "sqs:" in json.dumps(s)]
    (stack, logical, statement), = queue
    assert stack == "Identity" and _trusted_subject(templates["Identity"], logical) == subject(NTH_SERVICE_ACCOUNT)
    assert sorted(statement["Action"]) == ["sqs:DeleteMessage", "sqs:ReceiveMessage"]
    assert statement["Resource"] == [{"Ref": "DrainQueueArn"}]
    assert templates["Root"]["Resources"]["Identity"]["Properties"]["Parameters"]["DrainQueueArn"] == \
        {"Fn::GetAtt": ["Draining", "Outputs.DrainQueueArn"]}
    off = switched["prod-off"][0]
    assert "sqs:" not in json.dumps(off["Identity"]) and "DrainQueueArn" not in off["Identity"].get("Parameters", {})


def _trusted_subject(template: dict, logical: str) -> str:
    """The one `sub` a role's trust policy admits (read from its Fn::Sub JSON text)."""
    text, _ = template["Resources"][logical]["Properties"]["AssumeRolePolicyDocument"]["Fn::Sub"]
    (statement,) = json.loads(text)["Statement"]
    (value,) = [v for k, v in statement["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    return value


# --- the cluster autoscaler: scaling only this cluster's discovered groups ------------

@pytest.mark.parametrize("name", ["dev", "prod"])
def test_only_the_autoscalers_role_scales_and_only_groups_with_the_discovery_tag(rendered, name):
    document = read_document(ROOT / "environments" / f"{name}.yaml")
    templates = rendered[name].templates
    scaling = [(stack, logical, s) for stack, logical, s in allow_statements(templates)
               if SCALING & set(as_list(s["Action"]))]
    (stack, logical, statement), = scaling
    assert stack == "Identity" and _trusted_subject(templates[stack], logical) == subject(AUTOSCALER_SERVICE_ACCOUNT)
    assert set(as_list(statement["Action"])) == SCALING
    assert statement["Condition"] == {"StringEquals": {f"aws:ResourceTag/{PREFIX}/{cluster_of(document)}": "owned"}}
    for resource in as_list(statement["Resource"]):
        assert resource != "*" and ":autoScalingGroup:" in resource["Fn::Sub"]
    # The tag the condition needs is on every pool's group and on no server group.
    tagged = [stack_id for stack_id, t in templates.items() for g in groups(t)
              if any(tag["Key"] == f"{PREFIX}/{cluster_of(document)}" and tag["Value"] == "owned" for tag in g["Tags"])]
    assert sorted(tagged) == sorted(s for s in templates if s.startswith("AgentPool"))


def test_the_autoscalers_role_has_its_reads(rendered):
    # README "Full Cluster Autoscaler Features Policy" minus eks:DescribeNodegroup (EKS only).
    wanted = {"autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
              "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
              "ec2:DescribeImages", "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplateVersions",
              "ec2:GetInstanceTypesFromInstanceRequirements"}
    templates = rendered["prod"].templates
    (logical,) = [k for k, r in templates["Identity"]["Resources"].items() if r["Type"] == "AWS::IAM::Role"
                  and _trusted_subject(templates["Identity"], k) == subject(AUTOSCALER_SERVICE_ACCOUNT)]
    granted = {a for stack, role, s in allow_statements(templates) if (stack, role) == ("Identity", logical)
               for a in as_list(s["Action"])}
    assert wanted <= granted
    assert "eks:DescribeNodegroup" not in granted


# --- the AWS cloud controller ---------------------------------------------------------

def test_cloud_controller_actions_match_its_documented_policy(rendered):
    granted = set().union(*(set(as_list(s["Action"])) for s in server_ccm_statements(rendered["prod"].templates)))
    granted &= OFFICIAL_CCM_POLICY | OTHER_USERS | {a.JSONrepr() for a in iam_actions.DESCRIBE_ONLY}
    assert granted - OFFICIAL_CCM_POLICY == OTHER_USERS | {"elasticloadbalancing:DescribeLoadBalancerAttributes"} - \
        OFFICIAL_CCM_POLICY
    assert OFFICIAL_CCM_POLICY - granted == NOT_NEEDED


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
        # The create calls the controller sends tags with at v1.33.0 (tests/unit/components/test_ccm_calls.py):
        # CreateListener too (aws_loadbalancer.go createListenerV2, issue 23).
        assert set(as_list(equals[create_key])) <= {"CreateSecurityGroup", "CreateLoadBalancer", "CreateTargetGroup",
                                                    "CreateListener"}
        assert statement["Condition"]["ForAnyValue:StringEquals"]["aws:TagKeys"] == [cluster_key]
