"""Boot properties that the mechanical mutants of tests/mutation/sh_mutate.py showed no other
test checked (docs/testing.md, "The deploy library and the node script")."""

from __future__ import annotations

from tests.support.boot_sandbox import expand

FIRST = "i-0f1a000000000000a"  # the first server, a voting member (tests/boot/test_boot_members.py)


def test_a_service_that_does_not_start_fails_the_boot_without_waiting_for_readiness(sandbox, user_data):
    # systemd could not start the unit: nothing will become ready, so the boot gives up at once
    # (the group hears FAILURE now, not after the readiness wait's whole budget).
    run = sandbox.run(user_data("prod", "AgentPoolGeneral"), api_up_after=0, systemctl_failures=("start",))
    assert run.returncode != 0
    start = run.position("systemctl", "start")
    assert start >= 0
    probes = [c for c in run.sequence[start + 1:]
              if (c[0] == "curl" and any("/healthz" in a for a in c)) or c[:2] == ["k3s", "kubectl"]]
    assert probes == []
    assert [s[3] for s in run.signals] == ["FAILURE"]


def test_a_joining_server_that_cannot_read_the_api_targets_never_says_success(sandbox, rendered):
    # SUCCESS lets a roll terminate the next server (tests/boot/test_boot_members.py): a server
    # that cannot tell whether the others are healthy must not give that go-ahead.
    run = sandbox.run(expand(rendered["prod"].templates["Servers"]), api_up_after=0, members=(FIRST,),
                      unreachable=("elbv2",))
    assert run.returncode != 0
    assert [c for c in run.aws_calls if "describe-target-health" in c]
    assert "SUCCESS" not in run.statuses
