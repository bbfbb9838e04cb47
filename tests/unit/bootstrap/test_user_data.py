"""The user data of each node role (k3s_infra/bootstrap/__init__.py): the files cloud-init
writes (settings root-only, units 0644, the boot script executable), manifests and add-on
charts on servers only, Longhorn's iscsi_tcp loaded at once and at every boot (longhorn.io
installation requirements; modules-load.d(5), one module per line), boot.env values that
cannot be shell-quoted never written (validation refuses them first; this is the last line
behind it), and misuse of the builders a clear build error. The node's user data is read
from the rendered template with the standard library (tests/support/oracle_helpers.py).
"""

from __future__ import annotations

import json

import pytest
import yaml

from k3s_infra import bootstrap
from k3s_infra.config import load_environment
from k3s_infra.model import roles
from k3s_infra.render import build_templates

from tests.support.addons import charts_of, write_files, write_files as _write_files
from tests.support.oracle_helpers import ALL_ADDONS, node_stack_ids, user_data_text


CONFIG = "/etc/rancher/k3s/config.yaml"  # K3s's default config file (docs.k3s.io/installation/configuration)

MANIFESTS = "/var/lib/rancher/k3s/server/manifests"  # auto-deployed (docs.k3s.io/installation/packaged-components)

BOOT_ENV = "/etc/k3s-infra/boot.env"


def test_files_holding_settings_are_root_only_and_the_boot_script_is_executable(nodes):
    _, templates = nodes
    for stack_id, template in templates.items():
        entries = _write_files(template)
        settings = [p for p in entries if p.startswith(("/etc/rancher/k3s/", "/etc/k3s-infra/", MANIFESTS + "/"))]
        assert {CONFIG, BOOT_ENV} <= set(settings), stack_id
        for path in settings:  # config, boot.env, the rejoin drop-in, manifests
            assert entries[path]["permissions"] == "0600", (stack_id, path)
        units = [p for p in entries if p.startswith(("/etc/systemd/", "/run/systemd/"))]
        assert units and all(entries[p]["permissions"] == "0644" for p in units), stack_id
        runs = yaml.safe_load(user_data_text(template))["runcmd"]
        (script,) = [p for p in entries if [p] in runs]
        assert entries[script]["permissions"] == "0700", stack_id


def test_agents_carry_no_manifests(everything):
    _, _, _, templates = everything
    for stack_id in (s for s in templates if s.startswith("AgentPool")):
        files = write_files(templates[stack_id])
        assert not any(path.startswith(bootstrap.MANIFESTS_DIR) for path in files), stack_id


def test_agents_do_not_carry_the_chart(rendered):
    for stack_id, template in rendered["prod"].templates.items():
        if stack_id.startswith("AgentPool"):
            assert "cluster-autoscaler" not in charts_of(template)


def test_longhorn_nodes_load_iscsi_now_and_at_every_boot(tmp_path):
    """Longhorn needs the iscsi_tcp module on every node (longhorn.io docs, installation
    requirements); bootcmd loads it at once, modules-load.d(5) (one module name per line)
    on every later boot."""
    env = load_environment(path=ALL_ADDONS)
    assert env.addons.longhorn.enabled
    for stack_id, template in build_templates(env).items():
        if not node_stack_ids({stack_id: json.loads(json.dumps(template.to_dict()))}):
            continue
        document = yaml.safe_load(user_data_text(json.loads(json.dumps(template.to_dict()))))
        assert document["bootcmd"] == [["modprobe", "iscsi_tcp"]], stack_id
        (entry,) = [e for e in document["write_files"] if e["path"].startswith("/etc/modules-load.d/")]
        assert entry["path"].endswith(".conf") and entry["permissions"] == "0644", stack_id
        assert entry["content"].splitlines() == ["iscsi_tcp"], stack_id


def test_misuse_of_the_user_data_builders_is_a_clear_build_error(rendered):
    env = rendered["dev"].env
    with pytest.raises(ValueError, match=r"^unknown node role 'controller'$"):
        bootstrap.files(env, "controller")
    with pytest.raises(ValueError, match=r"^an agent needs its pool, and only an agent has one$"):
        bootstrap.files(env, roles.AGENT)
    with pytest.raises(ValueError, match=r"^an agent needs its pool, and only an agent has one$"):
        bootstrap.files(env, roles.SERVER, env.agent_pools[0])
    # Packed (gz+b64) text is opaque to Fn::Sub: a deploy-time parameter in it would never be filled in.
    with pytest.raises(ValueError, match=r"^/x: a packed file cannot carry deploy-time parameters$"):
        bootstrap.packed("/x", "0600", f"host: {bootstrap._placeholder('api_dns_name')}")


@pytest.mark.parametrize("bad", ["k3s-artifacts'; reboot; '", "k3s-artifacts\nx"])
def test_a_boot_setting_that_cannot_be_shell_quoted_is_never_written(rendered, bad):
    """boot.env is sourced by the boot script as KEY='value': a quote or a newline in a value
    would run as shell. Validation refuses such values first; this is the last line behind it."""
    env = rendered["dev"].env
    unchecked = env.model_copy(update={"deploy": env.deploy.model_copy(update={"artifact_bucket": bad})})
    with pytest.raises(ValueError, match=r"^boot setting ARTIFACT_BUCKET cannot be shell-quoted: "):
        bootstrap.files(unchecked, roles.AGENT, env.agent_pools[0])  # an agent: no server bundle names it first
