"""`k3s-infra snapshots create` through the real CLI on the session's moto server. moto 5.2.5
models SendCommand and GetCommandInvocation (every invocation Success, nothing run) but not
DescribeInstanceInformation: the emulator's SSM Agent stand-in (k3s_infra/emulator/nodes.py
apply_ssm_agent) answers it, and uploads the object K3s's `etcd-snapshot save` would, at
<etcd-s3-folder>/<name>-<node name>-<unix seconds> (k3s-io/k3s pkg/etcd/snapshot.go; nodes are
named by instance ID, boot.sh). The test reads the command moto recorded to see what was asked
of which instance."""

from __future__ import annotations

import json

import pytest
import yaml

STACK = "k3s-snapnow"


@pytest.fixture(scope="module")
def config(write_env):
    return str(write_env("snapnow.yaml", servers={"count": 1}, deploy={"stack_name": STACK}))


def _outputs(aws, stack: str) -> dict:
    return {o["OutputKey"]: o["OutputValue"] for o in
            aws.cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])}


def _first_server(aws) -> str:
    physical = aws.cloudformation.describe_stack_resource(StackName=STACK, LogicalResourceId="ServerInit")[
        "StackResourceDetail"]["PhysicalResourceId"]
    group = _outputs(aws, physical)["AutoScalingGroupName"]
    (instance,) = aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"][0]["Instances"]
    return instance["InstanceId"]


def test_deploy(cli, config):
    assert cli("deploy", "--config", config, "--yes").code == 0


def test_create_takes_a_snapshot_on_the_server_and_finds_it_in_s3(cli, config, aws):
    server = _first_server(aws)
    result = cli("snapshots", "create", "--config", config, "--output", "json")
    assert result.code == 0, result
    document = json.loads(result.out)  # exactly one document on stdout; progress went to stderr
    assert document["kind"] == "snapshot" and document["stack_name"] == STACK
    snapshot = document["snapshot"]
    # K3s's on-demand name: on-demand-<node name>-<unix seconds>, under the file's folder etcd/<env>
    assert snapshot["name"].startswith(f"on-demand-{server}-") and snapshot["name"].rsplit("-", 1)[1].isdigit()
    name = yaml.safe_load(open(config))["name"]  # the environment's name: naming.snapshot_folder etcd/<name>
    assert snapshot["key"] == f"etcd/{name}/{snapshot['name']}"
    bucket = _outputs(aws, STACK)["SnapshotBucketName"]
    assert aws.s3.head_object(Bucket=bucket, Key=snapshot["key"])["ContentLength"] == snapshot["size"]
    (command,) = [c for c in aws.ssm.list_commands()["Commands"] if c["Comment"] == "k3s-infra snapshots create"]
    assert command["InstanceIds"] == [server] and command["DocumentName"] == "AWS-RunShellScript"
    assert any("etcd-snapshot save" in line for line in command["Parameters"]["commands"])
    assert server in result.err  # the progress names the server it ran on


def test_the_listing_shows_it_and_stays_as_it_was(cli, config):
    listing = json.loads(cli("snapshots", "--config", config, "--output", "json").out)
    assert listing["kind"] == "snapshots" and listing["snapshots"][0]["name"].startswith("on-demand-")


def test_shell_refuses_without_the_plugin(cli, config, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    result = cli("shell", "--role", "server", "--config", config)
    assert result.code == 2 and "session-manager-plugin is not installed" in result.err
    assert "session-manager-working-with-install-plugin.html" in result.err


def test_destroy(cli, config):
    assert cli("destroy", "--config", config, "--yes").code == 0
