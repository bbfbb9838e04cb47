"""Agents: join with the agent token, labels and taints from their pool."""

from __future__ import annotations

import pytest
from tests.support.boot_sandbox import AGENT_TOKEN, INSTANCE_ID, JOIN_URL, PARAMETERS, REGION, SECURE_AGENT_TOKEN, ZONE, token_leaks

from k3s_infra.model import naming
from k3s_infra.bootstrap import k3s_config


@pytest.mark.parametrize("pool_name", ["general", "spot-batch"])
def test_agent_joins_with_its_pool_labels_and_taints(sandbox, user_data, rendered, pool_name):
    env = rendered["prod"].env
    pool = next(p for p in env.agent_pools if p.name == pool_name)
    run = sandbox.run(user_data("prod", naming.agent_pool_stack(pool_name)), api_up_after=1)
    assert run.returncode == 0, run.stderr
    config = run.config()
    assert config["server"] == JOIN_URL
    assert config["token-file"] == k3s_config.TOKEN_FILE
    assert config["node-name"] == INSTANCE_ID
    assert config["kubelet-arg"] == ["cloud-provider=external", f"provider-id=aws:///{ZONE}/{INSTANCE_ID}"]
    assert config["node-label"] == [*(f"{k}={v}" for k, v in sorted(pool.labels.items())),
                                    f"topology.kubernetes.io/region={REGION}", f"topology.kubernetes.io/zone={ZONE}"]
    assert config.get("node-taint", []) == list(pool.taints)
    # Server-only settings stay off agents.
    assert not {"cluster-init", "tls-san", "etcd-s3", "secrets-encryption", "agent-token-file"} & set(config)

    # Only the agent token is read, in its secure form; it lands in the one file K3s reads.
    assert run.secrets_read() == [PARAMETERS["AgentTokenSecretArn"]]
    assert run.path(k3s_config.TOKEN_FILE).read_text().strip() == SECURE_AGENT_TOKEN
    assert token_leaks(run, {k3s_config.TOKEN_FILE: AGENT_TOKEN}) == []
    assert run.installed
    assert run.systemctl_calls == [["daemon-reload"], ["enable", "k3s-agent"], ["start", "k3s-agent"]]
    assert run.state["writes"] == []
    # Its only K3s call: its Node, read with the kubelet's own credentials (boot.sh agent_ready).
    assert run.k3s_calls == [["kubectl", "--kubeconfig", str(run.path(k3s_config.KUBELET_KUBECONFIG)), "get", "node",
                              INSTANCE_ID]]
    assert not run.path("/var/lib/rancher/k3s/server/manifests").exists()
