"""deploy/drill_api.py: the drill reads its restored cluster on one of its servers through Run Command.

The script (read_script) runs here under /bin/sh with a stand-in ``k3s`` that prints what K3s's kubectl
prints: for ``get nodes -o jsonpath=...`` one ``<name> <Ready status>`` line per Node (the template's
text; https://kubernetes.io/docs/reference/kubectl/jsonpath/), for ``get configmap NAME
--ignore-not-found -o json`` the object, or nothing at all when it does not exist (kubernetes/kubectl
pkg/cmd/get/get.go printGeneric), and with the API down kubectl's refusal on stderr, exit 1. What the
script printed is what GetCommandInvocation returns in StandardOutputContent (at most 24,000
characters: botocore ssm service-2.json), and the Stubber serves it, in responses shaped as
service-2.json gives DescribeInstanceInformation, SendCommand and GetCommandInvocation."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime, timezone
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import ANY, Stubber

from k3s_infra.bootstrap.k3s_config import K3S_BINARY
from k3s_infra.config import load_environment
from k3s_infra.deploy import DeployError, changeset, drill_api, node_access
from k3s_infra.deploy.drill_api import Marker
from k3s_infra.deploy.drill_env import drill_environment
from k3s_infra.model import naming

DRILL = drill_environment(load_environment("dev"))
INIT, SERVERS = "k3s-dev-drill-ServerInit-ASG", "k3s-dev-drill-Servers-ASG"
FIRST, SECOND, THIRD = "i-0123456789abcdef0", "i-0fedcba9876543210", "i-0aaaabbbbccccdddd"
OLD = ("i-0111111111111111a", "i-0222222222222222b")  # the cluster's nodes, restored from the snapshot
COMMAND_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
WRITTEN = "2026-12-04T05:59:10+00:00"
WHEN = datetime(2026, 12, 4, tzinfo=timezone.utc)
REFUSED = "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?"


def _k3s(folder, nodes: dict[str, str], marker: dict | None, api_up: bool = True) -> str:
    """A stand-in ``k3s`` binary: ``k3s kubectl --request-timeout=... get nodes|configmap ...``."""
    lines = "".join(f"{name} {status}\\n" for name, status in nodes.items())
    configmap = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": naming.DRILL_MARKER_NAME, "namespace": naming.DRILL_MARKER_NAMESPACE,
        "managedFields": [{"manager": "k3s-infra-drill", "operation": "Apply"}]}, "data": marker}, indent=4)
    path = folder / "k3s"
    path.write_text("#!/bin/sh\n"
                    + ("" if api_up else f"echo '{REFUSED}' >&2; exit 1\n")
                    + 'case "$4" in\n'
                    + f"  nodes) printf '{lines}' ;;\n"
                    + ("  configmap) cat <<'JSON'\n" + configmap + "\nJSON\n    ;;\n" if marker else "")
                    + "esac\n")
    path.chmod(0o755)
    return str(path)


def _run(folder, expected, **k3s) -> subprocess.CompletedProcess:
    binary = _k3s(folder, **k3s)
    script = "\n".join(drill_api.read_script(expected)).replace(K3S_BINARY, binary)
    assert script.count(binary) == 2  # both reads are K3s's kubectl (no other binary stood in for)
    return subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, timeout=30)


NODES = {FIRST: "True", SECOND: "False", OLD[0]: "Unknown", OLD[1]: "Unknown", THIRD: "True"}
MARKER = {"written-at": WRITTEN, "cluster": "k3s-dev"}


def test_the_script_prints_what_parse_reads(tmp_path):
    ran = _run(tmp_path, (FIRST, SECOND, THIRD), nodes=NODES, marker=MARKER)
    assert ran.returncode == 0, ran.stderr
    seen = drill_api.parse(ran.stdout, (FIRST, SECOND, THIRD))
    assert (seen.ready, seen.missing, seen.others) == ((FIRST, THIRD), (SECOND,), 2)
    assert seen.marker == Marker(datetime(2026, 12, 4, 5, 59, 10, tzinfo=timezone.utc), "k3s-dev")
    assert seen.marker_found and not seen.nodes_ready  # SECOND is not Ready yet


def test_the_output_stays_small_however_many_nodes_the_snapshot_brought_back(tmp_path):
    many = {**NODES, **{f"i-0{n:016x}": "Unknown" for n in range(3000)}}  # ~90,000 characters of node lines
    ran = _run(tmp_path, (FIRST, SECOND, THIRD), nodes=many, marker=MARKER)
    seen = drill_api.parse(ran.stdout, (FIRST, SECOND, THIRD))
    assert len(ran.stdout) < 1000 < node_access.STDOUT_MAX and seen.others == 3002


def test_no_marker_is_an_answer_not_an_error(tmp_path):
    ran = _run(tmp_path, (FIRST,), nodes={FIRST: "True"}, marker=None)
    seen = drill_api.parse(ran.stdout, (FIRST,))
    assert seen.marker is None and seen.marker_found and seen.nodes_ready and seen.error is None


def test_an_api_that_is_not_up_fails_the_script_with_kubectls_words(tmp_path):
    ran = _run(tmp_path, (FIRST,), nodes={}, marker=None, api_up=False)
    assert ran.returncode != 0 and REFUSED in ran.stderr and "end" not in ran.stdout


def test_an_answer_cut_at_the_output_limit_or_not_the_scripts_is_refused():
    with pytest.raises(DeployError, match="cut at 24,000 characters"):
        drill_api.parse("nodes 1\n" + "x" * node_access.STDOUT_MAX, (FIRST,))
    with pytest.raises(DeployError, match="not the script's"):
        drill_api.parse("Error from server (Forbidden)\n", (FIRST,))
    with pytest.raises(DeployError, match="written-at"):
        drill_api.parse('nodes 1\nmarker\n{"data": {}}\nend\n', (FIRST,))


def test_only_instance_ids_go_into_the_script():
    with pytest.raises(DeployError, match="none in service"):
        drill_api.read_script(())
    with pytest.raises(DeployError, match="'; reboot"):
        drill_api.read_script((FIRST, "'; reboot"))


# --- look: Run Command on the drill's server ------------------------------------------------

def _client(service):
    return boto3.client(service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x",
                        endpoint_url=f"https://{service}.invalid")


def _group(name, *instances):
    return {"AutoScalingGroupName": name, "MinSize": 1, "MaxSize": 3, "DesiredCapacity": len(instances),
            "DefaultCooldown": 300, "AvailabilityZones": ["eu-west-1a"], "HealthCheckType": "EC2",
            "CreatedTime": WHEN, "Instances": [
                {"InstanceId": i, "AvailabilityZone": "eu-west-1a", "LifecycleState": "InService",
                 "HealthStatus": "Healthy", "ProtectedFromScaleIn": False} for i in instances]}


def _info(instance, ping):
    return {"InstanceId": instance, "PingStatus": ping, "LastPingDateTime": WHEN, "AgentVersion": "3.3.1345.0",
            "PlatformType": "Linux", "PlatformName": "Amazon Linux", "PlatformVersion": "2023",
            "ResourceType": "EC2Instance", "IPAddress": "10.0.0.5"}


def _invocation(instance, status, **extra):
    return {"CommandId": COMMAND_ID, "InstanceId": instance, "DocumentName": "AWS-RunShellScript",
            "PluginName": "aws:runShellScript", "ResponseCode": -1, "Status": status, "StatusDetails": status,
            "StandardOutputContent": "", "StandardErrorContent": "", **extra}


@pytest.fixture
def rig(monkeypatch):
    aws = SimpleNamespace(env=DRILL, ssm=_client("ssm"), autoscaling=_client("autoscaling"), cloudformation=None)
    stubs = SimpleNamespace(ssm=Stubber(aws.ssm), autoscaling=Stubber(aws.autoscaling))
    stubs.ssm.activate()
    stubs.autoscaling.activate()
    monkeypatch.setattr(changeset, "stack_state", lambda _cfn, name: {"StackId": f"{name}-id"})
    groups = {"ServerInit": INIT, "Servers": SERVERS}
    monkeypatch.setattr(node_access, "nested_stack", lambda _cfn, _root, logical: {
        "Outputs": [{"OutputKey": "AutoScalingGroupName", "OutputValue": groups[logical]}]})
    monkeypatch.setattr(time, "sleep", lambda _seconds: None)
    stubs.autoscaling.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [
        _group(INIT, FIRST), _group(SERVERS, SECOND, THIRD)]}, {"AutoScalingGroupNames": [INIT, SERVERS]})
    yield SimpleNamespace(aws=aws, **vars(stubs))
    stubs.ssm.assert_no_pending_responses()
    stubs.autoscaling.assert_no_pending_responses()


def _sent_to(rig, instance):
    # The script is one AWS-RunShellScript document's commands (its content: the tests above).
    rig.ssm.add_response("send_command", {"Command": {"CommandId": COMMAND_ID, "DocumentName": "AWS-RunShellScript",
                                                      "InstanceIds": [instance], "Status": "Pending"}},
                         {"InstanceIds": [instance], "DocumentName": "AWS-RunShellScript", "Comment": ANY,
                          "TimeoutSeconds": 60, "Parameters": {"commands": ANY, "executionTimeout": ["60"]}})


def _status(rig, instance, response):
    rig.ssm.add_response("get_command_invocation", response, {"CommandId": COMMAND_ID, "InstanceId": instance,
                                                             "PluginName": "aws:runShellScript"})


def test_look_runs_the_script_on_the_first_online_server_and_reads_its_output(rig, tmp_path):
    printed = _run(tmp_path, (FIRST, SECOND, THIRD), nodes=NODES, marker=MARKER).stdout
    rig.ssm.add_response("describe_instance_information", {"InstanceInformationList": [
        _info(FIRST, "ConnectionLost"), _info(SECOND, "Online"), _info(THIRD, "Online")]},
        {"Filters": [{"Key": "InstanceIds", "Values": [FIRST, SECOND, THIRD]}], "MaxResults": 50})
    _sent_to(rig, SECOND)
    rig.ssm.add_client_error("get_command_invocation", "InvocationDoesNotExist", expected_params=None)
    _status(rig, SECOND, _invocation(SECOND, "InProgress"))
    _status(rig, SECOND, _invocation(SECOND, "Success", ResponseCode=0, StandardOutputContent=printed))
    seen = drill_api.look(rig.aws, timeout=60, poll=1)
    assert (seen.ready, seen.missing, seen.others, seen.error) == ((FIRST, THIRD), (SECOND,), 2, None)
    assert seen.marker.written_at == datetime(2026, 12, 4, 5, 59, 10, tzinfo=timezone.utc)


def test_an_api_not_up_yet_is_the_looks_error_not_the_drills_end(rig, tmp_path):
    rig.ssm.add_response("describe_instance_information", {"InstanceInformationList": [_info(FIRST, "Online")]},
                         {"Filters": [{"Key": "InstanceIds", "Values": [FIRST, SECOND, THIRD]}], "MaxResults": 50})
    _sent_to(rig, FIRST)
    _status(rig, FIRST, _invocation(FIRST, "Failed", ResponseCode=1, StandardErrorContent=REFUSED))
    seen = drill_api.look(rig.aws, timeout=60, poll=1)
    assert seen.missing == tuple(sorted((FIRST, SECOND, THIRD))) and not seen.marker_found
    assert f"kubectl on {FIRST} ended Failed (exit 1)" in seen.error and "127.0.0.1:6443 was refused" in seen.error


def test_no_server_with_an_online_agent_is_the_looks_error(rig):
    rig.ssm.add_response("describe_instance_information", {"InstanceInformationList": [_info(FIRST, "Inactive")]},
                         {"Filters": [{"Key": "InstanceIds", "Values": [FIRST, SECOND, THIRD]}], "MaxResults": 50})
    seen = drill_api.look(rig.aws, timeout=60, poll=1)
    assert "no server has an online SSM Agent" in seen.error and f"{SECOND}: its SSM Agent never registered" in seen.error
