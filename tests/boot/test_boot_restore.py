"""The first server restores etcd from S3: a lone replaced server heals from the newest
snapshot, and a restore request (`k3s-infra restore`) is honoured then deleted.
K3s: https://docs.k3s.io/datastore/backup-restore (--cluster-reset --cluster-reset-restore-path
with the etcd-s3 settings, same token; then start normally)."""

from __future__ import annotations

import time

import pytest
from tests.support.boot_sandbox import NODE_STACK_ID, PARAMETERS, REGION, SERVER_STARTS

FOLDER = "etcd/dev"
OBJECTS = (
    (f"{FOLDER}/etcd-snapshot-i-0aaa-1735689600", "2025-01-01T00:00:00+00:00"),
    (f"{FOLDER}/etcd-snapshot-i-0aaa-1735711200", "2025-01-01T06:00:00+00:00"),
    (f"{FOLDER}/.metadata/etcd-snapshot-i-0aaa-1735711200", "2025-01-01T06:00:01+00:00"),
    (f"{FOLDER}/etcd-snapshot-i-0aaa-1735700000", "2025-01-01T03:00:00+00:00"),
    ("etcd/prod/etcd-snapshot-i-0bbb-1799999999", "2025-02-01T00:00:00+00:00"),
)


def _reset(run) -> list[str]:
    (call,) = [c for c in run.k3s_calls if "--cluster-reset" in c]
    return call


def _assert_restored(run, snapshot: str):
    assert run.returncode == 0, run.stderr
    call = _reset(run)
    assert call[:3] == ["server", "--cluster-reset", f"--cluster-reset-restore-path={snapshot}"]
    assert {"--etcd-s3", f"--etcd-s3-bucket={PARAMETERS['SnapshotBucketName']}", f"--etcd-s3-folder={FOLDER}",
            f"--etcd-s3-region={REGION}"} <= set(call)
    # Restored before K3s first starts, as the first (init) server: never the rejoin drop-in.
    assert run.config()["cluster-init"] is True
    assert run.systemctl_calls == SERVER_STARTS
    assert run.state["parameters"][PARAMETERS["ClusterStateParameterName"]] == "initialised"
    assert [s[3] for s in run.signals] == ["SUCCESS"]


def test_a_lone_replaced_server_heals_from_the_newest_snapshot(sandbox, user_data):
    run = sandbox.run(user_data("dev", "ServerInit"), marker="initialised", api_up_after=None,
                      targets=(), objects=OBJECTS)
    _assert_restored(run, "etcd-snapshot-i-0aaa-1735711200")  # newest, metadata and other envs ignored


def test_a_marker_naming_this_cluster_heals_like_the_legacy_one(sandbox, user_data):
    """The marker's value is this cluster's first-server stack ID (earlier releases wrote
    'initialised'): a lone replaced server finding its own cluster's marker restores."""
    run = sandbox.run(user_data("dev", "ServerInit"), marker=NODE_STACK_ID, api_up_after=None,
                      targets=(), objects=OBJECTS)
    assert run.returncode == 0, run.stderr
    call = _reset(run)
    assert call[:3] == ["server", "--cluster-reset", "--cluster-reset-restore-path=etcd-snapshot-i-0aaa-1735711200"]
    assert run.state["parameters"][PARAMETERS["ClusterStateParameterName"]] == NODE_STACK_ID


def test_the_newest_snapshot_is_found_past_the_first_thousand_keys(sandbox, user_data):
    """S3 returns at most 1,000 keys a call, in key order
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html), and the AWS CLI
    with --output text runs --query once per page
    (https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-output-format.html): the newest
    snapshot sits on the first page, 1,200 older ones after it."""
    older = tuple((f"{FOLDER}/etcd-snapshot-i-0bbb-{1700000000 + n}", f"2024-{1 + n % 12:02d}-01T00:00:00+00:00")
                  for n in range(1200))
    newest = (f"{FOLDER}/etcd-snapshot-i-0aaa-1735711200", "2025-01-01T06:00:00+00:00")
    run = sandbox.run(user_data("dev", "ServerInit"), marker="initialised", api_up_after=None,
                      targets=(), objects=(newest, *older))
    _assert_restored(run, "etcd-snapshot-i-0aaa-1735711200")


@pytest.mark.parametrize("own_state", ["initial", "unhealthy"])
def test_a_lone_server_registered_in_its_own_target_group_still_heals(sandbox, user_data, own_state):
    """The group registers an instance with its target groups before it marks it InService
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html),
    so the booting server can find itself there, 'initial' or 'unhealthy' while K3s is not up
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html):
    itself is no other server."""
    run = sandbox.run(user_data("dev", "ServerInit"), marker="initialised", api_up_after=None,
                      targets=(), own_target=own_state, objects=OBJECTS)
    _assert_restored(run, "etcd-snapshot-i-0aaa-1735711200")


def test_a_restore_that_hangs_is_bounded_and_signals_failure(sandbox, user_data):
    # Nothing but the boot bounds `k3s server --cluster-reset` (it runs outside the unit).
    run = sandbox.run(user_data("dev", "ServerInit"), marker="initialised", api_up_after=None,
                      objects=OBJECTS, restore_hangs=True, start_timeout=2)
    assert run.returncode == 1
    assert _reset(run)
    assert not run.state["started"] and run.state["writes"] == []
    assert [s[3] for s in run.signals] == ["FAILURE"]


def request(snapshot: str, replaces: str = "i-0aaa", lifetime: int = 3600) -> str:
    """A restore request as `k3s-infra restore` or a lone server's watch writes it: the snapshot,
    the instances it replaces, when it expires (first_server.sh request_snapshot)."""
    return f"snapshot={snapshot} replaces={replaces} expires={int(time.time()) + lifetime}"


def test_a_restore_that_never_gets_ready_keeps_the_request(sandbox, user_data):
    # The request is the operator's only record of what to restore: deleted only once the
    # restored server is ready, so the next replacement tries again.
    requested = request("on-demand-i-0aaa-1735000000")
    run = sandbox.run(user_data("dev", "ServerInit"), marker="initialised", api_up_after=None,
                      restore_request=requested, objects=OBJECTS, node_ready=False)
    assert run.returncode == 1
    assert _reset(run)
    assert run.state["parameters"][PARAMETERS["RestoreRequestParameterName"]] == requested
    assert run.state["writes"] == []
    assert [s[3] for s in run.signals] == ["FAILURE"]


def test_other_servers_registered_means_join_never_restore(sandbox, user_data):
    run = sandbox.run(user_data("prod", "ServerInit"), marker="initialised", api_up_after=None,
                      targets=("unhealthy", "unhealthy"), objects=OBJECTS, join_attempts=3)
    assert run.returncode == 1
    assert not [c for c in run.k3s_calls if "--cluster-reset" in c]
    assert "never answered" in run.stderr


def test_no_snapshot_yet_says_so_and_signals_failure(sandbox, user_data):
    run = sandbox.run(user_data("dev", "ServerInit"), marker="initialised", api_up_after=None,
                      objects=OBJECTS[-1:])
    assert run.returncode == 1
    assert "no etcd snapshot exists" in run.stderr
    assert not run.state["started"] and run.k3s_calls == []
    assert [s[3] for s in run.signals] == ["FAILURE"]


def test_a_restore_request_is_honoured_then_deleted(sandbox, user_data):
    # No API answers, no healthy target, the instance it replaces is gone (EC2 lists it no more).
    requested = "on-demand-i-0aaa-1735000000"
    run = sandbox.run(user_data("dev", "ServerInit"), marker="initialised", api_up_after=None,
                      restore_request=request(requested), objects=OBJECTS)
    _assert_restored(run, requested)
    assert PARAMETERS["RestoreRequestParameterName"] not in run.state["parameters"]
    assert run.state["writes"][-1] == ["deleted", PARAMETERS["RestoreRequestParameterName"]]


def test_marker_absent_but_a_healthy_target_joins_never_initialises(sandbox, user_data):
    run = sandbox.run(user_data("prod", "ServerInit"), marker=None, api_up_after=3, targets=("healthy",))
    assert run.returncode == 0, run.stderr
    assert run.config()["cluster-init"] is False
    assert run.state["writes"] == []


def test_a_new_cluster_without_the_marker_and_without_a_healthy_target(sandbox, user_data):
    # No probe: without the marker no cluster of this stack exists but one the target group shows.
    run = sandbox.run(user_data("dev", "ServerInit"), marker=None, api_up_after=None)
    assert run.returncode == 0, run.stderr
    assert run.state["api_probes"] == 0
    assert run.config()["cluster-init"] is True
