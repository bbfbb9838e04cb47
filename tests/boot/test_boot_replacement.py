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
    run = sandbox.run(user_data("prod", "ServerInit"), marker="initialised", api_up_after=0)
    _assert_joined_not_initialised(run)
    assert run.state["parameters"][PARAMETERS["ClusterStateParameterName"]] == "initialised"


def test_replacement_waits_for_the_api_before_installing(sandbox, user_data):
    # The other servers are still electing a leader: the API answers on the fourth probe, and
    # their targets are healthy again by the time this one looks before it says SUCCESS.
    run = sandbox.run(user_data("prod", "ServerInit"), marker="initialised", api_up_after=3,
                      targets=("unhealthy", "unhealthy"), targets_after=(1, ("healthy", "healthy")))
    _assert_joined_not_initialised(run)
    assert run.state["api_probes"] == 4
    probes = [i for i, url in enumerate(run.urls) if url == f"{JOIN_URL}/ping"]
    assert max(probes) < min(i for i, url in enumerate(run.urls) if "/releases/download/" in url)


def test_marker_lost_but_api_answering_still_joins(sandbox, user_data):
    # The first init never got to write the marker, yet a cluster answers behind the NLB.
    run = sandbox.run(user_data("prod", "ServerInit"), marker=None, api_up_after=0)
    _assert_joined_not_initialised(run)


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
