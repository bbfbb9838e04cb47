"""A lone first server rolled (a new launch template, a resize to zero and back, a replacement):
its data lives only in etcd snapshots, so before it goes it takes one.

Server groups hold a terminating instance in Terminating:Wait for the snapshot hook
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks-overview.html); the
group sets the instance's target lifecycle state to Terminated, which IMDS serves
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/retrieving-target-lifecycle-state-through-imds.html).
The watch of a lone first server then saves an on-demand snapshot to S3
(`k3s etcd-snapshot save --name ... --etcd-s3 ...`, https://docs.k3s.io/cli/etcd-snapshot),
stops K3s so nothing is written after it, writes a restore request naming it, and completes
the hook (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CompleteLifecycleAction.html).
The replacement restores exactly that snapshot (--cluster-reset-restore-path=<name>,
https://docs.k3s.io/datastore/backup-restore), not the newest scheduled one."""

from __future__ import annotations

import re
import time

import pytest
from tests.support.boot_sandbox import NODE_STACK_ID, PARAMETERS, REGION, expand
from tests.support.boot_scenario import node_group

OLD = "i-0a1d0000000000001"  # the lone server being terminated
OTHER = "i-0b2e0000000000002"
FOLDER = "etcd/dev"
REQUEST = PARAMETERS["RestoreRequestParameterName"]
# Scheduled snapshots: one older than the roll, one stamped later (a clock ahead, another
# node's upload): "newest" would pick that one; the request must win over it.
SCHEDULED = ((f"{FOLDER}/etcd-snapshot-{OLD}-1735689600", "2025-01-01T00:00:00+00:00"),
             (f"{FOLDER}/.metadata/etcd-snapshot-{OLD}-1735689600", "2025-01-01T00:00:01+00:00"),
             (f"{FOLDER}/etcd-snapshot-{OLD}-4070908800", "2099-01-01T00:00:00+00:00"))
SNAPSHOT_HOOK = "snapshot-before-terminate"  # the servers' group hook the watch completes


def _terminating(sandbox, rendered, stack_id="ServerInit", targets=((OLD, "healthy"),), **knobs):
    template = rendered["dev"].templates[stack_id]
    group = node_group(template, "k3s-dev-ServerInit-1AB", [OLD])
    return sandbox.run(expand(template), mode="watch", instance_id=OLD, lifecycle_state="Terminated",
                       watch_rounds=1, targets=targets, groups=(group,), objects=SCHEDULED,
                       marker=NODE_STACK_ID, **knobs)


def test_a_lone_first_server_snapshots_stops_and_names_the_snapshot_before_it_goes(sandbox, rendered):
    before = int(time.time())
    run = _terminating(sandbox, rendered)
    after = int(time.time())
    assert run.returncode == 0, run.stderr
    (save,) = [c for c in run.k3s_calls if c[:2] == ["etcd-snapshot", "save"]]
    assert save[2:4] == ["--name", f"pre-termination-{OLD}"]
    assert {"--etcd-s3", f"--etcd-s3-bucket={PARAMETERS['SnapshotBucketName']}", f"--etcd-s3-folder={FOLDER}",
            f"--etcd-s3-region={REGION}"} <= set(save)
    (snapshot,) = run.state["snapshots_saved"]  # <name>-<node name>-<unix time>, as K3s names it
    assert f"{FOLDER}/{snapshot}" in [key for key, _ in run.state["objects"]]
    # K3s stopped after the snapshot and before the request: nothing written after the snapshot.
    saved, stopped = run.position("k3s", "etcd-snapshot"), run.position("systemctl", "stop", "k3s")
    requested = run.position("aws", "put-parameter", REQUEST)
    assert 0 <= saved < stopped < requested
    value = run.state["parameters"][REQUEST]
    match = re.fullmatch(rf"snapshot={re.escape(snapshot)} replaces={OLD} expires=(\d+)", value)
    assert match and before + 3600 <= int(match.group(1)) <= after + 3600, value
    # Then the termination goes on: the hook completed for this instance, in its group.
    assert run.state["lifecycle_actions"] == [[SNAPSHOT_HOOK, "k3s-dev-ServerInit-1AB", OLD, "CONTINUE"]]
    assert requested < run.position("aws", "complete-lifecycle-action")
    assert run.health_reports == []


def test_the_replacement_restores_exactly_the_snapshot_taken_before_the_roll(sandbox, rendered):
    gone = _terminating(sandbox, rendered)
    (snapshot,) = gone.state["snapshots_saved"]
    # The replacement: the old instance terminated, no API answers, no target healthy yet.
    run = sandbox.run(expand(rendered["dev"].templates["ServerInit"]), shared=gone.state,
                      instances={OLD: "terminated"}, api_up_after=None, targets=())
    assert run.returncode == 0, run.stderr
    (reset,) = [c for c in run.k3s_calls if "--cluster-reset" in c]
    assert reset[:3] == ["server", "--cluster-reset", f"--cluster-reset-restore-path={snapshot}"]
    # The instances it replaces were looked up, only those still (or again) running counted.
    (lookup,) = [c for c in run.aws_calls if "describe-instances" in c]
    assert f"Name=instance-id,Values={OLD}" in lookup
    assert REQUEST not in run.state["parameters"]  # honoured, then deleted
    assert run.statuses == ["SUCCESS"]


def test_a_failed_snapshot_leaves_no_request_and_the_termination_still_goes_on(sandbox, rendered):
    run = _terminating(sandbox, rendered, snapshot_fails=True)
    assert run.returncode == 0, run.stderr
    assert [c for c in run.k3s_calls if c[:2] == ["etcd-snapshot", "save"]]
    assert REQUEST not in run.state["parameters"]
    assert ["stop", "k3s"] not in run.systemctl_calls  # still serving: nothing to restore from
    assert "no on-demand snapshot" in run.stderr
    assert run.state["lifecycle_actions"] == [[SNAPSHOT_HOOK, "k3s-dev-ServerInit-1AB", OLD, "CONTINUE"]]


@pytest.mark.parametrize("stack_id,targets", [("ServerInit", ((OLD, "healthy"), (OTHER, "healthy"))),
                                              ("Servers", ((OLD, "healthy"),))],
                         ids=["first server with another server", "not the first server"])
def test_a_server_that_is_not_the_lone_first_server_leaves_no_request(sandbox, rendered, stack_id, targets):
    """With other servers the cluster keeps its data (etcd's other members); only the first
    server may ever restore, so only it leaves a request."""
    run = _terminating(sandbox, rendered, stack_id=stack_id, targets=targets)
    assert run.returncode == 0, run.stderr
    assert not [c for c in run.k3s_calls if c[:1] == ["etcd-snapshot"]]
    assert REQUEST not in run.state["parameters"] and ["stop", "k3s"] not in run.systemctl_calls
    assert [a[0] for a in run.state["lifecycle_actions"]] == [SNAPSHOT_HOOK]


def test_an_instance_in_service_is_left_alone(sandbox, rendered):
    template = rendered["dev"].templates["ServerInit"]
    run = sandbox.run(expand(template), mode="watch", instance_id=OLD, lifecycle_state="InService",
                      targets=((OLD, "healthy"),), groups=(node_group(template, "k3s-dev-ServerInit-1AB", [OLD]),))
    assert run.returncode == 0, run.stderr
    assert run.k3s_calls == [] and run.state["lifecycle_actions"] == [] and run.health_reports == []
