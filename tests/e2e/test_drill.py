"""k3s-infra drill through the real CLI on the session's moto server. The emulator runs no K3s: a
test-side "node" stands in for the drill's restoring first server (it checks what that boot would
read -- the snapshot in the drill's bucket, the cluster's token in the drill's token secret -- and
deletes the restore request, as first_server.sh publish does), and the drill's read of its restored
cluster, a Run Command on a drill server, is answered by the emulator's SSM Agent stand-in
(k3s_infra/emulator/nodes.py): the drill's running instances as Ready Nodes, and the Nodes and the
marker ConfigMap the restored snapshot object holds (a ``snapshot_body``). No marker in it, no
marker found: that drill fails.

Every AWS call the CLI makes is recorded (botocore's before-parameter-build on each session): none
that changes anything may name the cluster's resources, and the cluster's stack, token and snapshot
objects are as they were; the drill stack is gone at the end, also when the restore fails."""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest

from k3s_infra.deploy.drill_env import reads
from k3s_infra.emulator.nodes import snapshot_body

STACK = "k3s-drl"
DRILL = f"{STACK}-drill"
REQUEST = f"/k3s-infra/{DRILL}/restore-request"
SNAPSHOT = "etcd-snapshot-ip-10-0-0-5-1796385600"
OLDER = "etcd-snapshot-ip-10-0-0-5-1796300000"  # from before any marker was written
CLUSTER_NODES = ["i-0aaaaaaaaaaaaaaa0", "i-0aaaaaaaaaaaaaaa1"]  # the cluster's, in the snapshot
MARKER_AT = "2026-12-04T05:59:10+00:00"


@pytest.fixture(scope="module")
def config(write_env):
    return str(write_env("drl.yaml", servers={"count": 3}, deploy={"stack_name": STACK}))


def outputs(aws, stack) -> dict:
    return {o["OutputKey"]: o["OutputValue"] for o in
            aws.cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])}


def token_secret(aws, stack) -> str:
    data = aws.cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId="ClusterData")
    return outputs(aws, data["StackResourceDetail"]["PhysicalResourceId"])["TokenSecretArn"]


def drill_exists(aws) -> bool:
    try:
        stacks = aws.cloudformation.describe_stacks(StackName=DRILL)["Stacks"]
    except aws.cloudformation.exceptions.ClientError:
        return False
    return any(s["StackStatus"] != "DELETE_COMPLETE" for s in stacks)


@pytest.fixture
def calls(monkeypatch, aws):
    """Every call of the CLI's sessions: (operation, params)."""
    seen: list[tuple[str, dict]] = []
    real_session = boto3.Session

    def session(*args, **kwargs):
        made = real_session(*args, **kwargs)
        made.events.register("before-parameter-build",
                             lambda model, params, **_: seen.append((model.name, dict(params))))
        return made

    monkeypatch.setattr("k3s_infra.cli.aws.boto3.Session", session)
    return seen


def node(aws, seen: dict, stop: threading.Event) -> None:
    """The drill's restoring first server: once the request is there, look at what its boot reads."""
    while not stop.is_set():
        try:
            seen["request"] = aws.ssm.get_parameter(Name=REQUEST)["Parameter"]["Value"]
        except aws.ssm.exceptions.ParameterNotFound:
            time.sleep(0.2)
            continue
        ours = outputs(aws, DRILL)
        seen["objects"] = [o["Key"] for o in aws.s3.list_objects_v2(Bucket=ours["SnapshotBucketName"]).get(
            "Contents", [])]
        seen["token"] = aws.secretsmanager.get_secret_value(SecretId=token_secret(aws, DRILL))["SecretString"]
        aws.ssm.delete_parameter(Name=REQUEST)
        return


def test_deploy_and_snapshot(cli, config, aws):
    assert cli("deploy", "--config", config, "--yes").code == 0
    ours = outputs(aws, STACK)
    aws.s3.put_object(Bucket=ours["SnapshotBucketName"], Key=f"etcd/dev/{OLDER}",
                      Body=snapshot_body(CLUSTER_NODES, {}))
    time.sleep(1.1)  # S3 LastModified has one-second resolution: this one is the newest
    aws.s3.put_object(Bucket=ours["SnapshotBucketName"], Key=f"etcd/dev/{SNAPSHOT}", Body=snapshot_body(
        CLUSTER_NODES, {"kube-system/k3s-infra-drill-marker": {"written-at": MARKER_AT, "cluster": STACK}}))
    # The cluster's first server published its secure token (first_server.sh publish_token).
    aws.secretsmanager.put_secret_value(SecretId=token_secret(aws, STACK), SecretString="K10" + "a" * 64 + "::server:x")


def cluster_state(aws) -> dict:
    ours = outputs(aws, STACK)
    stack = aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    versions = aws.s3.list_object_versions(Bucket=ours["SnapshotBucketName"])
    return {"stack": (stack["StackStatus"], stack.get("LastUpdatedTime")),
            "token": aws.secretsmanager.get_secret_value(SecretId=token_secret(aws, STACK))["SecretString"],
            "objects": sorted((v["Key"], v["VersionId"]) for v in versions.get("Versions", [])),
            "markers": versions.get("DeleteMarkers", [])}


def drilled(cli, aws, *argv) -> tuple:
    """A drill with the restoring node standing by; (the CLI's result, what the node saw)."""
    seen, stop = {}, threading.Event()
    thread = threading.Thread(target=node, args=(aws, seen, stop))
    thread.start()
    try:
        return cli("drill", *argv), seen
    finally:
        stop.set()
        thread.join()


def test_drill_restores_measures_and_deletes_its_stack(cli, config, aws, calls):
    before = cluster_state(aws)
    result, seen = drilled(cli, aws, "--config", config, "--yes", "--timeout", "60", "--max-rto", "30", "-o", "json")
    assert result.code == 0, result
    doc = json.loads(result.out)
    assert doc["kind"] == "drill" and doc["outcome"] == "passed" and doc["drill_stack"] == DRILL
    assert doc["snapshot"]["name"] == SNAPSHOT  # the newest
    assert seen["request"].startswith(f"snapshot={SNAPSHOT} ")
    assert f"etcd/dev/{SNAPSHOT}" in seen["objects"]  # where the drill's K3s restores from
    assert seen["token"] == before["token"]  # K3s restores with the cluster's token
    assert doc["marker"]["written_at"] == MARKER_AT and doc["marker"]["age_seconds"] > 0
    assert len(doc["nodes"]["ready"]) == 3 and doc["nodes"]["restored_from_snapshot"] == 2
    assert doc["rto_seconds"] is not None and doc["rpo_seconds"] >= 0
    assert doc["objectives"] == [{"name": "rto", "limit_seconds": 1800.0, "actual_seconds": doc["rto_seconds"],
                                  "met": True}]
    assert doc["cleanup"] == {"outcome": "destroyed", "status": "DELETE_COMPLETE", "error": None}
    assert not drill_exists(aws)
    assert cluster_state(aws) == before  # stack, token and every snapshot version as they were
    cluster = {STACK, token_secret(aws, STACK), *outputs(aws, STACK).values()}
    changing = [(op, params) for op, params in calls if not reads(op)]
    assert changing, "the drill changed nothing at all?"
    for op, params in changing:
        named = json.dumps({k: v for k, v in params.items() if k not in ("CopySource", "Tags", "Body")},
                           default=str)
        hits = [value for value in cluster if value and f'"{value}"' in named]
        assert not hits, f"{op} names the cluster's {hits}"
    ops = {op for op, _ in changing}
    assert {"CreateChangeSet", "CopyObject", "PutSecretValue", "PutParameter", "SendCommand", "DeleteStack"} <= ops
    # The restored cluster was read on a drill server (Run Command), never through its API endpoint.
    sent = [params for op, params in calls if op == "SendCommand"]
    assert all(p["DocumentName"] == "AWS-RunShellScript" and p["InstanceIds"][0] in doc["nodes"]["ready"]
               for p in sent)


def test_a_snapshot_without_the_marker_fails_the_drill(cli, config, aws, calls):
    result, seen = drilled(cli, aws, "--config", config, "--yes", "--timeout", "60", "--snapshot", OLDER, "-o", "json")
    assert result.code == 1, result
    doc = json.loads(result.out)
    assert doc["outcome"] == "failed" and doc["marker"] is None and "--fresh" in doc["failure"]
    assert seen["request"].startswith(f"snapshot={OLDER} ") and len(doc["nodes"]["ready"]) == 3
    assert doc["cleanup"]["outcome"] == "destroyed" and not drill_exists(aws)


def test_a_failed_restore_still_deletes_the_drill_stack(cli, config, aws, calls):
    """No boot answers the restore request: the drill fails, says why, and its stack is gone."""
    result = cli("drill", "--config", config, "--yes", "--timeout", "3")
    assert result.code == 1, result
    assert "FAILED" in result.out and "gave up after 3s" in result.out
    assert f"{DRILL} deleted" in result.out
    assert not drill_exists(aws)
    with pytest.raises(aws.ssm.exceptions.ParameterNotFound):
        aws.ssm.get_parameter(Name=REQUEST)


def test_a_stack_of_the_drills_name_that_is_no_drill_is_refused(cli, config, aws, calls):
    template = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    aws.cloudformation.create_stack(StackName=DRILL, TemplateBody=template)
    try:
        result = cli("drill", "--config", config, "--yes")
        assert result.code == 2 and "is not a drill of" in result.err, result
        cleaned = cli("drill", "--config", config, "--cleanup", "--yes")
        assert cleaned.code == 2 and "not deleted" in cleaned.err, cleaned
        assert drill_exists(aws)
        assert not [op for op, _ in calls if not reads(op) and op != "GetCallerIdentity"]  # nothing changed
    finally:
        aws.cloudformation.delete_stack(StackName=DRILL)


def test_destroy(cli, config):
    assert cli("destroy", "--config", config, "--yes").code == 0
