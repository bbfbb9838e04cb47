"""A restore request is honoured only when it cannot destroy a cluster that still serves, and
never passed over for a guess while it waits.

A request (`snapshot=<name> replaces=<id,...> expires=<epoch>`, written by `k3s-infra restore` or
by a lone server's watch before its termination) resets etcd to that snapshot: K3s's
--cluster-reset discards the data the server has (https://docs.k3s.io/datastore/backup-restore).
The first server looks at one only once no API answers and no target of the API target group is
healthy, and acts on it only if it has not expired and none of the instances it replaces still
exists in a state that may come back (EC2 DescribeInstances with the filters instance-id and
instance-state-name pending, running, stopping, stopped:
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html). Those may
still run when it boots: the group launches the replacement while lifecycle hooks hold the old
instance in Terminating:Wait
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks-overview.html), so it
waits for them (bounded), and if they never go it gives up rather than restore anything else.
Once they are gone it looks at the target group again: no other server may be registered.
Anything else is logged and the normal decision goes on (here: a lone replaced server heals from
the newest snapshot, or a server joins the others)."""

from __future__ import annotations

import time

from tests.support.boot_sandbox import PARAMETERS, expand

REPLACED = "i-0dead000000000001"
OTHER = "i-0b0b000000000000b"  # another server of the cluster
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


def _lookups(run, instance: str = REPLACED) -> list[int]:
    """Where in the run the replaced instances were looked up (DescribeInstances by ID)."""
    return [n for n, call in enumerate(run.sequence)
            if "describe-instances" in call and any(a.startswith(f"Name=instance-id,Values={instance}") for a in call)]


def test_a_request_waits_for_the_instance_it_replaces_then_restores_exactly_its_snapshot(sandbox, rendered):
    # The old server runs on (Terminating:Wait) for two more looks, then it is gone.
    run = _boot(sandbox, rendered, request(), gone_after={REPLACED: 2})
    assert run.returncode == 0, run.stderr
    assert _restored(run) == REQUESTED  # the request's, never the newest
    lookups = _lookups(run)
    assert len(lookups) == 3 and run.stderr.count(f"waiting for {REPLACED} to terminate") == 2
    # Then the target group is read again (who registered meanwhile), before the restore.
    reads = [n for n, call in enumerate(run.sequence) if "describe-target-health" in call]
    assert reads[0] < lookups[0] and lookups[-1] < reads[1] < run.position("k3s", "--cluster-reset")
    assert REQUEST not in run.state["parameters"] and run.statuses == ["SUCCESS"]


def test_a_request_whose_instance_never_goes_fails_the_boot_and_restores_nothing(sandbox, rendered):
    """A stopped instance can start again with its own copy of etcd: it counts as running
    (the filter above); here it simply runs on."""
    run = _boot(sandbox, rendered, request(), instances={REPLACED: "running"}, join_attempts=3)
    assert run.returncode == 1
    assert len(_lookups(run)) == 3  # bounded
    assert "not deciding while a restore request waits for the instances it replaces" in run.stderr
    # No fallback: neither the request's snapshot nor the newest, nor a new cluster.
    assert _restored(run) is None and not [c for c in run.aws_calls if "list-objects-v2" in c]
    assert not run.state["started"] and run.state["parameters"][REQUEST]
    assert run.statuses == ["FAILURE"]


def test_a_request_while_an_api_answers_is_ignored(sandbox, rendered):
    # The replaced instance still runs: a boot that looked at the request would wait for it.
    # An API answers only through a registered server (first_server.sh probe_worthwhile).
    run = _boot(sandbox, rendered, request(), api_up_after=0, targets=("unhealthy",),
                targets_after=(1, ("healthy",)), instances={REPLACED: "running"})
    assert run.returncode == 0, run.stderr
    assert _restored(run) is None and run.config()["cluster-init"] is False  # it joined
    assert _lookups(run) == []  # without even looking at the request's instances
    assert "the restore request is not for this boot: ignored" in run.stderr
    assert run.state["parameters"][REQUEST]


def test_a_request_while_another_target_is_healthy_is_ignored(sandbox, rendered):
    # The API does not answer this node, but the load balancer sees a healthy server.
    run = _boot(sandbox, rendered, request(), targets=("healthy",), join_attempts=2, instances={REPLACED: "running"})
    assert _restored(run) is None and _lookups(run) == []
    assert "the restore request is not for this boot: ignored" in run.stderr
    assert run.state["parameters"][REQUEST]


def test_a_request_with_another_server_registered_is_not_restored(sandbox, rendered):
    """Another server is registered (not healthy yet): the cluster is not this one alone; with
    the marker there the first server joins it (the API answers on the fourth probe)."""
    other = (OTHER, "unhealthy")
    run = _boot(sandbox, rendered, request(), instances={REPLACED: "terminated"}, api_up_after=3, targets=(other,),
                targets_after=(2, ((OTHER, "healthy"),)))
    assert run.returncode == 0, run.stderr
    assert _restored(run) is None and run.config()["cluster-init"] is False
    assert "the restore request is not for this boot: ignored" in run.stderr
    assert run.state["parameters"][REQUEST]


def test_a_request_with_another_server_registered_is_not_even_waited_for(sandbox, rendered):
    """The replaced instance still runs and another server is registered: the request cannot
    apply whatever the wait brings (no other server may be registered), so the boot neither
    waits for the instance nor fails on it; it joins."""
    run = _boot(sandbox, rendered, request(), instances={REPLACED: "running"}, api_up_after=3,
                targets=((OTHER, "unhealthy"),), targets_after=(2, ((OTHER, "healthy"),)))
    assert run.returncode == 0, run.stderr
    assert _lookups(run) == []
    assert _restored(run) is None and run.config()["cluster-init"] is False
    assert "the restore request is not for this boot: ignored" in run.stderr


def test_a_server_registered_while_the_request_waited_is_not_restored(sandbox, rendered):
    run = _boot(sandbox, rendered, request(), gone_after={REPLACED: 1}, targets=(),
                targets_after=(1, ((OTHER, "initial"),)), join_attempts=3)
    assert len(_lookups(run)) == 2
    assert _restored(run) is None
    assert "the restore request is not for this boot: ignored" in run.stderr
    assert run.state["parameters"][REQUEST]


def test_a_cluster_that_came_up_while_the_request_waited_is_joined_never_initialised_beside(sandbox, rendered):
    """No marker (lost, or never written), and another server got healthy during the wait:
    a cluster serves, so neither the request nor a new cluster (never two clusters)."""
    run = _boot(sandbox, rendered, request(), marker=None, gone_after={REPLACED: 1}, targets=(),
                targets_after=(1, ((OTHER, "healthy"),)), join_attempts=3)
    assert len(_lookups(run)) == 2
    assert "1 healthy API target(s): a cluster is up" in run.stderr
    assert _restored(run) is None and run.path("/etc/rancher/k3s/config.yaml.d/10-rejoin.yaml").exists()
    assert PARAMETERS["ClusterStateParameterName"] not in run.state["parameters"]


def test_a_legacy_bare_snapshot_name_is_ignored_and_said_so(sandbox, rendered):
    run = _boot(sandbox, rendered, REQUESTED)
    assert run.returncode == 0, run.stderr
    assert _restored(run) == NEWEST
    assert f"ignoring the restore request '{REQUESTED}': not snapshot=... replaces=... expires=..." in run.stderr


def test_instances_that_cannot_be_looked_up_stop_the_boot(sandbox, rendered):
    # Never restore on doubt: without EC2's answer the replaced server may still run.
    run = _boot(sandbox, rendered, request(), unreachable=("ec2",), join_attempts=3)
    assert run.returncode == 1 and _restored(run) is None
    assert "Could not connect to the endpoint URL" in run.stderr
    assert "not deciding while a restore request waits for the instances it replaces" in run.stderr
    assert run.statuses == ["FAILURE"]


def test_a_request_already_deleted_by_the_time_of_publishing_is_no_failure(sandbox, rendered):
    # `k3s-infra restore` cleans up behind a restore it saw succeed: DeleteParameter then answers
    # ParameterNotFound (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameter.html).
    run = _boot(sandbox, rendered, request(), vanishing_parameters=(REQUEST,))
    assert run.returncode == 0, run.stderr
    assert _restored(run) == REQUESTED
    assert [c for c in run.aws_calls if "delete-parameter" in c]
    assert run.statuses == ["SUCCESS"]
