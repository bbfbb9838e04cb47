"""A joining server counts etcd's members before it says SUCCESS, and leaves etcd if it gives up.

K3s lists etcd's members at /db/info for the role k3s:server (the user "server" with the
token's password: k3s-io/k3s pkg/etcd/etcd.go handler and infoHandler). It adds a joining
server as a learner, promoted to a voter once it caught up (etcd.go join, manageLearners); a
learner does not vote (https://etcd.io/docs/v3.5/learning/design-learner/). A member whose
instance is gone would count against quorum forever: deleting its Node makes K3s remove the
member (pkg/etcd/member_controller.go, onRemove -> RemovePeer). The same goes for this server
when its boot fails after it joined: it deletes its own Node through the API endpoint."""

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


def test_a_learner_never_promoted_leaves_etcd_and_fails(sandbox, rendered):
    run = _join(sandbox, rendered, members=(FIRST,), promote_after=None)
    assert run.returncode == 1
    assert "etcd's members did not settle" in run.stderr
    assert len(_db_info(run)) == READY_ATTEMPTS  # bounded
    # It deleted its own Node through the API endpoint (the cluster's, not its own K3s), so
    # K3s removed its member, and only then signalled FAILURE; it never tagged itself ready.
    leave = run.position("k3s", "--server", JOIN_URL, "delete", "node", INSTANCE_ID)
    assert 0 <= leave < run.position("aws", "signal-resource")
    assert run.state["deleted_nodes"] == [INSTANCE_ID]
    assert _member_names(run) == [member_name(FIRST)]
    assert run.statuses == ["FAILURE"] and run.tags == []


def test_a_joined_server_that_never_gets_ready_leaves_before_it_fails(sandbox, rendered):
    run = _join(sandbox, rendered, members=(FIRST,), node_ready=False)
    assert run.returncode == 1
    leave = run.position("k3s", "--server", JOIN_URL, "delete", "node", INSTANCE_ID, "--ignore-not-found")
    assert 0 <= leave < run.position("systemctl", "stop", "k3s") < run.position("aws", "signal-resource")
    assert run.statuses == ["FAILURE"] and run.tags == []


def test_a_first_server_that_fails_its_own_new_cluster_has_nothing_to_leave(sandbox, rendered):
    run = sandbox.run(expand(rendered["dev"].templates["ServerInit"]), node_ready=False)
    assert run.returncode == 1
    assert not [c for c in run.k3s_calls if "delete" in c] and _db_info(run) == []
    assert run.statuses == ["FAILURE"]


def test_a_dead_member_without_a_node_is_reported_not_waited_for(sandbox, rendered):
    # K3s removes a member only through its Node; without one, waiting would never end.
    run = _join(sandbox, rendered, members=(FIRST, DEAD), instances={DEAD: "terminated"}, nodes=(FIRST,))
    assert run.returncode == 0, run.stderr
    assert f"etcd member {member_name(DEAD)} belongs to {DEAD}, which no longer runs, and has no Node" in run.stderr
    assert run.statuses == ["SUCCESS"]
