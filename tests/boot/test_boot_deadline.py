"""One deadline bounds the whole boot (boot_lib.sh: BOOT_DEADLINE, shorter than the group's
signal timeout): no wait starts past it, every timeout is cut to what is left of it, and only
the signal gets a short allowance beyond it. CloudFormation fails the group when a signal is
missing at the end of the CreationPolicy / UpdatePolicy timeout
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-creationpolicy.html):
a boot that gives up after it waited out its attempts one after the other would fail the stack
without ever saying why, and leave the instance for nobody to replace.

The sandbox's test hook K3S_INFRA_BOOT_DEADLINE sets the deadline in seconds; the backoff
here is a real second (K3S_INFRA_RETRY_BASE/_MAX=1), so attempts that ignored the deadline
would take far longer than the margins below."""

from __future__ import annotations

import time

from tests.support.boot_sandbox import expand

DEADLINE = 3
MARGIN = 10  # generous: the boot's own steps, a loaded machine


def test_a_boot_whose_api_never_answers_gives_up_at_its_deadline_and_still_signals(sandbox, rendered):
    started = time.monotonic()
    # Forty attempts a second apart would take forty seconds; the first two signals find no
    # connection: the signal's own allowance past the deadline lets it retry.
    run = sandbox.run(expand(rendered["prod"].templates["Servers"]), api_up_after=None, join_attempts=40,
                      boot_deadline=DEADLINE, retry_base=1, retry_max=1, signal_failures=2)
    elapsed = time.monotonic() - started
    assert run.returncode == 1
    assert elapsed < DEADLINE + MARGIN, f"the boot took {elapsed:.1f}s"
    assert run.state["api_probes"] < 40
    assert "the boot deadline leaves no time for another attempt" in run.stderr
    # Installed while the load balancer provisions (boot.sh main), never started.
    assert "never answered" in run.stderr and not [c for c in run.systemctl_calls if c[0] == "start"]
    assert run.statuses == ["FAILURE"]  # through, on its third attempt, past the deadline
    assert len([c for c in run.aws_calls if "signal-resource" in c]) == 3


def test_a_hanging_step_is_cut_to_what_is_left_of_the_deadline(sandbox, rendered):
    """A lone server's restore (`k3s server --cluster-reset`) hangs: its own bound
    (K3S_INFRA_START_TIMEOUT, 30 s here) is longer than what is left of the boot."""
    started = time.monotonic()
    run = sandbox.run(expand(rendered["dev"].templates["ServerInit"]), marker="initialised", api_up_after=None,
                      objects=(("etcd/dev/etcd-snapshot-i-0aaa-1735711200", "2025-01-01T06:00:00+00:00"),),
                      restore_hangs=True, start_timeout=30, boot_deadline=DEADLINE + 1)
    elapsed = time.monotonic() - started
    assert run.returncode == 1
    assert elapsed < DEADLINE + 1 + MARGIN, f"the boot took {elapsed:.1f}s"
    assert [c for c in run.k3s_calls if "--cluster-reset" in c]
    assert "restoring snapshot etcd-snapshot-i-0aaa-1735711200 failed" in run.stderr
    assert run.statuses == ["FAILURE"]
