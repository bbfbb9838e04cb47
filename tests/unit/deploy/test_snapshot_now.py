"""``snapshot_now.take_snapshot`` against botocore's Stubber with strict expected parameters and
responses shaped as the SSM, Auto Scaling and S3 API references give them (botocore's
service-2.json: DescribeInstanceInformation's InstanceInformationList and PingStatus
Online|ConnectionLost|Inactive, SendCommand's Command, GetCommandInvocation's Status
Pending|InProgress|Delayed|Success|Cancelled|TimedOut|Failed|Cancelling, ListObjectsV2's
Contents). The stack lookups are replaced (tests/e2e/test_snapshot_now.py runs them on moto).

What it must do: run `k3s etcd-snapshot save` through AWS-RunShellScript on an InService server
whose agent is Online, wait for the command, then for the object K3s uploads
(<etcd-s3-folder>/on-demand-<node name>-<unix seconds>: k3s-io/k3s pkg/etcd/snapshot.go; nodes
are named by instance ID, boot.sh) that was not there before; fail clearly otherwise."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy import DeployError, changeset, node_access, snapshot_now

ENV = load_environment("dev")
BUCKET = "k3s-dev-snapshots"
FOLDER = f"etcd/{ENV.name}"  # naming.snapshot_folder: the etcd-s3-folder the servers' config.yaml names
INIT, SERVERS = "k3s-dev-ServerInit-ASG", "k3s-dev-Servers-ASG"
FIRST, SECOND, THIRD = "i-0123456789abcdef0", "i-0fedcba9876543210", "i-0aaaabbbbccccdddd"
COMMAND_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
OLD = f"{FOLDER}/etcd-snapshot-{FIRST}-1700000000"
WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _client(service):
    return boto3.client(service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x",
                        endpoint_url=f"https://{service}.invalid")


def _group(name, *instances, state="InService", health="Healthy"):
    return {"AutoScalingGroupName": name, "MinSize": 1, "MaxSize": 3, "DesiredCapacity": len(instances),
            "DefaultCooldown": 300, "AvailabilityZones": ["eu-west-1a"], "HealthCheckType": "EC2",
            "CreatedTime": WHEN, "Instances": [
                {"InstanceId": i, "AvailabilityZone": "eu-west-1a", "LifecycleState": state,
                 "HealthStatus": health, "ProtectedFromScaleIn": False} for i in instances]}


def _info(instance, ping):
    return {"InstanceId": instance, "PingStatus": ping, "LastPingDateTime": WHEN, "AgentVersion": "3.3.1345.0",
            "PlatformType": "Linux", "PlatformName": "Amazon Linux", "PlatformVersion": "2023",
            "ResourceType": "EC2Instance", "IPAddress": "10.0.0.5"}


def _objects(*keys):
    return {"IsTruncated": False, "Name": BUCKET, "Prefix": f"{FOLDER}/", "KeyCount": len(keys), "MaxKeys": 1000,
            "Contents": [{"Key": k, "Size": 4096, "LastModified": WHEN, "ETag": '"e"', "StorageClass": "STANDARD"}
                         for k in keys]}


def _invocation(status, **extra):
    return {"CommandId": COMMAND_ID, "InstanceId": FIRST, "DocumentName": "AWS-RunShellScript",
            "PluginName": "aws:runShellScript", "ResponseCode": -1, "Status": status, "StatusDetails": status,
            "StandardOutputContent": "", "StandardErrorContent": "", **extra}


class Clock:
    def __init__(self, step=5.0):
        self.now, self.step = 0.0, step

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += self.step


@pytest.fixture
def rig(monkeypatch):
    aws = SimpleNamespace(env=ENV, ssm=_client("ssm"), autoscaling=_client("autoscaling"), s3=_client("s3"),
                          cloudformation=None,  # nested_stack is replaced below
                          check_account=lambda: ENV.account_id)
    stubs = {name: Stubber(getattr(aws, name)) for name in ("ssm", "autoscaling", "s3")}
    for stub in stubs.values():
        stub.activate()
    root = {"StackId": "root-id", "StackStatus": "UPDATE_COMPLETE",
            "Outputs": [{"OutputKey": "SnapshotBucketName", "OutputValue": BUCKET}]}
    monkeypatch.setattr(changeset, "deployed", lambda _aws: root)
    stacks = {"ServerInit": INIT, "Servers": SERVERS}
    monkeypatch.setattr(node_access, "nested_stack", lambda _cfn, _root, logical: {
        "Outputs": [{"OutputKey": "AutoScalingGroupName", "OutputValue": stacks[logical]}]})
    clock = Clock()
    monkeypatch.setattr(time, "monotonic", clock.monotonic)
    monkeypatch.setattr(time, "sleep", clock.sleep)
    return SimpleNamespace(aws=aws, clock=clock, **stubs)


def _servers(rig, *groups):
    rig.autoscaling.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": list(groups)},
                                 {"AutoScalingGroupNames": [INIT, SERVERS]})


def _online(rig, ids, *infos):
    rig.ssm.add_response("describe_instance_information", {"InstanceInformationList": list(infos)},
                         {"Filters": [{"Key": "InstanceIds", "Values": ids}], "MaxResults": 50})


def _listing(rig, *keys):
    rig.s3.add_response("list_objects_v2", _objects(*keys), {"Bucket": BUCKET, "Prefix": f"{FOLDER}/"})


def _send(rig, instance, timeout=600):
    # SendCommand TimeoutSeconds is at least 30 (service-2.json TimeoutSeconds); the script's
    # executionTimeout is the whole wait, in seconds (AWS-RunShellScript).
    rig.ssm.add_response("send_command", {"Command": {"CommandId": COMMAND_ID, "DocumentName": "AWS-RunShellScript",
                                                      "InstanceIds": [instance], "Status": "Pending"}},
                         {"InstanceIds": [instance], "DocumentName": "AWS-RunShellScript",
                          "Comment": "k3s-infra snapshots create", "TimeoutSeconds": max(30, timeout),
                          "Parameters": {"commands": ["set -eu",
                                                      "/usr/local/bin/k3s etcd-snapshot save --name on-demand"],
                                         "executionTimeout": [str(timeout)]}})


def _status(rig, instance, response):
    rig.ssm.add_response("get_command_invocation", response, {"CommandId": COMMAND_ID, "InstanceId": instance,
                                                             "PluginName": "aws:runShellScript"})


def test_snapshot_on_the_first_online_server_then_its_new_object(rig):
    # The first server's agent lost its connection: the second server takes the command.
    _servers(rig, _group(INIT, FIRST), _group(SERVERS, SECOND, THIRD))
    _online(rig, [FIRST, SECOND, THIRD], _info(FIRST, "ConnectionLost"), _info(SECOND, "Online"),
            _info(THIRD, "Online"))
    _listing(rig, OLD)
    _send(rig, SECOND)
    rig.ssm.add_client_error("get_command_invocation", "InvocationDoesNotExist", expected_params=None)
    _status(rig, SECOND, {**_invocation("InProgress"), "InstanceId": SECOND})
    _status(rig, SECOND, {**_invocation("Success", ResponseCode=0), "InstanceId": SECOND})
    new = f"{FOLDER}/on-demand-{SECOND}-1767225600"
    _listing(rig, OLD)  # the upload is not listed yet
    _listing(rig, OLD, f"{FOLDER}/on-demand-{THIRD}-1767225601", new)  # another server's does not count
    seen = []
    snapshot = snapshot_now.take_snapshot(rig.aws, timeout=600, poll=5, on_progress=seen.append)
    assert (snapshot.name, snapshot.key) == (f"on-demand-{SECOND}-1767225600", new)
    assert any(SECOND in line and "etcd-snapshot save" in line for line in seen)
    for stub in (rig.ssm, rig.autoscaling, rig.s3):
        stub.assert_no_pending_responses()


def test_a_failed_command_says_why_with_its_stderr(rig):
    _servers(rig, _group(INIT, FIRST), _group(SERVERS))
    _online(rig, [FIRST], _info(FIRST, "Online"))
    _listing(rig, OLD)
    _send(rig, FIRST)
    _status(rig, FIRST, _invocation("Failed", ResponseCode=1,
                                    StandardErrorContent="level=fatal msg=\"etcd database not found\""))
    with pytest.raises(DeployError, match=r"etcd-snapshot save.*ended Failed \(exit 1\).*etcd database not found"):
        snapshot_now.take_snapshot(rig.aws, timeout=600, poll=5)


def test_no_online_agent_names_each_server_and_describe_instance_information(rig):
    _servers(rig, _group(INIT, FIRST), _group(SERVERS, SECOND, THIRD, state="Pending"))
    _online(rig, [FIRST])  # it never registered: DescribeInstanceInformation does not list it
    with pytest.raises(DeployError) as error:
        snapshot_now.take_snapshot(rig.aws, timeout=600, poll=5)
    text = str(error.value)
    assert f"{FIRST}: its SSM Agent never registered" in text and "DescribeInstanceInformation" in text
    assert SECOND not in text  # not in service: never a candidate


def test_a_command_that_never_ends_gives_up_at_the_timeout(rig):
    _servers(rig, _group(INIT, FIRST), _group(SERVERS))
    _online(rig, [FIRST], _info(FIRST, "Online"))
    _listing(rig, OLD)
    _send(rig, FIRST, timeout=10)
    for _ in range(3):
        _status(rig, FIRST, _invocation("InProgress"))
    with pytest.raises(DeployError, match=f"gave up after 10s waiting for command {COMMAND_ID}"):
        snapshot_now.take_snapshot(rig.aws, timeout=10, poll=5)


def test_a_snapshot_that_never_appears_points_at_the_server_log(rig):
    _servers(rig, _group(INIT, FIRST), _group(SERVERS))
    _online(rig, [FIRST], _info(FIRST, "Online"))
    _listing(rig, OLD)
    _send(rig, FIRST, timeout=10)
    _status(rig, FIRST, _invocation("Success", ResponseCode=0))
    for _ in range(3):
        _listing(rig, OLD)
    with pytest.raises(DeployError, match=r"gave up after 10s.*on-demand-" + FIRST + r".*journalctl -u k3s"):
        snapshot_now.take_snapshot(rig.aws, timeout=10, poll=5)


def test_send_command_refused_for_an_offline_agent_is_explained(rig):
    _servers(rig, _group(INIT, FIRST), _group(SERVERS))
    _online(rig, [FIRST], _info(FIRST, "Online"))
    _listing(rig, OLD)
    rig.ssm.add_client_error("send_command", "InvalidInstanceId", "Instances [[i-0123456789abcdef0]] not in a "
                             "valid state for account 123456789012", expected_params=None)
    with pytest.raises(DeployError, match="InvalidInstanceId: its SSM Agent is not online"):
        snapshot_now.take_snapshot(rig.aws, timeout=600, poll=5)


@pytest.mark.parametrize("section, value, field", [
    ("k3s", {"etcd_snapshots": {"enabled": False}}, "k3s.etcd_snapshots.enabled"),
    ("node_access", {"session_manager": False, "run_command": False}, "node_access.run_command"),
])
def test_refused_before_any_call_when_the_file_turns_it_off(rig, section, value, field):
    document = ENV.model_dump(mode="json")
    document[section] = {**document[section], **value}
    rig.aws.env = type(ENV).model_validate(document)
    with pytest.raises(DeployError, match=field.replace(".", r"\.")):
        snapshot_now.take_snapshot(rig.aws, timeout=600, poll=5)  # no stubbed response: any call would fail


def test_other_client_errors_are_not_swallowed(rig):
    _servers(rig, _group(INIT, FIRST), _group(SERVERS))
    _online(rig, [FIRST], _info(FIRST, "Online"))
    _listing(rig, OLD)
    _send(rig, FIRST)
    rig.ssm.add_client_error("get_command_invocation", "AccessDeniedException", expected_params=None)
    with pytest.raises(ClientError, match="AccessDenied"):
        snapshot_now.take_snapshot(rig.aws, timeout=600, poll=5)


def test_progress_says_the_commands_status_then_waits_for_the_object_and_names_where_it_is(rig):
    # docs/operations.md "Taking a snapshot now", worked example: the server and command, the
    # command's status while it runs, then the snapshot's name and s3://bucket/key.
    _servers(rig, _group(INIT, FIRST), _group(SERVERS))
    _online(rig, [FIRST], _info(FIRST, "Online"))
    _listing(rig, OLD)
    _send(rig, FIRST)
    _status(rig, FIRST, _invocation("InProgress"))
    _status(rig, FIRST, _invocation("Success", ResponseCode=0))
    new = f"{FOLDER}/on-demand-{FIRST}-1767225600"
    _listing(rig, OLD)  # K3s has not uploaded it yet
    _listing(rig, OLD, new)
    seen = []
    snapshot_now.take_snapshot(rig.aws, timeout=600, poll=5, on_progress=seen.append)
    assert f"command {COMMAND_ID}: InProgress" in seen
    waiting = [line for line in seen if "waiting" in line]
    assert len(waiting) == 1 and f"{FOLDER}/on-demand-{FIRST}-" in waiting[0]  # the object it waits for
    assert seen[-1] == f"on-demand-{FIRST}-1767225600 is in s3://{BUCKET}/{new}"
    assert seen.index(f"command {COMMAND_ID}: InProgress") < seen.index(waiting[0]) < len(seen) - 1


def test_a_long_stderr_is_quoted_by_its_end_where_the_error_is(rig):
    # GetCommandInvocation gives up to 8,000 characters of stderr (service-2.json
    # StandardErrorContent); K3s's fatal line comes last: the error quotes the end, not all of it.
    noise = "".join(f'level=info msg="step {n}"\n' for n in range(300))  # ~7,000 characters
    _servers(rig, _group(INIT, FIRST), _group(SERVERS))
    _online(rig, [FIRST], _info(FIRST, "Online"))
    _listing(rig, OLD)
    _send(rig, FIRST)
    _status(rig, FIRST, _invocation("Failed", ResponseCode=1,
                                    StandardErrorContent=noise + 'level=fatal msg="etcd database not found"\n'))
    with pytest.raises(DeployError) as error:
        snapshot_now.take_snapshot(rig.aws, timeout=600, poll=5)
    text = str(error.value)
    assert 'level=fatal msg="etcd database not found"' in text and '"step 0"' not in text
    assert len(text) < 2000 and f"(command {COMMAND_ID})" in text
