"""Servers beyond the first: wait for the API behind the NLB, then join it."""

from __future__ import annotations

import yaml
from tests.support.boot_sandbox import AGENT_TOKEN, INSTANCE_ID, JOIN_URL, PARAMETERS, SECURE_SERVER_TOKEN, SERVER_TOKEN, ZONE, token_leaks

from k3s_infra import bootstrap
from k3s_infra.bootstrap import k3s_config


def test_joining_server_retries_until_the_api_answers_then_joins(sandbox, user_data, rendered):
    env = rendered["prod"].env
    run = sandbox.run(user_data("prod", "Servers"), api_up_after=2)
    assert run.returncode == 0, run.stderr
    config = run.config()
    assert config["server"] == JOIN_URL
    assert "cluster-init" not in config
    assert config["node-name"] == INSTANCE_ID
    assert f"provider-id=aws:///{ZONE}/{INSTANCE_ID}" in config["kubelet-arg"]
    assert config["secrets-encryption"] is True and config["disable-cloud-controller"] is True
    assert PARAMETERS["ApiDnsName"] in config["tls-san"]
    assert config["etcd-s3"] is True
    assert run.state["api_probes"] == 3
    assert run.installed and ["start", "k3s"] in run.systemctl_calls
    # It joins with the secure token: the CA it is shown must hash to the pinned value.
    assert run.path(k3s_config.TOKEN_FILE).read_text().strip() == SECURE_SERVER_TOKEN
    # No marker, no kubeconfig: only the first server owns those. Its SSM reads are its bundle
    # and the facts the ApiEndpoint and Identity stacks wrote (bind_facts): the API's names
    # (prod has a public door too) and the issuer's URL, which the K3s config now names.
    bundle_name, _ = user_data("prod", "Servers").bundle  # the node stack's SSM parameter
    facts = f"/k3s-infra/{env.stack_name}/facts"
    assert [c[c.index("--name") + 1] for c in run.aws_calls if c[4] == "ssm"] == [
        bundle_name, f"{facts}/api-dns-name", f"{facts}/public-api-dns-name", f"{facts}/issuer-url"]
    assert f"service-account-issuer-={PARAMETERS['IssuerUrl']}" in config["kube-apiserver-arg"]
    assert run.state["writes"] == []
    assert run.secrets_read() == [PARAMETERS["TokenSecretArn"], PARAMETERS["AgentTokenSecretArn"]]
    assert token_leaks(run, {k3s_config.TOKEN_FILE: SERVER_TOKEN, k3s_config.AGENT_TOKEN_FILE: AGENT_TOKEN}) == []
    # The CCM manifest is where K3s auto-deploys manifests, pinned to config.
    manifest = yaml.safe_load(run.path(bootstrap.CCM_MANIFEST).read_text())
    assert manifest["spec"]["version"] == env.k3s.cloud_controller.chart_version
    values = yaml.safe_load(manifest["spec"]["valuesContent"])
    assert values["image"]["tag"] == env.k3s.cloud_controller.image_tag
    assert f"--cluster-name={env.stack_name}" in values["args"]


def test_joining_server_gives_up_when_the_api_never_answers(sandbox, user_data):
    run = sandbox.run(user_data("dev", "Servers"), api_up_after=None, join_attempts=4)
    assert run.returncode != 0
    assert run.state["api_probes"] == 4
    assert not run.state["started"]
    assert "never answered" in run.stderr


def test_cluster_wide_settings_match_on_every_server(rendered):
    for rendering in rendered.values():
        configs = []
        for stack_id in ("ServerInit", "Servers"):
            from tests.support.boot_sandbox import expand

            document = yaml.safe_load(expand(rendering.templates[stack_id]))
            (entry,) = [f for f in document["write_files"] if f["path"] == bootstrap.K3S_CONFIG]
            configs.append(yaml.safe_load(entry["content"]))
        wide = k3s_config.cluster_wide(rendering.env)
        assert {"cluster-cidr", "service-cidr", "cluster-dns", "cluster-domain", "disable",
                "secrets-encryption"} <= set(wide)
        for config in configs:
            assert {key: config[key] for key in wide} == wide
