"""``k3s-infra shell``: the session handed to the session-manager-plugin exactly as the AWS CLI
hands it (aws/aws-cli awscli/customizations/sessionmanager.py, StartSessionCaller.invoke:
argv = plugin, the response or the name of the variable holding it, region, "StartSession",
profile or "", the request's parameters as JSON, endpoint URL; plugins newer than 1.2.497.0 read
the response from AWS_SSM_START_SESSION_RESPONSE), against botocore's Stubber with responses
shaped as service-2.json gives them (EC2 DescribeInstances, SSM DescribeInstanceInformation and
StartSession: SessionId, TokenValue, StreamUrl). Refusals: exit 2 before any AWS call when
the file turns sessions off (naming the file and node_access.session_manager) or no usable
plugin is installed (naming where to get it)."""

from __future__ import annotations

import json
import os
import stat
from types import SimpleNamespace

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli import main, shell
from k3s_infra.config import environment_file, load_environment, read_document
from k3s_infra.deploy import changeset, node_access

ENV = load_environment("dev")
NODE = "i-0123456789abcdef0"
SESSION = {"SessionId": "alice-0a1b2c3d4e5f6a7b8", "TokenValue": "AAEAAfake-token",
           "StreamUrl": "wss://ssmmessages.eu-west-1.amazonaws.com/v1/data-channel/alice-0a1b2c3d4e5f6a7b8"}
INSTALL = ("https://docs.aws.amazon.com/systems-manager/latest/userguide/"
           "session-manager-working-with-install-plugin.html")


def _plugin(folder, version="1.2.694.0"):
    path = folder / "session-manager-plugin"
    path.write_text(f"#!/bin/sh\necho '{version}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _client(service):
    return boto3.client(service, region_name=ENV.region, aws_access_key_id="x", aws_secret_access_key="x",
                        endpoint_url=f"https://{service}.{ENV.region}.amazonaws.com")


@pytest.fixture
def rig(monkeypatch, tmp_path):
    aws = SimpleNamespace(env=ENV, ssm=_client("ssm"), ec2=_client("ec2"), check_account=lambda: ENV.account_id)
    stubs = SimpleNamespace(ssm=Stubber(aws.ssm), ec2=Stubber(aws.ec2))
    stubs.ssm.activate()
    stubs.ec2.activate()
    monkeypatch.setattr(cli_aws, "Aws", lambda env, session=None: aws)
    monkeypatch.setattr(cli_aws, "boto3", SimpleNamespace(Session=lambda **kwargs: SimpleNamespace(profile_name=None)))
    monkeypatch.setenv("PATH", str(tmp_path))
    plugin = _plugin(tmp_path)
    executed = []
    monkeypatch.setattr(os, "execve", lambda path, argv, variables: executed.append((path, argv, variables)))
    return SimpleNamespace(aws=aws, stubs=stubs, plugin=str(plugin), executed=executed)


def _running(rig, key, value, *instances):
    rig.stubs.ec2.add_response(
        "describe_instances", {"Reservations": [{"ReservationId": "r-1", "OwnerId": ENV.account_id, "Instances": [
            {"InstanceId": i, "PrivateDnsName": "ip-10-0-1-5.eu-west-1.compute.internal",
             "State": {"Code": 16, "Name": "running"}} for i in instances]}] if instances else []},
        {"Filters": [{"Name": key, "Values": [value]}, {"Name": "instance-state-name", "Values": ["running"]},
                     {"Name": "tag:k3s-infra:cluster", "Values": [ENV.stack_name]}]})


def _ping(rig, instance, status):
    infos = [{"InstanceId": instance, "PingStatus": status, "PlatformType": "Linux", "ResourceType": "EC2Instance"}]
    rig.stubs.ssm.add_response("describe_instance_information",
                               {"InstanceInformationList": infos if status else []},
                               {"Filters": [{"Key": "InstanceIds", "Values": [instance]}], "MaxResults": 50})


def test_a_node_by_private_dns_name_gets_the_aws_cli_plugin_contract(rig, capsys):
    _running(rig, "private-dns-name", "ip-10-0-1-5.*", NODE)  # the short name matches the full one
    _ping(rig, NODE, "Online")
    rig.stubs.ssm.add_response("start_session", SESSION, {"Target": NODE, "Reason": "k3s-infra shell"})
    assert main(["shell", "ip-10-0-1-5", "--env", "dev", "--profile", "ops"]) == 0
    ((path, argv, variables),) = rig.executed
    assert path == rig.plugin and argv[0] == rig.plugin
    assert argv[1:5] == ["AWS_SSM_START_SESSION_RESPONSE", ENV.region, "StartSession", "ops"]
    assert json.loads(argv[5]) == {"Target": NODE, "Reason": "k3s-infra shell"}
    assert argv[6] == f"https://ssm.{ENV.region}.amazonaws.com"
    assert json.loads(variables["AWS_SSM_START_SESSION_RESPONSE"]) == SESSION
    assert SESSION["TokenValue"] not in " ".join(argv)  # the token stays out of the process list
    rig.stubs.ssm.assert_no_pending_responses()


def test_without_a_profile_the_plugin_gets_an_empty_one(rig):
    _running(rig, "instance-id", NODE, NODE)
    _ping(rig, NODE, "Online")
    rig.stubs.ssm.add_response("start_session", SESSION, {"Target": NODE, "Reason": "k3s-infra shell"})
    assert main(["shell", NODE, "--env", "dev"]) == 0
    assert rig.executed[0][1][4] == ""


@pytest.mark.parametrize("status, said", [("ConnectionLost", "SSM Agent ConnectionLost"),
                                          (None, "never registered")])
def test_a_node_whose_agent_is_not_online_is_explained_and_no_session_starts(rig, capsys, status, said):
    _running(rig, "instance-id", NODE, NODE)
    _ping(rig, NODE, status)
    assert main(["shell", NODE, "--env", "dev"]) == 1
    err = capsys.readouterr().err
    assert said in err and "DescribeInstanceInformation" in err and not rig.executed


def test_a_node_not_in_this_cluster_is_the_users_mistake(rig, capsys):
    _running(rig, "instance-id", NODE)
    assert main(["shell", NODE, "--env", "dev"]) == 2
    assert f"no running node '{NODE}' in {ENV.stack_name}" in capsys.readouterr().err


def test_target_not_connected_from_start_session_is_explained(rig, capsys):
    _running(rig, "instance-id", NODE, NODE)
    _ping(rig, NODE, "Online")
    rig.stubs.ssm.add_client_error("start_session", "TargetNotConnected", f"{NODE} is not connected.")
    assert main(["shell", NODE, "--env", "dev"]) == 1
    assert "TargetNotConnected" in capsys.readouterr().err and not rig.executed


def test_a_role_takes_the_first_in_service_node_with_an_online_agent(rig, monkeypatch):
    nodes = [node_access.Node("i-0aaaaaaaaaaaaaaaa", "ServerInit", "init"), node_access.Node(NODE, "Servers", "s")]
    monkeypatch.setattr(changeset, "deployed", lambda aws: {"StackId": "root"})
    asked = []
    monkeypatch.setattr(node_access, "in_service", lambda aws, root, stacks: asked.append(stacks) or nodes)
    rig.stubs.ssm.add_response("describe_instance_information", {"InstanceInformationList": [
        {"InstanceId": "i-0aaaaaaaaaaaaaaaa", "PingStatus": "Inactive"}, {"InstanceId": NODE, "PingStatus": "Online"}]},
        {"Filters": [{"Key": "InstanceIds", "Values": ["i-0aaaaaaaaaaaaaaaa", NODE]}], "MaxResults": 50})
    rig.stubs.ssm.add_response("start_session", SESSION, {"Target": NODE, "Reason": "k3s-infra shell"})
    assert main(["shell", "--role", "server", "--env", "dev"]) == 0
    assert asked == [("ServerInit", "Servers")]
    assert rig.executed[0][1][5] == json.dumps({"Target": NODE, "Reason": "k3s-infra shell"})


@pytest.mark.parametrize("argv, said", [
    (["--role", "server:general"], "--role 'server:general'"), (["--role", "db"], "--role 'db'"),
    ([NODE, "--role", "server"], "one of them"), ([], "one of them"), (["--role", "agent:"], "--role 'agent:'"),
    (["--role", "agent:nosuchpool"], "agent pool 'nosuchpool' is not in dev"), (["node-1"], "is not a node name"),
])
def test_wrong_targets_exit_2(rig, capsys, argv, said):
    assert main(["shell", *argv, "--env", "dev"]) == 2
    assert said in capsys.readouterr().err and not rig.executed


def test_sessions_turned_off_in_the_file_refuse_before_any_call(rig, capsys, tmp_path):
    document = read_document(environment_file("dev"))
    document.pop("extends", None)
    document["node_access"] = {"session_manager": False}
    path = tmp_path / "locked.yaml"
    path.write_text(yaml.safe_dump(document))
    assert main(["shell", NODE, "--config", str(path)]) == 2  # no stubbed response: any AWS call would fail
    err = capsys.readouterr().err
    assert str(path) in err and "node_access.session_manager" in err and not rig.executed


@pytest.mark.parametrize("version", ["1.2.497.0", "1.1.0", "not a version", ""])
def test_a_plugin_too_old_for_the_environment_variable_is_refused(rig, capsys, tmp_path, version):
    _plugin(tmp_path, version)
    assert main(["shell", NODE, "--env", "dev"]) == 2
    assert "newer than 1.2.497.0" in capsys.readouterr().err and not rig.executed


def test_no_plugin_exits_2_with_where_to_get_it(rig, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["shell", NODE, "--env", "dev"]) == 2
    err = capsys.readouterr().err
    assert "session-manager-plugin is not installed" in err and INSTALL in err
