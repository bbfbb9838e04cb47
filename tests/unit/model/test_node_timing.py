"""A node group's part of the time-to-ready model (k3s_infra/model/node_timing.py): the group
read from its rendered stack, and the boot waits taken from boot.env as boot_lib.sh spends them."""

from __future__ import annotations

from k3s_infra.model import durations as d
from k3s_infra.model import node_timing
from k3s_infra.model.node_timing import NodeGroup


def test_the_node_groups_are_read_from_the_rendered_stacks(rendered):
    r = rendered["prod"]
    groups = {s: node_timing.node_group(s, r.templates[s], r.root["Resources"][s]["Properties"]["Parameters"])
              for s in r.templates if node_timing.role_of(s)}
    assert groups["ServerInit"].desired == 1 and groups["Servers"].desired == 2
    assert groups["AgentPoolGeneral"].desired == 3 and groups["AgentPoolGeneral"].min_in_service == 2
    assert groups["Servers"].registers and not groups["AgentPoolGeneral"].registers
    assert groups["ServerInit"].boot_env["ROLE"] == "server-init"
    assert all(g.waits for g in groups.values())


def group(role: str, desired: int, max_batch: int = 1, min_in_service: int = 0) -> NodeGroup:
    return NodeGroup("S", role, "Group", desired, True, max_batch, min_in_service, role != node_timing.AGENT, {})


def test_joining_servers_join_etcd_one_after_another():
    """etcd admits one learner at a time: four joiners take twice as long as two."""
    def joins(n):
        boot = node_timing.create_boot(group(node_timing.JOINING, n), 0.0, (0.0, "-"), 30.0)
        return next(p.end - p.start for p in boot.phases if p.name == "etcd joins")

    assert joins(4) == 2 * joins(2) == 4 * d.BOOT["etcd_join"].seconds


def test_k3s_waits_for_the_late_bound_gate_and_says_which():
    boot = node_timing.create_boot(group(node_timing.AGENT, 2), 0.0, (900.0, "ServerInit"), 30.0)
    wait = next(p for p in boot.phases if p.name == "wait for ServerInit")
    assert wait.end == 900.0 and boot.waited_for == "ServerInit"
    assert [p.name for p in boot.phases if p.start >= 900.0][:2] == ["tokens", "k3s start"]


def test_a_roll_drains_first_unless_there_is_room_for_a_temporary_instance():
    tight = node_timing.roll(group(node_timing.AGENT, 3, 1, 2), 0.0, 3, 30.0)  # 2 + 1 <= 3: terminate first
    roomy = node_timing.roll(group(node_timing.AGENT, 3, 1, 3), 0.0, 3, 30.0)  # 3 + 1 > 3: launch first
    assert tight.phases[0].name == "drain" and roomy.phases[0].name == "launch"
    assert tight.batches == roomy.batches == 3
    batch = roomy.phases[-1].end
    assert roomy.seconds == 3 * batch + d.BOOT["drain"].seconds  # the old nodes drain at the end
