"""What the rendered launch templates carry: one cluster-init, server settings, size, no secrets."""

from __future__ import annotations

import json

import pytest
import yaml
from tests.support.boot_sandbox import PARAMETERS, boot_env, expand, launch_template_user_data
from tests.support.oracle_helpers import bundle_files

from k3s_infra import bootstrap
from k3s_infra.model import limits
from k3s_infra.bootstrap import k3s_config
from k3s_infra.config import ConfigError, validate

SERVER_STACKS = ("ServerInit", "Servers")


def _launch_templates(r) -> dict[str, dict]:
    return {stack_id: t for stack_id, t in r.templates.items()
            if any(res["Type"] == "AWS::EC2::LaunchTemplate" for res in t.get("Resources", {}).values())}


def _k3s_config(user_data: str) -> dict:
    (entry,) = [f for f in yaml.safe_load(user_data)["write_files"] if f["path"] == bootstrap.K3S_CONFIG]
    return yaml.safe_load(entry["content"])


@pytest.fixture(params=["dev", "prod"])
def r(request, rendered):
    return rendered[request.param]


def test_exactly_one_launch_template_initialises_the_cluster(r):
    templates = _launch_templates(r)
    assert set(SERVER_STACKS) < set(templates)
    carrying = [s for s, t in templates.items() if "cluster-init" in json.dumps(launch_template_user_data(t))]
    assert carrying == ["ServerInit"]
    initialising = [s for s, t in templates.items() if _k3s_config(expand(t)).get("cluster-init") is True]
    assert initialising == ["ServerInit"]


def test_every_server_template_carries_the_server_settings(r):
    for stack_id in SERVER_STACKS:
        config = _k3s_config(expand(r.templates[stack_id]))
        assert config["secrets-encryption"] is True
        assert config["disable-cloud-controller"] is True
        assert config["etcd-s3"] is True and config["etcd-s3-bucket"] == PARAMETERS["SnapshotBucketName"]
        assert config["etcd-s3-region"] == r.env.region
        # The internal API's name, which the boot reads from SSM (bind_facts: test_boot_facts).
        assert config["tls-san"][0] == "@@K3S_INFRA_FACT_API_DNS_NAME@@"
        assert config["write-kubeconfig-mode"] == "0600"
        assert config["kubelet-arg"] == ["cloud-provider=external"]


def test_every_template_sets_the_provider_id_and_names_no_secret(r):
    for stack_id, template in _launch_templates(r).items():
        user_data = expand(template)
        written = "".join(bootstrap.unpacked(f) for f in yaml.safe_load(user_data)["write_files"])
        assert "provider-id=aws:///" in written, stack_id
        config = _k3s_config(user_data)
        assert "token" not in config and "agent-token" not in config
        assert config["token-file"] == k3s_config.TOKEN_FILE
        assert "K3S_TOKEN" not in user_data
        # Only ARNs reach the node; the values stay in Secrets Manager.
        boot_env = yaml.safe_load(user_data)["write_files"][0]
        assert boot_env["path"] == bootstrap.BOOT_ENV
        assert "secretsmanager" in boot_env["content"]


def test_user_data_fits_in_16_kb_even_with_the_longest_parameter_values(r):
    for stack_id, template in _launch_templates(r).items():
        text, _ = launch_template_user_data(template)
        worst = bootstrap.resolve(text, bootstrap.worst_case_values(r.env)).encode()
        assert len(worst) <= limits.MAX_USER_DATA_BYTES, stack_id
        # Even base64-encoded (how the launch template stores it) it stays under 16 KB.


def test_the_embedded_boot_script_is_the_packaged_one(r):
    for template in _launch_templates(r).values():
        document = yaml.safe_load(expand(template))
        (script,) = [f for f in document["write_files"] if f["path"] == bootstrap.BOOT_SCRIPT]
        assert script["encoding"] == "gz+b64"  # static text travels compressed
        assert bootstrap.unpacked(script) == bootstrap.boot_script()
        assert script["permissions"] == "0700"
        assert document["runcmd"] == [[bootstrap.BOOT_SCRIPT]]


def test_every_node_stack_uses_every_parameter_it_declares(r):
    # Declared-but-unused parameters would be cfn-lint W2001; the user data uses the boot ones.
    for stack_id, template in _launch_templates(r).items():
        text = json.dumps(template["Resources"]) + json.dumps(template.get("Outputs", {}))
        for name in template["Parameters"]:
            assert f'"Ref": "{name}"' in text, (stack_id, name)


def test_every_group_has_a_termination_hook_for_draining(r):
    """Every group holds a terminating instance for the drain; server groups also for the
    snapshot their watch takes, under the very name the watch completes (boot.env
    SNAPSHOT_HOOK): a hook of another name would make every termination wait out its timeout
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/completing-lifecycle-hooks.html)."""
    for stack_id, template in _launch_templates(r).items():
        (group,) = [res for res in template["Resources"].values()
                    if res["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
        hooks = group["Properties"]["LifecycleHookSpecificationList"]
        expected = 2 if stack_id in SERVER_STACKS else 1
        assert [h["LifecycleTransition"] for h in hooks] == ["autoscaling:EC2_INSTANCE_TERMINATING"] * expected, stack_id
        assert all(h["DefaultResult"] == "CONTINUE" and int(h["HeartbeatTimeout"]) >= 60 for h in hooks)
        if stack_id in SERVER_STACKS:
            # The watch reads it from the bundle's settings (bundle.env), sourced with its scripts.
            settings = dict(line.split("=", 1) for line in
                            bundle_files(template)["/usr/local/lib/k3s-infra/bundle.env"].splitlines())
            assert settings["SNAPSHOT_HOOK"].strip("'") in [h["LifecycleHookName"] for h in hooks]


def test_largest_pool_config_still_fits(env_document):
    # A large pool: many labels and taints, many extra TLS names (the config sets no count: the
    # 16 KB guard does). Since issue 25 an agent's user data also carries its K3s digests, the
    # facts it reads and the steps that install K3s from S3 (about 350 bytes): 50 such labels
    # fit, 60 no longer do (a LimitError naming the pool).
    document = env_document("prod")
    pool = document["agent_pools"][0]
    pool["labels"] = {f"example.com/label-{i:02d}": "v" * 40 for i in range(50)}
    pool["taints"] = [f"example.com/taint-{i:02d}=value:NoSchedule" for i in range(30)]
    document.setdefault("k3s", {})["tls_san"] = [f"api-{i}.k3s.prod.example.com" for i in range(40)]
    # So many labels exceed AWS's 50 tags per group once the autoscaler tags them (refused, see
    # test_autoscaler): this test is about user data only.
    document["addons"] = {"cluster_autoscaler": {"enabled": False}}
    env = validate(document, "prod.yaml")
    from k3s_infra.render import render

    render(env)  # raises LimitError if any launch template would exceed 16 KB


def test_oversized_user_data_is_refused_at_render_time(env_document):
    document = env_document("dev")
    document["agent_pools"][0]["labels"] = {f"example.com/label-{i:03d}": "v" * 60 for i in range(200)}
    document["addons"] = {"cluster_autoscaler": {"enabled": False}}  # else refused for its tags first
    env = validate(document, "dev.yaml")
    from k3s_infra.render import render

    with pytest.raises(ConfigError, match=r"user data of agent pool general would be [\d,]+ bytes"):
        render(env)


def test_server_taint_and_snapshots_follow_config(env_document):
    from k3s_infra.bootstrap import k3s_config as k

    document = env_document("dev")
    document["k3s"]["server_taint"] = False
    document["k3s"]["etcd_snapshots"]["enabled"] = False
    env = validate(document, "dev.yaml")
    config = k.server(env, init=False, api_host="api.example", snapshot_bucket="bucket",
                      issuer_url="https://issuer.example")
    assert "node-taint" not in config
    assert config["etcd-disable-snapshots"] is True
    assert not any(key.startswith("etcd-s3") for key in config)
    assert config["server"] == "https://api.example:6443" and "cluster-init" not in config
