"""A joining server counts etcd's members before it says SUCCESS, and leaves etcd if it gives up.

K3s lists etcd's members at /db/info for the role k3s:server (the user "server" with the
token's password: k3s-io/k3s pkg/etcd/etcd.go handler and infoHandler). It adds a joining
server as a learner, promoted to a voter once it caught up (etcd.go join, manageLearners); a
learner does not vote (https://etcd.io/docs/v3.5/learning/design-learner/). A member whose
instance is gone would count against quorum forever: deleting its Node makes K3s remove the
member (pkg/etcd/member_controller.go, onRemove -> RemovePeer); a dead member without a Node
cannot be removed that way, and the boot waits (then fails) rather than join beside it. The
same goes for this server when its boot fails after it joined: it stops its K3s and deletes its
own Node through the API endpoint. It says SUCCESS only once every other server registered in
the API target group is healthy."""

from __future__ import annotations

from tests.support.boot_sandbox import (AGENT_TOKEN, INSTANCE_ID, JOIN_URL, READY_ATTEMPTS, SERVER_TOKEN, expand,
                                        token_leaks)
from tests.support.boot_scenario import member_name

from k3s_infra.bootstrap import k3s_config

FIRST = "i-0f1a000000000000a"
DEAD = "i-0dead00000000000d"


def _join(sandbox, rendered, **knobs):
    return sandbox.run(expand(rendered["prod"].templates["Servers"]), **{"api_up_after": 0, **knobs})


def _member_names(run) -> list[str]:
    return [m["name"] for m in run.state["members"]]


def _db_info(run) -> list[list[str]]:
    return [c for c in run.curl_calls if c[-1] == "https://127.0.0.1:6443/db/info"]


def test_a_member_of_a_terminated_instance_is_removed_before_success(sandbox, rendered):
    run = _join(sandbox, rendered, members=(FIRST, DEAD), instances={DEAD: "terminated"})
    assert run.returncode == 0, run.stderr
    kubeconfig = str(run.path("/etc/rancher/k3s/k3s.yaml"))
    assert ["kubectl", "--kubeconfig", kubeconfig, "delete", "node", DEAD] in run.k3s_calls
    assert _member_names(run) == [member_name(FIRST), member_name(INSTANCE_ID)]
    # SUCCESS only once a later look found the member gone: deleted, tagged ready, signalled.
    deleted = run.position("k3s", "delete", DEAD)
    looks = [n for n, call in enumerate(run.sequence) if call[0] == "curl" and call[-1].endswith("/db/info")]
    assert looks[0] < deleted < looks[-1]
    assert deleted < run.position("aws", "create-tags") < run.position("aws", "signal-resource")
    assert run.statuses == ["SUCCESS"]
    # It asked EC2 about every member's instance, by the name K3s gave the member.
    lookup = [c for c in run.aws_calls if "describe-instances" in c][0]
    assert lookup[lookup.index("--filters") + 1] == f"Name=instance-id,Values={FIRST},{DEAD},{INSTANCE_ID}"


def test_the_member_list_is_read_with_the_server_password_from_a_file(sandbox, rendered):
    run = _join(sandbox, rendered, members=(FIRST,))
    assert run.returncode == 0, run.stderr
    calls = _db_info(run)
    assert calls and all("-K" in call and "-u" not in call and "--user" not in call for call in calls)
    # The password only ever in K3s's token files: never on a command line, nor left behind.
    assert token_leaks(run, {k3s_config.TOKEN_FILE: SERVER_TOKEN, k3s_config.AGENT_TOKEN_FILE: AGENT_TOKEN}) == []


def test_a_learner_promoted_after_a_while_succeeds(sandbox, rendered):
    run = _join(sandbox, rendered, members=(FIRST,), promote_after=2)
    assert run.returncode == 0, run.stderr
    assert len(_db_info(run)) == 3
    assert run.statuses == ["SUCCESS"]


def _left_after_failure(run, registered: bool = True):
    """A joined server gave up: FAILURE signalled first (nothing may outlast the signal
    timeout), then its K3s stopped (its kubelet would register the Node again), then its own
    Node deleted through the API endpoint (the cluster's: its own K3s is down), so K3s's leader
    removed its member (a Node that never registered: nothing to delete, and no error);
    the Unhealthy report last; never tagged ready."""
    signalled = run.position("aws", "signal-resource")
    stopped = run.position("systemctl", "stop", "k3s")
    leave = run.position("k3s", "--server", JOIN_URL, "delete", "node", INSTANCE_ID, "--ignore-not-found")
    assert 0 <= signalled < stopped < leave < run.position("aws", "set-instance-health")
    assert run.state["deleted_nodes"] == ([INSTANCE_ID] if registered else [])
    if registered:
        assert member_name(INSTANCE_ID) not in _member_names(run)
    assert run.statuses == ["FAILURE"] and run.tags == []
    assert run.health_reports == [[INSTANCE_ID, "Unhealthy", True]]


def test_a_learner_never_promoted_leaves_etcd_and_fails(sandbox, rendered):
    run = _join(sandbox, rendered, members=(FIRST,), promote_after=None)
    assert run.returncode == 1
    assert "etcd's members did not settle" in run.stderr
    assert len(_db_info(run)) == READY_ATTEMPTS  # bounded
    _left_after_failure(run)
    assert _member_names(run) == [member_name(FIRST)]


def test_a_joined_server_that_never_gets_ready_leaves_after_it_signals(sandbox, rendered):
    run = _join(sandbox, rendered, members=(FIRST,), node_ready=False)
    assert run.returncode == 1
    _left_after_failure(run, registered=False)


def test_a_first_server_that_fails_its_own_new_cluster_has_nothing_to_leave(sandbox, rendered):
    run = sandbox.run(expand(rendered["dev"].templates["ServerInit"]), node_ready=False)
    assert run.returncode == 1
    assert not [c for c in run.k3s_calls if "delete" in c] and _db_info(run) == []
    assert run.statuses == ["FAILURE"]


def test_a_dead_member_without_a_node_is_waited_for_and_fails_the_boot(sandbox, rendered):
    """K3s removes a member only through its Node. A dead voter without one still counts
    against quorum (https://etcd.io/docs/v3.5/faq/): joining beside it would leave etcd one
    failure from losing it, so the boot waits, then gives up and says how to remove it."""
    run = _join(sandbox, rendered, members=(FIRST, DEAD), instances={DEAD: "terminated"}, nodes=(FIRST,))
    assert run.returncode == 1
    assert (f"etcd member {member_name(DEAD)} belongs to {DEAD}, which no longer runs, and has no Node"
            in run.stderr) and "etcdctl member remove" in run.stderr
    assert len(_db_info(run)) == READY_ATTEMPTS  # it kept looking, bounded
    assert "etcd's members did not settle" in run.stderr
    _left_after_failure(run)


# SUCCESS lets a roll (CloudFormation's rolling update of the servers' group) terminate the next
# server: only once every other server registered in the API target group is healthy, never while
# another member is down (two members down of three is quorum lost).


def _target_reads(run) -> list[int]:
    return [n for n, call in enumerate(run.sequence) if "describe-target-health" in call]


def test_a_joiner_waits_for_every_other_server_to_be_healthy_then_succeeds(sandbox, rendered):
    # Its own target is not healthy yet (K3s just started): only the others count.
    run = _join(sandbox, rendered, members=(FIRST,), targets=((FIRST, "unhealthy"),), own_target="initial",
                targets_after=(1, ((FIRST, "healthy"),)))
    assert run.returncode == 0, run.stderr
    assert "0 of 1 other servers healthy: waiting for all" in run.stderr
    reads = _target_reads(run)
    assert len(reads) == 2 and reads[-1] < run.position("aws", "signal-resource")
    assert run.statuses == ["SUCCESS"]


def test_a_joiner_whose_fellow_server_stays_down_fails_and_leaves(sandbox, rendered):
    run = _join(sandbox, rendered, members=(FIRST,), targets=((FIRST, "unhealthy"),))
    assert run.returncode == 1
    assert len(_target_reads(run)) == READY_ATTEMPTS  # bounded
    assert "etcd's members did not settle" in run.stderr
    _left_after_failure(run)
