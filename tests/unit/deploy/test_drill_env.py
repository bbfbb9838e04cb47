"""The drill's environment (deploy/drill_env.py drill_environment) and the fences around its clients.

Expected values come from the environment files (environments/*.yaml) and from the names k3s-infra
derives (model/naming.py) for the cluster; the fences are exercised with botocore's Stubber: a refused
call raises before anything is sent (no stubbed response is consumed)."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy import Refused
from k3s_infra.deploy.drill_env import Fenced, drill_environment, drill_of, fenced, read_only
from k3s_infra.deploy.aws import Aws
from k3s_infra.model import naming

ENVS = ("dev", "prod", "staging")
REAL_TOKEN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k3s-infra/k3s-dev/token-AbCdEf"
DRILL_TOKEN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k3s-infra/k3s-dev-drill/token-GhIjKl"
REAL_BUCKET = "k3s-dev-clusterdata-1a2b3c-snapshotbucket-4d5e6f"
DRILL_BUCKET = "k3s-dev-drill-clusterdata-7a8b9c-snapshotbucket-0d1e2f"


@pytest.mark.parametrize("name", ENVS)
def test_the_drill_is_the_same_cluster_under_its_own_name(name):
    env = load_environment(name)
    drill = drill_environment(env)
    assert drill.stack_name == f"{env.stack_name}-drill" != env.stack_name
    assert drill.deploy.tags[naming.DRILL_TAG] == env.stack_name and drill_of(
        {"Tags": [{"Key": naming.DRILL_TAG, "Value": env.stack_name}]}) == env.stack_name
    assert (drill.servers, drill.k3s.version, drill.region, drill.account_id, drill.name) == (
        env.servers, env.k3s.version, env.region, env.account_id, env.name)
    assert not drill.protected and drill.api.scheme == "internal"
    assert drill.api.allowed_cidrs == env.api.allowed_cidrs and drill.k3s.server_taint
    assert [(p.name, p.min_size, p.desired) for p in drill.agent_pools] == [(p.name, 0, 0) for p in env.agent_pools]
    assert not drill.autoscaling and drill.workload_roles == []
    # Every name k3s-infra derives for the drill differs from the cluster's.
    for derive in (naming.cluster_state_parameter, naming.restore_request_parameter, naming.lock_key,
                   naming.ccm_cluster_tag_key, naming.drain_hook_name, lambda e: naming.secret_name(e, "token"),
                   lambda e: naming.fact_parameter(e, "api_dns_name"), naming.addons_prefix):
        assert derive(drill) != derive(env)
    assert not naming.lock_key(env).startswith(naming.cluster_name(drill) + "/")
    # The same snapshot folder, in the drill's own bucket: the copied key is the cluster's.
    assert naming.snapshot_folder(drill) == naming.snapshot_folder(env)


def test_a_stack_name_too_long_for_its_drill_is_refused():
    env = load_environment("dev", overrides={"deploy": {"stack_name": "k" * 80}})
    with pytest.raises(Refused, match="longer than the 80 characters"):
        drill_environment(env)


def _aws(env, make, service: str, region="eu-west-1"):
    """``make(env, session)`` with its ``service`` client stubbed; returns (aws, stubber)."""
    session = boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name=region)
    aws = make(env, session)
    stubber = Stubber(getattr(aws, service))  # the guarded client, as the drill's code gets it
    stubber.activate()
    return aws, stubber


ENV = load_environment("dev")
CLUSTER = frozenset({ENV.stack_name, REAL_TOKEN, REAL_BUCKET})


@pytest.mark.parametrize("call", [
    ("s3", "put_object", {"Bucket": REAL_BUCKET, "Key": "etcd/dev/x", "Body": b"x"}),
    ("s3", "delete_object", {"Bucket": REAL_BUCKET, "Key": "etcd/dev/x"}),
    ("secretsmanager", "put_secret_value", {"SecretId": REAL_TOKEN, "SecretString": "x"}),
    ("cloudformation", "delete_stack", {"StackName": ENV.stack_name}),
    ("cloudformation", "update_termination_protection", {"StackName": ENV.stack_name,
                                                         "EnableTerminationProtection": False}),
])
def test_the_clusters_side_only_reads(call):
    service, method, params = call
    aws, stubber = _aws(ENV, lambda env, session: read_only(Aws(env, session)), service)
    with pytest.raises(Fenced, match="only reads"):
        getattr(getattr(aws, service), method)(**params)
    stubber.assert_no_pending_responses()


def test_reads_on_the_clusters_side_go_through():
    aws, stubber = _aws(ENV, lambda env, session: read_only(Aws(env, session)), "secretsmanager")
    client = aws.secretsmanager
    # GetSecretValue's answer as the Secrets Manager API reference shows it
    stubber.add_response("get_secret_value", {
        "ARN": REAL_TOKEN, "Name": "k3s-infra/k3s-dev/token", "VersionId": "EXAMPLE1-90ab-cdef-fedc-ba987SECRET1",
        "SecretString": "K10abc::server:pw", "VersionStages": ["AWSCURRENT"],
        "CreatedDate": datetime(2026, 12, 4, tzinfo=timezone.utc)}, {"SecretId": REAL_TOKEN})
    assert client.get_secret_value(SecretId=REAL_TOKEN)["SecretString"] == "K10abc::server:pw"


def _drill(service):
    return _aws(drill_environment(ENV), lambda env, session: fenced(env, session, CLUSTER), service)


@pytest.mark.parametrize("call", [
    ("secretsmanager", "put_secret_value", {"SecretId": REAL_TOKEN, "SecretString": "x"}),
    ("s3", "copy_object", {"Bucket": REAL_BUCKET, "Key": "etcd/dev/x", "CopySource": {"Bucket": DRILL_BUCKET,
                                                                                     "Key": "etcd/dev/x"}}),
    ("s3", "delete_objects", {"Bucket": REAL_BUCKET, "Delete": {"Objects": [{"Key": "etcd/dev/x"}]}}),
    ("cloudformation", "delete_stack", {"StackName": ENV.stack_name}),
    ("s3", "put_object", {"Bucket": ENV.artifact_bucket, "Key": f"{ENV.stack_name}/lock.json", "Body": b"{}"}),
    ("s3", "delete_objects", {"Bucket": ENV.artifact_bucket, "Delete": {"Objects": [
        {"Key": f"{ENV.stack_name}-drill/templates/a.yaml"}, {"Key": f"{ENV.stack_name}/templates/a.yaml"}]}}),
])
def test_the_drills_side_never_changes_the_clusters_resources(call):
    service, method, params = call
    aws, stubber = _drill(service)
    with pytest.raises(Fenced, match="drill refused"):
        getattr(getattr(aws, service), method)(**params)
    stubber.assert_no_pending_responses()


def test_the_drills_side_copies_from_the_cluster_and_writes_its_own():
    aws, stubber = _drill("s3")
    s3 = aws.s3
    # CopyObject's answer as the S3 API reference shows it (CopyObjectResult: ETag, LastModified)
    stubber.add_response("copy_object", {"CopyObjectResult": {
        "ETag": '"6805f2cfc46c0f04559748bb039d69ae"', "LastModified": datetime(2026, 12, 4, tzinfo=timezone.utc)}},
        {"Bucket": DRILL_BUCKET, "Key": "etcd/dev/x", "CopySource": {"Bucket": REAL_BUCKET, "Key": "etcd/dev/x"}})
    stubber.add_response("put_object", {"ETag": '"d41d8cd98f00b204e9800998ecf8427e"'},
                         {"Bucket": ENV.artifact_bucket, "Key": f"{ENV.stack_name}-drill/lock.json", "Body": b"{}"})
    s3.copy_object(Bucket=DRILL_BUCKET, Key="etcd/dev/x", CopySource={"Bucket": REAL_BUCKET, "Key": "etcd/dev/x"})
    s3.put_object(Bucket=ENV.artifact_bucket, Key=f"{ENV.stack_name}-drill/lock.json", Body=b"{}")
    stubber.assert_no_pending_responses()


def test_the_clusters_running_instances_are_fenced_off_too(monkeypatch):
    """A Run Command or session the drill sends may name none of the cluster's instances (second
    review: only the selection of the drill's servers kept SendCommand off them)."""
    import boto3
    from botocore.stub import Stubber

    from k3s_infra.deploy import drill_env as de
    from k3s_infra.deploy.drill_env import Fenced

    real_instance = "i-0aaaaaaaaaaaaaaa1"
    nested = {"StackId": "arn:nested/servers", "StackName": "k3s-dev-Servers-1",
              "Outputs": [{"OutputKey": "AutoScalingGroupName", "OutputValue": "k3s-dev-servers"}]}
    monkeypatch.setattr(de, "nested_stacks", lambda cfn, root_id: [("Servers", nested)])
    autoscaling = boto3.client("autoscaling", region_name="eu-west-1", aws_access_key_id="x",
                               aws_secret_access_key="x")
    aws = SimpleNamespace(env=ENV, cloudformation=None, autoscaling=autoscaling)
    with Stubber(autoscaling) as stub:
        stub.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [{
            "AutoScalingGroupName": "k3s-dev-servers", "MinSize": 1, "MaxSize": 3, "DesiredCapacity": 1,
            "DefaultCooldown": 300, "AvailabilityZones": ["eu-west-1a"], "HealthCheckType": "EC2",
            "CreatedTime": "2026-12-04T00:00:00Z", "Instances": [{
                "InstanceId": real_instance, "AvailabilityZone": "eu-west-1a", "LifecycleState": "InService",
                "HealthStatus": "Healthy", "ProtectedFromScaleIn": False}]}]},
            {"AutoScalingGroupNames": ["k3s-dev-servers"]})
        cluster = de.cluster_resources(aws, {"StackId": "arn:root", "Outputs": []})
    assert real_instance in cluster
    drill = de.fenced(de.drill_environment(ENV), boto3.Session(aws_access_key_id="x", aws_secret_access_key="x",
                                                               region_name="eu-west-1"), cluster)
    with pytest.raises(Fenced, match=real_instance):
        drill.ssm.send_command(InstanceIds=[real_instance], DocumentName="AWS-RunShellScript",
                               Parameters={"commands": ["true"]})
