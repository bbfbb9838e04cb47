"""The servers' watch (watch.sh, `<script> watch`) asks for its own replacement only when that
cannot take etcd's quorum.

Server groups use EC2 health, not the load balancer's: a signal every server fails at once (a
K3s restart everywhere, one bad security-group rule) must never replace every etcd member. So
each server judges itself: K3s down locally for UNHEALTHY_AFTER seconds, the server groups
settled, a majority of the desired servers healthy without it, and it the first (lowest
instance ID) of the servers not healthy; then SetInstanceHealth Unhealthy without the grace
period (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetInstanceHealth.html).
etcd needs a majority of its members to serve: a cluster of n tolerates (n-1)/2 failures
(https://etcd.io/docs/v3.5/faq/, "What is failure tolerance?"); replacing a member removes one.
A lone server never asks at all: its disk holds data newer than its snapshots.

Each test runs the watch of several servers against one scenario: the API target group's
states, the auto scaling groups as DescribeAutoScalingGroups answers them (tags and hooks from
the rendered node stacks), each server's own K3s (https://127.0.0.1:6443/ping) up or down.
A server's report marks it Unhealthy in its group (AWS does so), which the next watch sees.
"""

from __future__ import annotations

import pytest
from tests.support.boot_sandbox import expand
from tests.support.boot_scenario import Group, node_group

IDS = ["i-01a0000000000000a", "i-02b0000000000000b", "i-03c0000000000000c", "i-04d0000000000000d",
       "i-05e0000000000000e"]
UNHEALTHY = ["Unhealthy", True]  # status, and the grace period not respected


def _cluster(rendered, health: dict[str, str], desired: int | None = None, pending: tuple[str, ...] = ()) -> dict:
    """The scenario every server's watch shares: `health` is each server's state in the API
    target group (the first server is the first-server group's, the rest the servers group's);
    `pending`: servers their group still launches. An agent pool of this cluster and the servers
    of another cluster (dev) are unsettled too: only this cluster's server groups count."""
    templates = rendered["prod"].templates
    first, *rest = health
    lifecycle = {i: "Pending" if i in pending else "InService" for i in health}
    groups = (node_group(templates["ServerInit"], "k3s-prod-ServerInit-1AB", [(first, lifecycle[first], "Healthy")]),
              node_group(templates["Servers"], "k3s-prod-Servers-2CD", [(i, lifecycle[i], "Healthy") for i in rest],
                         desired=None if desired is None else desired - 1),
              node_group(templates["AgentPoolGeneral"], "k3s-prod-AgentPoolGeneral-3EF",
                         [("i-0f00000000000000a", "Pending", "Healthy")], desired=3),
              node_group(rendered["dev"].templates["Servers"], "k3s-dev-Servers-4GH",
                         [("i-0f00000000000000b", "Terminating", "Unhealthy")], desired=2))
    return {"targets": tuple(health.items()), "groups": groups}


def _watch_all(sandbox, rendered, cluster: dict, down: set[str], order: list[str] | None = None):
    """Every server's watch, one after the other, each continuing the AWS side the previous left."""
    templates = rendered["prod"].templates
    first = cluster["targets"][0][0]
    run = None
    for instance_id in order or [i for i, _ in cluster["targets"]]:
        user_data = expand(templates["ServerInit" if instance_id == first else "Servers"])
        run = sandbox.run(user_data, mode="watch", instance_id=instance_id, local_k3s_up=instance_id not in down,
                          shared=run.state if run else None, **cluster)
        assert run.returncode == 0, run.stderr
    return run


def test_every_server_failing_its_ping_replaces_none(sandbox, rendered):
    """K3s down on all three servers, every target unhealthy: no server has a majority of
    healthy others, so none asks to be replaced (one report would already be one member fewer
    of a cluster that has none to spare)."""
    cluster = _cluster(rendered, dict.fromkeys(IDS[:3], "unhealthy"))
    run = _watch_all(sandbox, rendered, cluster, down=set(IDS[:3]))
    assert run.health_reports == []
    assert "replacing this one could take quorum" in run.stderr


def test_one_server_down_of_three_is_replaced_by_itself_alone(sandbox, rendered):
    health = {IDS[0]: "healthy", IDS[1]: "unhealthy", IDS[2]: "healthy"}
    run = _watch_all(sandbox, rendered, _cluster(rendered, health), down={IDS[1]})
    assert run.health_reports == [[IDS[1], *UNHEALTHY]]
    # Its own group then shows it Unhealthy, as AWS does (DescribeAutoScalingGroups).
    (servers,) = [g for g in run.state["groups"] if g["AutoScalingGroupName"] == "k3s-prod-Servers-2CD"]
    assert {i["InstanceId"]: i["HealthStatus"] for i in servers["Instances"]}[IDS[1]] == "Unhealthy"


def test_two_servers_down_of_five_are_replaced_one_at_a_time_lowest_id_first(sandbox, rendered):
    """Each of the two has three healthy others (a majority of five): only the first of the
    servers not healthy asks now; the other waits for the group to settle again."""
    health = {IDS[0]: "healthy", IDS[1]: "healthy", IDS[2]: "unhealthy", IDS[3]: "healthy", IDS[4]: "unhealthy"}
    cluster = _cluster(rendered, health)
    # The higher ID looks first: it must leave the report to the lower one.
    run = _watch_all(sandbox, rendered, cluster, down={IDS[2], IDS[4]}, order=[IDS[4], IDS[2], IDS[0]])
    assert run.health_reports == [[IDS[2], *UNHEALTHY]]


@pytest.mark.parametrize("change", ["an instance still launching", "fewer instances than desired"])
def test_a_server_group_that_is_changing_replaces_none(sandbox, rendered, change):
    """Another replacement (or a resize) is under way: removing one more member now could take
    quorum before the new one joined."""
    health = {IDS[0]: "healthy", IDS[1]: "unhealthy", IDS[2]: "healthy"}
    if change == "an instance still launching":
        cluster = _cluster(rendered, health, pending=(IDS[2],))
    else:
        cluster = _cluster(rendered, health, desired=4)
    run = _watch_all(sandbox, rendered, cluster, down={IDS[1]}, order=[IDS[1]])
    assert run.health_reports == []
    assert "the server groups are changing" in run.stderr


def test_a_lone_server_that_is_down_is_not_replaced(sandbox, rendered):
    """The cluster's only server (the server groups want one in all): its etcd on disk is newer
    than any snapshot, and a replacement could only restore one (first_server.sh), losing what
    came after it. A K3s that is down on it is for a person to look at, never a replacement."""
    templates = rendered["prod"].templates
    lone = {"targets": ((IDS[0], "unhealthy"),),
            "groups": (node_group(templates["ServerInit"], "k3s-prod-ServerInit-1AB", [IDS[0]]),)}
    run = _watch_all(sandbox, rendered, lone, down={IDS[0]})
    assert run.health_reports == []
    assert "K3s is down on the cluster's only server" in run.stderr
    # It did look at the groups: it is alone because they want one server, not for lack of an answer.
    assert [c for c in run.aws_calls if "describe-auto-scaling-groups" in c]


def test_k3s_down_for_less_than_the_threshold_is_not_reported(sandbox, rendered):
    """A K3s restart or upgrade takes K3s down for a while: only UNHEALTHY_AFTER seconds of
    downtime count (here an hour: the watch's two rounds take less)."""
    health = {IDS[0]: "healthy", IDS[1]: "unhealthy", IDS[2]: "healthy"}
    run = sandbox.run(expand(rendered["prod"].templates["Servers"]), mode="watch", instance_id=IDS[1],
                      local_k3s_up=False, unhealthy_after=3600, **_cluster(rendered, health))
    assert run.returncode == 0, run.stderr
    assert run.health_reports == []
    # It did look: its own K3s, twice (both rounds).
    assert run.urls.count("https://127.0.0.1:6443/ping") == 2


def test_no_server_group_found_replaces_none(sandbox, rendered):
    """DescribeAutoScalingGroups answers an empty list when no group matches the filters (a
    tag renamed, a cluster name that differs): not knowing the groups is no licence to leave
    etcd, least of all on every server at once."""
    health = {IDS[0]: "healthy", IDS[1]: "unhealthy", IDS[2]: "unhealthy"}
    cluster = _cluster(rendered, health)
    # The same groups, their tags not (or no longer) the ones the watch filters on.
    untagged = tuple(Group({**g.description, "Tags": []}, g.hooks) for g in cluster["groups"])
    run = _watch_all(sandbox, rendered, {**cluster, "groups": untagged}, down={IDS[1], IDS[2]},
                     order=[IDS[1], IDS[2]])
    assert [c for c in run.aws_calls if "describe-auto-scaling-groups" in c]
    assert run.health_reports == []
