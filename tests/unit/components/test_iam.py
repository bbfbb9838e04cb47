"""Safety guards pinned at the lowest level that owns them (component, config model, deploy
library), not only through the CLI: each test fails if its one guard is removed."""

from __future__ import annotations

import json
import re

import boto3
import pytest
import yaml
from moto import mock_aws
from troposphere import Base64, Ref

from k3s_infra.components import addon_secrets, launch_template, snapshot_bucket
from k3s_infra.config import ConfigError, EtcdSnapshots, load_environment, validate
from k3s_infra.deploy import DeployError, lifecycle
from k3s_infra.deploy.aws import Aws
from k3s_infra.render import render
from k3s_infra.components.template import StackTemplate
from oracle_helpers import DEPLOYABLE, REPO, plain_document, written_files

# AWS::* DeletionPolicy values that keep the resource when its stack is deleted
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html).
KEEPS_ON_DELETE = {"Retain", "RetainExceptOnCreate"}


def _resources(template: StackTemplate) -> dict[str, dict]:
    return template.template.to_dict()["Resources"]


# --- retention ---------------------------------------------------------------------------

def test_addon_secrets_component_retains_when_asked(env_document):
    document = env_document("dev")
    document["addons"] = {"rancher": {"enabled": True, "values": {"hostname": "r.example.com"}},
                          "grafana": {"enabled": True}}
    env = validate(document, "dev.yaml")
    for retain, allowed in ((True, KEEPS_ON_DELETE), (False, {"Delete"})):
        t = StackTemplate("test", {})
        addon_secrets.build(t, env, Ref("Key"), retain=retain)
        secrets = {k: v for k, v in _resources(t).items() if v["Type"] == "AWS::SecretsManager::Secret"}
        assert len(secrets) == 2  # rancher bootstrapPassword, grafana adminPassword
        for logical, secret in secrets.items():
            assert secret["DeletionPolicy"] in allowed, (retain, logical)


def test_every_secret_key_and_bucket_of_a_protected_environment_is_retained():
    """From the environment files: protected ones keep every secret (add-on secrets included),
    the cluster key and the snapshot bucket; others delete them."""
    kinds = {"AWS::SecretsManager::Secret", "AWS::KMS::Key", "AWS::S3::Bucket"}
    for path in DEPLOYABLE:
        protected = plain_document(path).get("protected", False)
        rendering = render(load_environment(path=path))
        found = 0
        for stack in rendering.children:
            for logical, resource in yaml.safe_load(stack.body)["Resources"].items():
                if resource["Type"] in kinds:
                    found += 1
                    policy = resource.get("DeletionPolicy", "Delete")
                    assert (policy in KEEPS_ON_DELETE) is protected, (path.name, logical, policy)
                    if protected:
                        assert resource.get("UpdateReplacePolicy") == "Retain", (path.name, logical)
        assert found >= 5, path.name


# --- launch template ------------------------------------------------------------------

def _launch_data() -> dict:
    t = StackTemplate("test", {})
    spec = launch_template.LaunchSpec(instance_type="t3.small", root_volume_gb=30, image_id=Ref("ImageId"),
                                      security_group_id=Ref("Sg"), instance_profile_arn=Ref("Profile"),
                                      user_data=Base64("#cloud-config\n"), tags={"a": "b"})
    launch_template.build(t, "NodeLaunchTemplate", spec)
    return _resources(t)["NodeLaunchTemplate"]["Properties"]["LaunchTemplateData"]


def test_launch_template_keeps_imds_on_and_requires_tokens():
    """HttpEndpoint disabled would cut nodes off the metadata service (no role credentials,
    no instance ID); HttpTokens required is IMDSv2 only
    (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html)."""
    options = _launch_data()["MetadataOptions"]
    assert options["HttpEndpoint"] == "enabled"
    assert options["HttpTokens"] == "required"
    assert options["HttpPutResponseHopLimit"] in (1, 2)  # 2 only for pods that need it (DESIGN.md)


def test_launch_template_root_volume_is_encrypted():
    (volume,) = _launch_data()["BlockDeviceMappings"]
    assert volume["Ebs"]["Encrypted"] is True and volume["Ebs"]["VolumeSize"] == 30


# --- API endpoint -----------------------------------------------------------------------

@pytest.mark.parametrize("path", DEPLOYABLE, ids=lambda p: p.stem)
def test_api_target_groups_health_check_the_k3s_api_port(path):
    """6443 is the K3s supervisor and API port (https://docs.k3s.io/installation/requirements#inbound-rules-for-k3s-nodes):
    the NLB must probe the port the servers listen on."""
    groups = []
    for stack in render(load_environment(path=path)).children:
        for resource in yaml.safe_load(stack.body)["Resources"].values():
            if resource["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup":
                groups.append(resource["Properties"])
    api = [g for g in groups if g["Port"] == 6443]
    assert api
    for group in api:
        assert str(group.get("HealthCheckPort", "traffic-port")) in ("6443", "traffic-port")
        assert group["Protocol"] == "TCP" and group.get("HealthCheckProtocol", "TCP") in ("TCP", "HTTPS")


# --- snapshot bucket --------------------------------------------------------------------

def test_snapshot_bucket_blocks_every_kind_of_public_access():
    """All four S3 Block Public Access settings, each explicitly true
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html)."""
    t = StackTemplate("test", {})
    snapshot_bucket.build(t, EtcdSnapshots(), retain=False)
    block = _resources(t)["SnapshotBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    assert block == {"BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
                     "RestrictPublicBuckets": True}


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


@pytest.mark.parametrize("path", DEPLOYABLE, ids=lambda p: p.stem)
def test_snapshot_object_grant_is_the_folder_k3s_writes_to(path):
    """The servers may touch snapshot objects only under the etcd-s3-folder their K3s config
    names (https://docs.k3s.io/cli/etcd-snapshot: --etcd-s3-folder), never the whole bucket."""
    rendering = render(load_environment(path=path))
    templates = {s.stack_id: yaml.safe_load(s.body) for s in rendering.children}
    folder = yaml.safe_load(written_files(templates["ServerInit"])["/etc/rancher/k3s/config.yaml"])["etcd-s3-folder"]
    assert folder and "*" not in folder
    object_resources = []
    for resource in templates["NodeIam"]["Resources"].values():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if any(a in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:*") for a in actions):
                    object_resources += [_flatten_sub(r) for r in statement["Resource"]]
    assert object_resources
    for arn in object_resources:
        assert re.fullmatch(r"arn:\$\{AWS::Partition\}:s3:::\$\{[A-Za-z]+\}/" + re.escape(folder) + r"/\*", arn), arn


# --- config ------------------------------------------------------------------------------

def _schema_max_servers() -> int:
    schema = json.loads((REPO / "environments" / "schema.json").read_text())
    return schema["$defs"]["Servers"]["properties"]["count"]["maximum"]


@pytest.mark.parametrize("count", range(2, _schema_max_servers() + 1, 2))
def test_even_server_counts_are_refused_up_to_the_schema_maximum(env_document, count):
    """etcd needs a majority: an even member count tolerates no more failures than one less
    (https://etcd.io/docs/v3.5/faq/#why-an-odd-number-of-cluster-members)."""
    document = env_document("prod")
    document["servers"]["count"] = count
    with pytest.raises(ConfigError) as caught:
        validate(document, "prod.yaml")
    assert "servers.count" in str(caught.value) and "odd" in str(caught.value)


@pytest.mark.parametrize("count", range(1, _schema_max_servers() + 1, 2))
def test_odd_server_counts_are_accepted(env_document, count):
    document = env_document("prod")
    document["servers"]["count"] = count
    assert validate(document, "prod.yaml").servers.count == count


# --- deploy library --------------------------------------------------------------------

@mock_aws
def test_library_destroy_refuses_a_termination_protected_stack(monkeypatch):
    """The library refuses, not only the CLI: CloudFormation itself would also refuse
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-protect-stacks.html),
    but destroy must say so before it lifts the protection of anything."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env = load_environment("dev")
    cfn = boto3.client("cloudformation", region_name=env.region)
    body = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})
    cfn.create_stack(StackName=env.stack_name, TemplateBody=body, EnableTerminationProtection=True)
    assert cfn.describe_stacks(StackName=env.stack_name)["Stacks"][0]["EnableTerminationProtection"] is True
    calls = []
    monkeypatch.setattr(type(cfn), "update_termination_protection", lambda self, **kw: calls.append(kw),
                        raising=False)
    with pytest.raises(DeployError, match="termination protection"):
        lifecycle.destroy(Aws(env), confirm=lambda what: True, allow_protected=False, poll=0)
    assert calls == []  # protection left as it was
    assert cfn.describe_stacks(StackName=env.stack_name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


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
