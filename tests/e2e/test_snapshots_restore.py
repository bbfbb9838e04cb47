"""Snapshots listing and restore through the real CLI on the session's moto server.
K3s's uploads are simulated as K3s lays them out (k3s-io/k3s:pkg/etcd/s3/s3.go: the
snapshot at <folder>/<name>, optional metadata at <folder>/.metadata/<name>); the
booting first server is simulated by a test-side "node" that deletes the restore
request once the CLI has stopped the joining servers and replaced the init server. A
restore no boot answers deletes its request; status and deploy show one left behind."""

from __future__ import annotations

import json
import threading
import time

import pytest

from k3s_infra.deploy.restore_request import parse

STACK = "k3s-snap"
REQUEST = f"/k3s-infra/{STACK}/restore-request"
NAMES = ["etcd-snapshot-ip-10-0-0-5-1700000000", "etcd-snapshot-ip-10-0-0-5-1700021600",
         "on-demand-ip-10-0-0-5-1700030000.zip"]  # uploaded in this order: newest last


@pytest.fixture(scope="module")
def config(write_env, aws):
    path = str(write_env("snap.yaml", servers={"count": 3}, deploy={"stack_name": STACK}))
    return path


def outputs(aws, stack) -> dict:
    return {o["OutputKey"]: o["OutputValue"] for o in
            aws.cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])}


def group(aws, logical) -> dict:
    cfn = aws.cloudformation
    physical = cfn.describe_stack_resource(StackName=STACK, LogicalResourceId=logical)[
        "StackResourceDetail"]["PhysicalResourceId"]
    name = outputs(aws, physical)["AutoScalingGroupName"]
    return aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def test_deploy(cli, config):
    assert cli("deploy", "--config", config, "--yes").code == 0


def test_snapshots_are_listed_newest_first(cli, config, aws):
    bucket = outputs(aws, STACK)["SnapshotBucketName"]
    for i, name in enumerate(NAMES):
        aws.s3.put_object(Bucket=bucket, Key=f"etcd/dev/{name}", Body=b"x" * (100 + i))
        aws.s3.put_object(Bucket=bucket, Key=f"etcd/dev/.metadata/{name}", Body=b"{}")
        time.sleep(1.1)  # S3 LastModified has one-second resolution
    aws.s3.put_object(Bucket=bucket, Key="etcd/dev/empty-upload", Body=b"")  # K3s skips empty objects
    aws.s3.put_object(Bucket=bucket, Key="etcd/other-env/etcd-snapshot-x-1", Body=b"y")  # another folder
    table = cli("snapshots", "--config", config)
    assert table.code == 0, table
    rows = [line.split() for line in table.out.splitlines()]
    assert rows[0][:2] == ["NAME", "SIZE"]
    assert [r[0] for r in rows[1:]] == NAMES[::-1]
    assert [r[1:3] for r in rows[1:]] == [["102", "B"], ["101", "B"], ["100", "B"]]  # bytes below 1 KiB
    listed_doc = json.loads(cli("snapshots", "--config", config, "--output", "json").out)
    assert listed_doc["kind"] == "snapshots" and listed_doc["version"] == 1
    listed = listed_doc["snapshots"]
    assert [s["name"] for s in listed] == NAMES[::-1]
    assert listed[0]["key"] == f"etcd/dev/{NAMES[-1]}" and listed[0]["size"] == 102
    assert set(listed[0]) == {"name", "key", "size", "last_modified"}


def test_restore_refuses_without_terminal_or_yes(cli, config, aws, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    result = cli("restore", "--config", config)
    assert result.code == 2 and "--yes" in result.err, result
    with pytest.raises(aws.ssm.exceptions.ParameterNotFound):
        aws.ssm.get_parameter(Name=REQUEST)
    assert group(aws, "Servers")["DesiredCapacity"] == 2


def test_restore_replaces_the_servers_and_waits_for_the_first_one(cli, config, aws):
    init_before = [i["InstanceId"] for i in group(aws, "ServerInit")["Instances"]]
    assert len(init_before) == 1 and group(aws, "Servers")["DesiredCapacity"] == 2
    seen = {}

    def node():
        """The booting first server: restores the requested snapshot, then deletes the request."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                seen["request"] = aws.ssm.get_parameter(Name=REQUEST)["Parameter"]["Value"]
                servers, init = group(aws, "Servers"), group(aws, "ServerInit")
                fresh = [i["InstanceId"] for i in init["Instances"] if i["InstanceId"] not in init_before]
                if servers["DesiredCapacity"] == 0 and not servers["Instances"] and fresh:
                    seen.update(servers_stopped=True, new_init=fresh, init_desired=init["DesiredCapacity"])
                    aws.ssm.delete_parameter(Name=REQUEST)
                    return
            except aws.ssm.exceptions.ParameterNotFound:
                pass
            time.sleep(0.2)

    thread = threading.Thread(target=node)
    thread.start()
    started = time.time()
    result = cli("restore", "--config", config, "--snapshot", NAMES[1], "--yes", "--timeout", "30")
    thread.join()
    assert result.code == 0, result
    request = parse(seen["request"])
    assert request.snapshot == NAMES[1]  # the snapshot name as K3s lists it
    assert request.replaces == tuple(init_before)  # the first server it terminated
    assert started + 30 <= request.expires <= time.time() + 31  # written at some point of the run, + timeout
    assert seen["servers_stopped"] and seen["init_desired"] == 1
    state = aws.ec2.describe_instances(InstanceIds=init_before)["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state in ("shutting-down", "terminated")
    servers = group(aws, "Servers")
    assert (servers["MinSize"], servers["DesiredCapacity"], servers["MaxSize"]) == (2, 2, 2)
    assert "waiting for" in result.out and "5/5" in result.out


def test_a_restore_that_times_out_deletes_its_request(cli, config, aws):
    """No boot takes the request: the CLI gives up, deletes it (a later boot would otherwise
    act on it) and says how to bring the joining servers back."""
    result = cli("restore", "--config", config, "--yes", "--timeout", "3")
    assert result.code == 1, result
    assert f"deleted the restore request {REQUEST}, so no later boot acts on it" in result.err
    assert "2/5 wrote" in result.out and "update-auto-scaling-group" in result.err
    with pytest.raises(aws.ssm.exceptions.ParameterNotFound):
        aws.ssm.get_parameter(Name=REQUEST)
    name = group(aws, "Servers")["AutoScalingGroupName"]
    aws.autoscaling.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=2, MaxSize=2, DesiredCapacity=2)


def test_status_and_deploy_show_a_request_left_behind(cli, config, aws):
    value = f"snapshot={NAMES[0]} replaces=i-0123456789abcdef0 expires={int(time.time()) - 3 * 3600 - 60}"
    aws.ssm.put_parameter(Name=REQUEST, Value=value, Type="String")
    try:
        text = cli("status", "--config", config)
        assert (f"restore request {REQUEST}: snapshot {NAMES[0]}, replaces i-0123456789abcdef0, expired 3h ago "
                f"(ignored by the boot; delete with: aws ssm delete-parameter --name {REQUEST}") in text.out, text
        doc = json.loads(cli("status", "--config", config, "-o", "json").out)["restore_request"]
        assert (doc["state"], doc["value"], doc["replaces"]) == ("expired", value, ["i-0123456789abcdef0"])
        deployed = cli("deploy", "--config", config, "--yes")
        assert deployed.code == 0, deployed
        assert f"warning: restore request {REQUEST}: snapshot {NAMES[0]}" in deployed.out
    finally:
        aws.ssm.delete_parameter(Name=REQUEST)


def test_restore_of_an_unknown_snapshot_is_refused(cli, config):
    result = cli("restore", "--config", config, "--snapshot", "nope", "--yes")
    assert result.code == 1 and "nope" in result.err, result


def test_destroy(cli, config, aws):
    assert cli("destroy", "--config", config, "--yes").code == 0
