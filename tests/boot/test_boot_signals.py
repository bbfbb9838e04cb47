"""Every boot ends with exactly one CloudFormation signal for its own instance: SUCCESS once
K3s is up and joined, FAILURE (and an Unhealthy report to its group) on every give-up.
SignalResource: https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_SignalResource.html
"""

from __future__ import annotations

import pytest
from tests.support.boot_sandbox import INSTANCE_ID, NODE_STACK_NAME, READY_ATTEMPTS, boot_env, expand, metadata_options

from k3s_infra.model import naming

NODE_STACKS = [("dev", "ServerInit", naming.SERVER_GROUP), ("prod", "Servers", naming.SERVER_GROUP),
               ("prod", "AgentPoolGeneral", naming.AGENT_GROUP)]


def _signal_call(run) -> list[list[str]]:
    return [c for c in run.aws_calls if "signal-resource" in c]


@pytest.mark.parametrize("env_name,stack_id,group", NODE_STACKS)
def test_success_is_signalled_for_this_instance_to_its_own_group(sandbox, rendered, env_name, stack_id, group):
    template = rendered[env_name].templates[stack_id]
    text = expand(template)
    settings = boot_env(text)
    # The user data names this stack (${AWS::StackName}) and the group's logical ID in it.
    assert (settings["SIGNAL_STACK"], settings["SIGNAL_RESOURCE"]) == (NODE_STACK_NAME, group)
    assert group in template["Resources"] and "CreationPolicy" in template["Resources"][group]
    run = sandbox.run(text, marker=None, api_up_after=0, metadata=metadata_options(template))
    assert run.returncode == 0, run.stderr
    assert run.signals == [[NODE_STACK_NAME, group, INSTANCE_ID, "SUCCESS"]]
    (call,) = _signal_call(run)
    assert call[call.index("--unique-id") + 1] == INSTANCE_ID
    assert run.state["health_reports"] == []
    # Signalled only after K3s was started and found ready.
    assert run.aws_calls.index(call) == len(run.aws_calls) - 1
    assert run.state["started"]


def test_a_server_is_ready_only_with_its_api_ready_and_its_node_registered(sandbox, user_data):
    run = sandbox.run(user_data("prod", "Servers"), api_up_after=0)
    assert run.returncode == 0, run.stderr
    kubeconfig = f"{run.root}/etc/rancher/k3s/k3s.yaml"
    assert ["kubectl", "--kubeconfig", kubeconfig, "get", "--raw=/readyz"] in run.k3s_calls
    assert ["kubectl", "--kubeconfig", kubeconfig, "get", "node", INSTANCE_ID] in run.k3s_calls


def test_an_agent_is_ready_when_its_kubelet_is_healthy(sandbox, user_data):
    run = sandbox.run(user_data("prod", "AgentPoolGeneral"), api_up_after=0)
    assert run.returncode == 0, run.stderr
    assert "http://127.0.0.1:10248/healthz" in run.urls


@pytest.mark.parametrize("stack_id", ["Servers", "AgentPoolGeneral"])
def test_readiness_never_reached_signals_failure_once_and_reports_unhealthy(sandbox, user_data, stack_id):
    run = sandbox.run(user_data("prod", stack_id), api_up_after=0, node_ready=False)
    assert run.returncode == 1
    assert "never became" in run.stderr
    assert [s[3] for s in run.signals] == ["FAILURE"]
    # Without --no-should-respect-grace-period the report is ignored during the boot-long grace period.
    assert run.state["health_reports"] == [[INSTANCE_ID, "Unhealthy", True]]
    # It checked readiness as often as the sandbox allows (K3S_INFRA_READY_ATTEMPTS), no more:
    # every wait must end inside the group's signal timeout.
    if stack_id == "Servers":
        assert sum("--raw=/readyz" in call for call in run.k3s_calls) == READY_ATTEMPTS
    else:
        assert run.urls.count("http://127.0.0.1:10248/healthz") == READY_ATTEMPTS


def test_api_never_answering_signals_failure(sandbox, user_data):
    run = sandbox.run(user_data("prod", "Servers"), api_up_after=None, join_attempts=3)
    assert run.returncode == 1
    assert run.state["api_probes"] == 3  # bounded
    assert not run.state["started"]
    assert [s[3] for s in run.signals] == ["FAILURE"]


def _k3s_reads(run) -> list[str]:
    """Keys of every read of a staged K3s file (deploy/artifacts.py), failed ones included."""
    return [key.split("/", 1)[1] for key in run.state["k3s_reads"]]


def test_downloads_are_retried_then_k3s_starts(sandbox, user_data):
    run = sandbox.run(user_data("prod", "Servers"), api_up_after=0, download_failures=2)
    assert run.returncode == 0, run.stderr
    # The binary's read found no connection twice, then it and the images came.
    reads = _k3s_reads(run)
    assert len(reads) == 4 and len(set(reads[:3])) == 1 and reads[0].endswith("/k3s")
    assert reads[3].endswith("/k3s-airgap-images-amd64.tar.zst")
    assert run.installed
    assert [s[3] for s in run.signals] == ["SUCCESS"]


def test_downloads_failing_every_time_signal_failure(sandbox, user_data):
    run = sandbox.run(user_data("prod", "AgentPoolGeneral"), api_up_after=0, download_failures=99)
    assert run.returncode == 1
    assert len(_k3s_reads(run)) == 5  # bounded (FETCH_ATTEMPTS)
    assert "error: cannot read k3s of K3s" in run.stderr
    assert not run.installed and not run.state["started"]
    assert [s[3] for s in run.signals] == ["FAILURE"]


def test_a_failure_on_a_die_path_is_signalled_too(sandbox, user_data):
    # No secret readable: a die path; the EXIT trap signals.
    run = sandbox.run(user_data("prod", "AgentPoolGeneral"), unreachable=("secretsmanager",))
    assert run.returncode == 1
    assert [s[3] for s in run.signals] == ["FAILURE"]


def test_a_failing_step_without_its_own_check_still_stops_the_boot(sandbox, user_data):
    # systemd cannot reload its units (e.g. its bus is down): the new K3s unit is not loaded,
    # so nothing after it may run as if it were, and the group must hear FAILURE.
    run = sandbox.run(user_data("prod", "AgentPoolGeneral"), api_up_after=0, systemctl_failures=("daemon-reload",))
    assert run.returncode != 0
    assert run.systemctl_calls == [["daemon-reload"]]
    assert not run.state["started"]
    assert [s[3] for s in run.signals] == ["FAILURE"]


def test_signalling_is_retried_when_cloudformation_is_unreachable_but_bounded(sandbox, user_data):
    # A network blip must not lose the signal (the group would wait out its whole timeout),
    # and an outage must not keep the boot forever.
    run = sandbox.run(user_data("prod", "AgentPoolGeneral"), api_up_after=0, unreachable=("cloudformation",))
    attempts = [c for c in run.aws_calls if "signal-resource" in c]
    assert 2 <= len(attempts) <= 10
    assert all(c[c.index("--status") + 1] == "SUCCESS" for c in attempts)
    # The node itself is fine: it ends as a success, and is not reported unhealthy.
    assert run.returncode == 0, run.stderr
    assert run.state["health_reports"] == []


def test_a_signal_nobody_waits_for_is_logged_not_a_failure(sandbox, user_data):
    # A scale-out after the stack settled: SignalResource answers ValidationError.
    run = sandbox.run(user_data("prod", "AgentPoolGeneral"), api_up_after=0, signal_waited_for=False)
    assert run.returncode == 0, run.stderr
    assert len(run.signals) == 1
    assert "not expected by" in run.stderr and "it is not waiting" in run.stderr
    assert run.state["health_reports"] == []


def test_the_metadata_service_follows_the_launch_template(sandbox, rendered):
    template = rendered["prod"].templates["AgentPoolGeneral"]
    options = metadata_options(template)
    assert options["HttpTokens"] == "required"
    run = sandbox.run(expand(template), api_up_after=0, metadata=options)
    assert run.returncode == 0, run.stderr
    assert run.imds_options["HttpPutResponseHopLimit"] == options["HttpPutResponseHopLimit"]


def test_imds_disabled_gives_up_without_a_region_to_signal(sandbox, user_data):
    run = sandbox.run(user_data("prod", "AgentPoolGeneral"), metadata={"HttpEndpoint": "disabled"})
    assert run.returncode == 1
    assert "no IMDSv2 token" in run.stderr
    assert run.signals == []  # no region, no instance ID: nothing to signal with
