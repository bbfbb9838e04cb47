"""A lone first server rolled (a new launch template, a resize to zero and back, a replacement):
its data lives only in etcd snapshots, so before it goes it takes one.

Server groups hold a terminating instance in Terminating:Wait for the snapshot hook
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks-overview.html); the
group sets the instance's target lifecycle state to Terminated, which IMDS serves
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/retrieving-target-lifecycle-state-through-imds.html).
The watch of a lone first server (the server groups want one server in all:
DescribeAutoScalingGroups, not the target group, where the replacement registers meanwhile)
then saves an on-demand snapshot to S3 (`k3s etcd-snapshot save --name ... --etcd-s3 ...`,
https://docs.k3s.io/cli/etcd-snapshot), stops K3s so nothing is written after it (whatever came
of the snapshot), writes a restore request naming it unless one is pending, and completes the
hook (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CompleteLifecycleAction.html).
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


def _terminating(sandbox, rendered, stack_id="ServerInit", targets=((OLD, "healthy"),), others=(), **knobs):
    """The watch of OLD once its group terminates it; `others`: instances of the servers' group
    beside it (the server groups then want more than one server)."""
    templates = rendered["dev"].templates
    groups = (node_group(templates[stack_id], "k3s-dev-ServerInit-1AB", [OLD]),)
    if others:
        groups += (node_group(templates["Servers"], "k3s-dev-Servers-2CD", list(others)),)
    return sandbox.run(expand(templates[stack_id]), mode="watch", instance_id=OLD, lifecycle_state="Terminated",
                       **{"watch_rounds": 1, "targets": targets, "groups": groups, "objects": SCHEDULED,
                          "marker": NODE_STACK_ID, **knobs})


def _hook_completed(run):
    """The termination goes on: the hook completed for this instance, in its group, once."""
    assert run.state["lifecycle_actions"] == [[SNAPSHOT_HOOK, "k3s-dev-ServerInit-1AB", OLD, "CONTINUE"]]


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
    _hook_completed(run)
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
    assert "no on-demand snapshot" in run.stderr
    # K3s stops all the same: the replacement restores the newest scheduled snapshot, and
    # nothing may be written (or served to agents) after it any more than after our own.
    assert ["stop", "k3s"] in run.systemctl_calls and not run.state["started"]
    assert run.position("systemctl", "stop", "k3s") < run.position("aws", "complete-lifecycle-action")
    _hook_completed(run)


def test_a_lone_server_counts_the_groups_not_the_target_group(sandbox, rendered):
    """The replacement registers with the target group while this one terminates (the group
    launches it meanwhile): one other target there, yet the server groups want one server in
    all. This is still the cluster's only copy of its data: it is snapshotted and named."""
    run = _terminating(sandbox, rendered, targets=((OLD, "healthy"), (OTHER, "initial")))
    assert run.returncode == 0, run.stderr
    (snapshot,) = run.state["snapshots_saved"]
    assert run.state["parameters"][REQUEST].startswith(f"snapshot={snapshot} replaces={OLD} ")
    _hook_completed(run)


@pytest.mark.parametrize("stack_id,others", [("ServerInit", (OTHER,)), ("Servers", ())],
                         ids=["first server with another server", "not the first server"])
def test_a_server_that_is_not_the_lone_first_server_leaves_no_request(sandbox, rendered, stack_id, others):
    """With other servers the cluster keeps its data (etcd's other members); only the first
    server may ever restore, so only it leaves a request."""
    run = _terminating(sandbox, rendered, stack_id=stack_id, targets=((OLD, "healthy"), (OTHER, "healthy")),
                       others=others)
    assert run.returncode == 0, run.stderr
    assert not [c for c in run.k3s_calls if c[:1] == ["etcd-snapshot"]]
    assert REQUEST not in run.state["parameters"] and ["stop", "k3s"] not in run.systemctl_calls
    assert [a[0] for a in run.state["lifecycle_actions"]] == [SNAPSHOT_HOOK]


def test_a_pending_restore_request_is_never_overwritten(sandbox, rendered):
    """`k3s-infra restore` terminates this server for its request to be acted on: a snapshot of
    ours named in its place would restore the data the restore is there to replace."""
    pending = f"snapshot=etcd-snapshot-{OLD}-1735689600 replaces={OLD} expires={int(time.time()) + 3600}"
    run = _terminating(sandbox, rendered, restore_request=pending)
    assert run.returncode == 0, run.stderr
    assert "a restore request is pending" in run.stderr
    assert not [c for c in run.k3s_calls if c[:1] == ["etcd-snapshot"]]
    assert run.state["parameters"][REQUEST] == pending
    assert ["stop", "k3s"] in run.systemctl_calls  # stopped all the same
    _hook_completed(run)


def test_the_watch_handles_its_termination_once_then_waits_for_the_end(sandbox, rendered):
    """The watch is a service restarted when it ends (systemd.service(5), Restart=always): it
    sleeps out its rounds instead, or it would start again and snapshot a stopped K3s."""
    run = _terminating(sandbox, rendered, watch_rounds=3)
    assert run.returncode == 0, run.stderr
    assert len(run.state["snapshots_saved"]) == 1
    _hook_completed(run)
    assert len(run.sleep_calls) == 3  # one per round: it kept running
    lifecycle = [r for r in run.imds_requests if r[1].endswith("/autoscaling/target-lifecycle-state")]
    assert len(lifecycle) == 1


def test_an_instance_in_service_is_left_alone(sandbox, rendered):
    template = rendered["dev"].templates["ServerInit"]
    run = sandbox.run(expand(template), mode="watch", instance_id=OLD, lifecycle_state="InService",
                      targets=((OLD, "healthy"),), groups=(node_group(template, "k3s-dev-ServerInit-1AB", [OLD]),))
    assert run.returncode == 0, run.stderr
    assert run.state["lifecycle_actions"] == [] and run.health_reports == []
    # Its only K3s calls are reads: the service account issuer (first_server.sh issuer_current)
    # and the pod identity webhook's readiness (pod_roles_current).
    assert run.k3s_calls and all(c[0] == "kubectl" and "get" in c and "delete" not in c for c in run.k3s_calls)
