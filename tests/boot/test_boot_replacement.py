"""A replaced first server (the ASG of one launched it again) joins the cluster it finds."""

from __future__ import annotations

import pytest
from tests.support.boot_sandbox import AGENT_TOKEN, INSTANCE_ID, JOIN_URL, PARAMETERS, SECURE_SERVER_TOKEN, SERVER_TOKEN, token_leaks

from k3s_infra.bootstrap import k3s_config


def _assert_joined_not_initialised(run):
    assert run.returncode == 0, run.stderr
    config = run.config()
    assert config["cluster-init"] is False
    assert config["server"] == JOIN_URL
    assert config["node-name"] == INSTANCE_ID
    assert run.path("/etc/rancher/k3s/config.yaml.d/10-rejoin.yaml").exists()
    # It installs as an ordinary server, and neither re-publishes the kubeconfig nor touches the marker.
    assert run.installed and ["start", "k3s"] in run.systemctl_calls
    assert run.state["writes"] == []
    assert not any("--cluster-reset" in call for call in run.k3s_calls)
    assert run.path(k3s_config.TOKEN_FILE).read_text().strip() == SECURE_SERVER_TOKEN
    assert token_leaks(run, {k3s_config.TOKEN_FILE: SERVER_TOKEN, k3s_config.AGENT_TOKEN_FILE: AGENT_TOKEN}) == []


def test_replacement_with_marker_joins_through_the_load_balancer(sandbox, user_data):
    # Another server is registered, its health check not yet passing: the probe finds its API
    # (a load balancer forwards only to registered targets: an API answers only with one).
    run = sandbox.run(user_data("prod", "ServerInit"), marker="initialised", api_up_after=0, targets=("unhealthy",),
                      targets_after=(1, ("healthy",)))
    _assert_joined_not_initialised(run)
    assert run.state["parameters"][PARAMETERS["ClusterStateParameterName"]] == "initialised"


def test_replacement_waits_for_the_api_before_starting(sandbox, user_data):
    # The other servers are still electing a leader: the API answers on the fourth probe, and
    # their targets are healthy again by the time this one looks before it says SUCCESS.
    run = sandbox.run(user_data("prod", "ServerInit"), marker="initialised", api_up_after=3,
                      targets=("unhealthy", "unhealthy"), targets_after=(1, ("healthy", "healthy")))
    _assert_joined_not_initialised(run)
    assert run.state["api_probes"] == 4
    probes = [i for i, call in enumerate(run.sequence) if call[0] == "curl" and f"{JOIN_URL}/ping" in call]
    # K3s is installed while the API may still be away (the download overlaps the wait), and
    # started only once it answered.
    starts = [i for i, call in enumerate(run.sequence) if call[:2] == ["systemctl", "start"]]
    assert len(probes) == 4 and starts and max(probes) < min(starts)


def test_marker_lost_but_a_server_healthy_behind_the_load_balancer_still_joins(sandbox, user_data):
    # Without the marker only the target group can show a cluster (first_server.sh
    # probe_worthwhile): someone deleted the marker of a running cluster.
    run = sandbox.run(user_data("prod", "ServerInit"), marker=None, api_up_after=0, targets=("healthy",))
    _assert_joined_not_initialised(run)
    assert run.state["api_probes"] == 1  # prepare_join's wait for the API, no probe before deciding


@pytest.mark.parametrize("marker,secure,targets,api_up_after,probes", [
    # A first create: joiners registered, none up, no marker and no secure token yet.
    (None, False, ("unhealthy", "unhealthy"), None, 0),
    # A lone server replaced: nobody the load balancer could reach.
    ("initialised", True, (), None, 0),
    # Another server registered: its API answers the third probe (then prepare_join's own wait: 4).
    ("initialised", True, ("unhealthy",), 2, 4),
    # The marker deleted by hand, every health check failing: the published token says a cluster formed.
    (None, True, ("unhealthy", "unhealthy"), 2, 4),
])
def test_the_probe_runs_only_where_an_api_could_answer(sandbox, user_data, marker, secure, targets, api_up_after,
                                                      probes):
    """No healthy target: an API can answer through the load balancer only from another
    registered server, and a cluster of this stack formed only if its first server published the
    secure tokens (every joiner needs them). Elsewhere the probe is skipped, and with it the wait
    for the load balancer's name on a first create (first_server.sh probe_worthwhile)."""
    objects = (("etcd/dev/etcd-snapshot-i-0aaa-1735711200", "2025-01-01T06:00:00+00:00"),)
    run = sandbox.run(user_data("dev", "ServerInit"), marker=marker, api_up_after=api_up_after, targets=targets,
                      targets_after=(1, ("healthy",) * len(targets)) if api_up_after else None,
                      secure_tokens=secure, objects=objects if marker else ())
    assert run.returncode == 0, run.stderr
    sequence = run.sequence
    # fetch_tokens, after the decision (and prepare_join): the agent token is read only there.
    decided = run.position("get-secret-value", PARAMETERS["AgentTokenSecretArn"])
    assert decided > 0
    assert len([c for c in sequence[:decided] if c[0] == "curl" and any(a.endswith("/ping") for a in c)]) == probes
    # The load balancer's name is read before deciding only to probe (bind_facts in decide_mode).
    named = next(i for i, c in enumerate(sequence) if any(a.endswith("/facts/api-dns-name") for a in c))
    assert (named < decided) is (probes > 0)


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_only_the_first_server_can_initialise(rendered, env_name):
    # The drop-in that turns it into a joining server exists only in its user data.
    from tests.support.boot_sandbox import expand

    init = expand(rendered[env_name].templates["ServerInit"])
    others = [expand(t) for stack_id, t in rendered[env_name].templates.items()
              if stack_id != "ServerInit" and any(r["Type"] == "AWS::EC2::LaunchTemplate"
                                                  for r in t.get("Resources", {}).values())]
    assert "cluster-init: true" in init and "/etc/k3s-infra/rejoin.yaml" in init
    assert others and not any("cluster-init" in text for text in others)
