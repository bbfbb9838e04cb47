"""One cluster's whole life on the session's moto server, through the real CLI:
deploy -> status -> plan an update -> deploy it -> up to date -> kubeconfig -> destroy.
The tests run in file order and each builds on the previous one."""

from __future__ import annotations

import base64
import stat

import pytest
import yaml
from tests.support.emulated_account import FIRST_DEPLOY_STATUS

STACK = "k3s-life"
POOL = {"name": "general", "instance_types": ["t3.small"], "min_size": 1, "desired": 1, "max_size": 3,
        "root_volume_gb": 30, "labels": {"workload": "general"}}
STACK_STATES = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}


@pytest.fixture(scope="module")
def config(write_env):
    return str(write_env("life.yaml", deploy={"stack_name": STACK, "tags": {"managed-by": "k3s-infra"}},
                         agent_pools=[POOL]))


@pytest.fixture(scope="module")
def updated_config(write_env):
    return str(write_env("life-updated.yaml", deploy={"stack_name": STACK, "tags": {"managed-by": "k3s-infra"}},
                         agent_pools=[{**POOL, "desired": 2}]))


def nested(aws, stack=STACK) -> dict[str, dict]:
    cfn = aws.cloudformation
    result = {}
    for res in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]:
        if res["ResourceType"] == "AWS::CloudFormation::Stack":
            result[res["LogicalResourceId"]] = cfn.describe_stacks(StackName=res["PhysicalResourceId"])["Stacks"][0]
    return result


def groups(aws) -> dict[str, dict]:
    """Node group stack -> its ASG, found through the stack's AutoScalingGroupName output."""
    result = {}
    for logical, stack in nested(aws).items():
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        if "AutoScalingGroupName" in outputs:
            result[logical] = aws.autoscaling.describe_auto_scaling_groups(
                AutoScalingGroupNames=[outputs["AutoScalingGroupName"]])["AutoScalingGroups"][0]
    return result


def secret_values(aws) -> list[str]:
    sm = aws.secretsmanager
    return [sm.get_secret_value(SecretId=s["ARN"])["SecretString"]
            for s in sm.list_secrets()["SecretList"] if STACK in s["Name"]]


def test_deploy_creates_every_stack(cli, config, aws):
    result = cli("deploy", "--config", config, "--yes")
    assert result.code == 0, result
    root = aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    assert root["StackStatus"] == FIRST_DEPLOY_STATUS
    children = nested(aws)
    assert set(children) == {"Security", "ApiEndpoint", "ClusterData", "NodeIam", "Identity", "IssuerAccess",
                             "ServerInit", "Servers", "AgentPoolGeneral"}
    # The recording changes no nested stack (same templates, same parameters).
    assert {c["StackStatus"] for c in children.values()} == {"CREATE_COMPLETE"}
    # Created without roll order, then the ordered root recorded (deploy/roll_order.py).
    assert "recorded the roll order for later updates" in result.out
    # stack tags from config and naming.cluster_tags
    tags = {t["Key"]: t["Value"] for t in root["Tags"]}
    assert tags["k3s-infra:cluster"] == STACK and tags["managed-by"] == "k3s-infra"
    # what a person reads: events per stack, outputs at the end
    assert "AgentPoolGeneral" in result.out and "CREATE_COMPLETE" in result.out
    assert "ApiDnsName" in result.out and "KubeconfigSecretArn" in result.out
    for value in secret_values(aws):
        assert value not in result.out + result.err


def test_the_addons_manifests_were_uploaded_encrypted_and_are_in_no_template(config, aws):
    """Issue 24: the deploy put the add-ons' manifests (the user's chart values) in the artifact
    bucket, SSE-KMS, under the key the servers' bundle pins; no deployed template holds them."""
    from k3s_infra.bootstrap import bundle
    from k3s_infra.config import load_environment

    env = load_environment(path=config)
    charts = bundle.addons_object(env)
    assert charts is not None  # the cluster autoscaler: this file's pool can grow
    head = aws.s3.head_object(Bucket=charts.bucket, Key=charts.key)
    assert head["ServerSideEncryption"] == "aws:kms"
    body = aws.s3.get_object(Bucket=charts.bucket, Key=charts.key)["Body"].read().decode()
    assert body == charts.body and "cluster-autoscaler" in body
    # the servers' bundles as deployed (their SSM parameters, decoded) carry none of it
    from k3s_infra.model import roles
    for role in (roles.SERVER_INIT, roles.SERVER):
        value = "".join(aws.ssm.get_parameter(Name=name)["Parameter"]["Value"]
                        for name in bundle.parameter_names(env, role))
        files = bundle.unpack(value)
        assert bundle.ADDONS_MANIFEST not in files and not any("kind: HelmChart\n" in text and "autoscaler" in text
                                                               for text in files.values()), role.name
        assert charts.key in files[bundle.BUNDLE_ENV]


def test_every_group_runs_its_instances_with_launch_template_user_data(aws):
    ec2 = aws.ec2
    found = groups(aws)
    assert set(found) == {"ServerInit", "Servers", "AgentPoolGeneral"}
    assert {k: g["DesiredCapacity"] for k, g in found.items()} == {"ServerInit": 1, "Servers": 0,
                                                                    "AgentPoolGeneral": 1}
    for logical, group in found.items():
        instances = group["Instances"]
        assert len(instances) == group["DesiredCapacity"], logical
        spec = group.get("LaunchTemplate") or group["MixedInstancesPolicy"]["LaunchTemplate"][
            "LaunchTemplateSpecification"]
        data = ec2.describe_launch_template_versions(LaunchTemplateId=spec["LaunchTemplateId"])[
            "LaunchTemplateVersions"][0]["LaunchTemplateData"]["UserData"]
        assert base64.b64decode(data).decode().startswith("#cloud-config")
        for instance in instances:
            state = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0]
            assert state["State"]["Name"] == "running"
            user_data = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
            assert user_data["UserData"]["Value"] == data, logical


def test_status_shows_stacks_outputs_and_groups(cli, config, aws):
    result = cli("status", "--config", config)
    assert result.code == 0, result
    for logical, status in (("Root", FIRST_DEPLOY_STATUS), ("Security", "CREATE_COMPLETE"),
                            ("ClusterData", "CREATE_COMPLETE"), ("AgentPoolGeneral", "CREATE_COMPLETE")):
        assert any(line.split()[:2] == [logical, status] for line in result.out.splitlines()), result
    assert any(line.split() == ["AgentPoolGeneral", "1", "1", "1", "3"] for line in result.out.splitlines()), result
    assert "KubeconfigSecretArn" in result.out
    for value in secret_values(aws):
        assert value not in result.out


def test_plan_shows_the_update_and_executes_nothing(cli, updated_config, aws):
    result = cli("plan", "--config", updated_config)
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert any(line.startswith("plan uploads the templates") for line in lines), result  # says it writes
    assert any(line.startswith(f"update {STACK}") for line in lines), result
    assert any(line.split()[:3] == ["Root", "Modify", "AgentPoolGeneral"] for line in result.out.splitlines()), result
    assert groups(aws)["AgentPoolGeneral"]["DesiredCapacity"] == 1  # nothing executed
    assert aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == FIRST_DEPLOY_STATUS


def test_deploy_update(cli, updated_config, aws):
    result = cli("deploy", "--config", updated_config, "--yes")
    assert result.code == 0, result
    assert aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    pool = groups(aws)["AgentPoolGeneral"]
    assert pool["DesiredCapacity"] == 2 and len(pool["Instances"]) == 2
    assert {c["StackStatus"] for c in nested(aws).values()} <= STACK_STATES


def test_deploy_without_changes_is_up_to_date(cli, updated_config):
    result = cli("deploy", "--config", updated_config, "--yes")
    assert result.code == 0, result
    assert "up to date" in result.out


def test_kubeconfig_before_the_cluster_published_it(cli, updated_config, tmp_path):
    out = tmp_path / "early.kubeconfig"
    result = cli("kubeconfig", "--config", updated_config, "--out", str(out))
    assert result.code == 1, result
    assert "not published" in result.err and not out.exists()


def test_kubeconfig_written_private(cli, updated_config, aws, tmp_path):
    arn = {o["OutputKey"]: o["OutputValue"] for o in
           aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]}["KubeconfigSecretArn"]
    token = "K10fake0token0never0printed::server:0123456789abcdef"
    dns = "k3s-life-api.elb.eu-west-1.amazonaws.com"
    kubeconfig = yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "default",
        "clusters": [{"name": "default", "cluster": {"server": f"https://{dns}:6443",
                                                     "certificate-authority-data": "Q0E="}}],
        "users": [{"name": "default", "user": {"token": token}}],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}]})
    aws.secretsmanager.put_secret_value(SecretId=arn, SecretString=kubeconfig)  # as the init server does
    out = tmp_path / "sub" / "life.kubeconfig"
    result = cli("kubeconfig", "--config", updated_config, "--out", str(out))
    assert result.code == 0, result
    written = yaml.safe_load(out.read_text())
    # K3s publishes "default" names; the CLI names cluster, user and context after the cluster
    published = yaml.safe_load(kubeconfig)
    for kind in ("clusters", "users", "contexts"):
        published[kind][0]["name"] = STACK
    published["contexts"][0]["context"] = {"cluster": STACK, "user": STACK}
    published["current-context"] = STACK
    assert written == published
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert f"https://{dns}:6443" in result.out
    assert token not in result.out + result.err


def test_destroy_deletes_everything(cli, updated_config, aws):
    before = [i["InstanceId"] for g in groups(aws).values() for i in g["Instances"]]
    children = [c["StackId"] for c in nested(aws).values()]
    assert before
    result = cli("destroy", "--config", updated_config, "--yes")
    assert result.code == 0, result
    cfn = aws.cloudformation
    live = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"
            and s["StackName"].startswith(STACK)]
    assert live == []
    for stack_id in children:
        assert cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    states = {i["InstanceId"]: i["State"]["Name"] for r in
              aws.ec2.describe_instances(InstanceIds=before)["Reservations"] for i in r["Instances"]}
    assert set(states.values()) == {"terminated"}, states
    assert not [s for s in aws.secretsmanager.list_secrets()["SecretList"] if STACK in s["Name"]]
    assert "nothing retained" in result.out
    # a second destroy finds nothing to do
    again = cli("destroy", "--config", updated_config, "--yes")
    assert again.code == 0 and "nothing to destroy" in again.out
