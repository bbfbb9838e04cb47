"""Every call the boot makes over the network has a time bound of its own, inside the boot's
deadline (boot_lib.sh: BOOT_DEADLINE, shorter than the group's signal timeout): one that hangs
would otherwise hold the boot past the signal timeout, and CloudFormation would fail the stack
without a word from the node (test_boot_deadline.py).

The AWS CLI v2 waits up to 60 s to connect and 60 s per socket read by default, 0 meaning no
limit at all (global options --cli-connect-timeout and --cli-read-timeout:
https://awscli.amazonaws.com/v2/documentation/api/latest/reference/index.html), and the boot
retries most calls: every AWS call carries shorter bounds. kubectl waits forever for an answer
by default (--request-timeout, "0" meaning don't time out:
https://kubernetes.io/docs/reference/kubectl/generated/kubectl_options/), and its request
timeout does not cover a connection that never completes: every kubectl call carries one and
runs under a process bound cut to the deadline (boot.sh kube). The sandbox's call lists leave
these bounds out (boot_run.without_bounds); here they are read as made (raw_calls)."""

from __future__ import annotations

import re
import time

from tests.support.boot_sandbox import expand

from k3s_infra.bootstrap import k3s_config

CLI_DEFAULT = 60  # seconds, both AWS CLI timeouts
FIRST = "i-0f1a000000000000a"
DEAD = "i-0dead00000000000d"
DEADLINE = 4
MARGIN = 10  # generous: the boot's own steps, a loaded machine


def _seconds(call: list[str], option: str) -> int:
    assert option in call, f"{option} missing from aws {' '.join(call)}"
    return int(call[call.index(option) + 1])


def _assert_aws_bounded(run):
    calls = run.raw_calls("aws")
    assert calls
    for call in calls:
        for option in ("--cli-connect-timeout", "--cli-read-timeout"):
            assert 0 < _seconds(call, option) < CLI_DEFAULT, call


def _assert_kubectl_bounded(run):
    calls = [c for c in run.raw_calls("k3s") if c[:1] == ["kubectl"]]
    assert calls
    for call in calls:
        (bound,) = [a for a in call if a.startswith("--request-timeout=")]
        assert re.fullmatch(r"--request-timeout=[1-9][0-9]*s", bound), call


def test_every_aws_and_kubectl_call_of_a_joining_server_carries_its_time_bounds(sandbox, rendered):
    # A joining server that finds a dead member: SSM, Secrets Manager, EC2 (members, the ready
    # tag), ELB (the other servers' health), CloudFormation; kubectl on its own K3s.
    run = sandbox.run(expand(rendered["prod"].templates["Servers"]), api_up_after=0, members=(FIRST, DEAD),
                      instances={DEAD: "terminated"})
    assert run.returncode == 0, run.stderr
    services = {next(a for n, a in enumerate(c) if not a.startswith("--") and not c[n - 1].startswith("--"))
                for c in run.aws_calls}  # the first word that is no global option (nor its value)
    assert {"ssm", "secretsmanager", "ec2", "elbv2", "cloudformation"} <= services
    _assert_aws_bounded(run)
    kubectl = [c for c in run.k3s_calls if c[:1] == ["kubectl"]]
    assert {"--raw=/readyz", "delete"} <= {w for c in kubectl for w in c}
    _assert_kubectl_bounded(run)


def test_every_call_of_the_first_servers_pod_identity_steps_carries_its_time_bounds(sandbox, rendered):
    # A new cluster: S3 (the issuer's documents), kubectl for the issuer, the webhook's Secret
    # and its configuration (first_server.sh publish_issuer, webhook_tls).
    run = sandbox.run(expand(rendered["prod"].templates["ServerInit"]), marker=None, api_up_after=None,
                      targets=("unhealthy",), secure_tokens=False)
    assert run.returncode == 0, run.stderr
    assert [c for c in run.aws_calls if "put-object" in c]
    assert {"--raw", "secret", "apply"} <= {w for c in run.k3s_calls if c[:1] == ["kubectl"] for w in c}
    _assert_aws_bounded(run)
    _assert_kubectl_bounded(run)


def test_a_kubectl_call_that_never_answers_is_cut_to_the_deadline(sandbox, rendered):
    """An agent's API connection is black-holed: its readiness check (its own Node) hangs.
    The boot still gives up by its deadline, and says so: FAILURE, the Unhealthy report."""
    started = time.monotonic()
    run = sandbox.run(expand(rendered["prod"].templates["AgentPoolGeneral"]), api_up_after=0, kubectl_hangs=True,
                      boot_deadline=DEADLINE, timeout=DEADLINE + MARGIN + 5)
    elapsed = time.monotonic() - started
    assert run.returncode == 1
    assert elapsed < DEADLINE + MARGIN, f"the boot took {elapsed:.1f}s"
    get_node = ["kubectl", "--kubeconfig", str(run.path(k3s_config.KUBELET_KUBECONFIG)), "get", "node"]
    assert run.k3s_calls and all(call[:5] == get_node for call in run.k3s_calls)
    assert "its Node never appeared" in run.stderr
    assert run.statuses == ["FAILURE"] and run.health_reports
    _assert_kubectl_bounded(run)
    _assert_aws_bounded(run)  # the failure path's calls too (the signal, the report)
