"""A restore request is honoured only when it cannot destroy a cluster that still serves.

A request (`snapshot=<name> replaces=<id,...> expires=<epoch>`, written by `k3s-infra restore` or
by a lone server's watch before its termination) resets etcd to that snapshot: K3s's
--cluster-reset discards the data the server has (https://docs.k3s.io/datastore/backup-restore).
So the first server acts on one only if it has not expired, none of the instances it replaces
still exists in a state that may come back (EC2 DescribeInstances with the filters instance-id
and instance-state-name pending, running, stopping, stopped:
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html), no API
answers and no other target of the API target group is healthy. Anything else is logged and
the normal decision goes on (here: a lone replaced server heals from the newest snapshot)."""

from __future__ import annotations

import time

import pytest
from tests.support.boot_sandbox import PARAMETERS, expand

REPLACED = "i-0dead000000000001"
FOLDER = "etcd/dev"
REQUESTED = f"pre-termination-{REPLACED}-{REPLACED}-1735700000"
NEWEST = f"etcd-snapshot-{REPLACED}-1735711200"
OBJECTS = ((f"{FOLDER}/{REQUESTED}", "2025-01-01T03:00:00+00:00"),
           (f"{FOLDER}/{NEWEST}", "2025-01-01T06:00:00+00:00"))
REQUEST = PARAMETERS["RestoreRequestParameterName"]


def request(snapshot: str = REQUESTED, replaces: str = REPLACED, lifetime: int = 3600) -> str:
    return f"snapshot={snapshot} replaces={replaces} expires={int(time.time()) + lifetime}"


def _boot(sandbox, rendered, value: str, **knobs):
    scenario = {"marker": "initialised", "api_up_after": None, "targets": (), "objects": OBJECTS,
                "restore_request": value, **knobs}
    return sandbox.run(expand(rendered["dev"].templates["ServerInit"]), **scenario)


def _restored(run) -> str | None:
    resets = [c for c in run.k3s_calls if "--cluster-reset" in c]
    return resets[0][2].removeprefix("--cluster-reset-restore-path=") if resets else None


def test_a_request_whose_instances_are_gone_is_honoured(sandbox, rendered):
    run = _boot(sandbox, rendered, request(), instances={REPLACED: "terminated"})
    assert run.returncode == 0, run.stderr
    assert _restored(run) == REQUESTED
    (lookup,) = [c for c in run.aws_calls if "describe-instances" in c]
    assert lookup[lookup.index("--filters") + 1:lookup.index("--query")] == [
        f"Name=instance-id,Values={REPLACED}", "Name=instance-state-name,Values=pending,running,stopping,stopped"]


def test_an_expired_request_is_ignored(sandbox, rendered):
    run = _boot(sandbox, rendered, request(lifetime=-1))
    assert run.returncode == 0, run.stderr
    assert _restored(run) == NEWEST  # the normal decision: a lone server heals from the newest
    assert f"ignoring the restore request for {REQUESTED}: it expired" in run.stderr
    assert run.state["parameters"][REQUEST]  # never acted on, never deleted


@pytest.mark.parametrize("state", ["running", "stopped"])
def test_a_request_replacing_an_instance_that_still_exists_is_ignored(sandbox, rendered, state):
    """A stopped instance can start again with its own copy of etcd."""
    run = _boot(sandbox, rendered, request(replaces=f"i-0aaa000000000000a,{REPLACED}"), instances={REPLACED: state})
    assert run.returncode == 0, run.stderr
    assert _restored(run) == NEWEST
    assert f"an instance it replaces (i-0aaa000000000000a,{REPLACED}) still runs" in run.stderr


def test_a_request_while_an_api_answers_is_ignored(sandbox, rendered):
    run = _boot(sandbox, rendered, request(), api_up_after=0)
    assert run.returncode == 0, run.stderr
    assert _restored(run) is None and run.config()["cluster-init"] is False  # it joined
    assert "ignoring the restore request: a cluster is up" in run.stderr
    assert run.state["parameters"][REQUEST]


def test_a_request_while_another_target_is_healthy_is_ignored(sandbox, rendered):
    # The API does not answer this node, but the load balancer sees a healthy server.
    run = _boot(sandbox, rendered, request(), targets=("healthy",), join_attempts=2)
    assert _restored(run) is None
    assert "ignoring the restore request: a cluster is up" in run.stderr


def test_a_legacy_bare_snapshot_name_is_ignored_and_said_so(sandbox, rendered):
    run = _boot(sandbox, rendered, REQUESTED)
    assert run.returncode == 0, run.stderr
    assert _restored(run) == NEWEST
    assert f"ignoring the restore request '{REQUESTED}': not snapshot=... replaces=... expires=..." in run.stderr


def test_instances_that_cannot_be_looked_up_stop_the_boot(sandbox, rendered):
    # Never restore on doubt: without EC2's answer the replaced server may still run.
    run = _boot(sandbox, rendered, request(), unreachable=("ec2",))
    assert run.returncode == 1 and _restored(run) is None
    assert "cannot check the restore request's instances" in run.stderr
    assert run.statuses == ["FAILURE"]


def test_a_request_already_deleted_by_the_time_of_publishing_is_no_failure(sandbox, rendered):
    # `k3s-infra restore` cleans up behind a restore it saw succeed: DeleteParameter then answers
    # ParameterNotFound (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameter.html).
    run = _boot(sandbox, rendered, request(), vanishing_parameters=(REQUEST,))
    assert run.returncode == 0, run.stderr
    assert _restored(run) == REQUESTED
    assert [c for c in run.aws_calls if "delete-parameter" in c]
    assert run.statuses == ["SUCCESS"]
