"""Data safety and safe updates: retention in protected environments, versioned
snapshots, and rolling updates that keep etcd quorum and roll servers before agents."""

from __future__ import annotations

import pytest

from k3s_infra.config import available_environments


@pytest.fixture(params=available_environments())
def r(request, rendered):
    return rendered[request.param]


def group(r, stack_id: str) -> dict:
    (asg,) = r.resources(stack_id, "AWS::AutoScaling::AutoScalingGroup").values()
    return asg


def test_cluster_data_is_retained_exactly_in_protected_environments(r):
    # RetainExceptOnCreate (DeletionPolicy only): a failed first create still rolls back clean
    on_delete, on_replace = ("RetainExceptOnCreate", "Retain") if r.env.protected else ("Delete", "Delete")
    resources = r.templates["ClusterData"]["Resources"]
    kept = {k: v for k, v in resources.items()
            if v["Type"] in ("AWS::SecretsManager::Secret", "AWS::S3::Bucket", "AWS::KMS::Key")}
    assert {"TokenSecret", "AgentTokenSecret", "KubeconfigSecret", "SnapshotBucket"} <= set(kept)
    for logical, resource in kept.items():
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == (on_delete, on_replace), logical


def test_snapshot_bucket_is_versioned(r):
    bucket = r.resources("ClusterData", "AWS::S3::Bucket")["SnapshotBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}


@pytest.mark.parametrize("stack_id", ["ServerInit", "Servers"])
def test_servers_roll_one_at_a_time(r, stack_id):
    policy = group(r, stack_id)["UpdatePolicy"]["AutoScalingRollingUpdate"]
    assert policy["MaxBatchSize"] == 1
    # Terminate-first: never two new etcd members at once, never a surge member.
    assert policy["MinInstancesInService"] == 0
    assert policy["PauseTime"].startswith("PT")
    assert "HealthCheck" in policy["SuspendProcesses"]


def test_agent_pools_roll_in_batches_keeping_most_capacity(r):
    for pool in r.env.agent_pools:
        stack_id = next(s for s in r.templates if s.startswith("AgentPool") and
                        r.templates[s]["Description"].split("agent pool ")[1].startswith(pool.name + " "))
        policy = group(r, stack_id)["UpdatePolicy"]["AutoScalingRollingUpdate"]
        assert 1 <= policy["MaxBatchSize"] <= max(1, pool.desired // 2)
        assert policy["MinInstancesInService"] < pool.max_size
        assert policy["MinInstancesInService"] + policy["MaxBatchSize"] >= min(pool.desired, pool.max_size - 1)


def test_root_rolls_server_groups_in_turn_and_agents_after_servers(r):
    stacks = r.resources("Root", "AWS::CloudFormation::Stack")
    assert stacks["Servers"]["DependsOn"] == ["ServerInit"]
    assert "DependsOn" not in stacks["ServerInit"]
    for stack_id, stack in stacks.items():
        if stack_id.startswith("AgentPool"):
            assert stack["DependsOn"] == ["Servers"]


def test_agent_batch_sizes_from_pool_size():
    from k3s_infra.components.auto_scaling_group import agent_rolling_update

    assert (agent_rolling_update(8, 12).max_batch, agent_rolling_update(8, 12).min_in_service) == (2, 6)
    assert (agent_rolling_update(1, 3).max_batch, agent_rolling_update(1, 3).min_in_service) == (1, 0)
    assert agent_rolling_update(3, 3).min_in_service == 2  # stays below MaxSize
