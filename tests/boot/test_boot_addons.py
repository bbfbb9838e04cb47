"""The real boot script with every add-on on: HelmCharts land in K3s's manifests dir with
their pinned versions, boot-time values become Secrets only there, Longhorn's packages
are installed through dnf before K3s."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.support.boot_sandbox import (ADDON_SECRETS, PARAMETERS, SERVER_STARTS, SERVER_TOKEN, AGENT_TOKEN, expand,
                                        token_leaks)

from k3s_infra import bootstrap
from k3s_infra.model import addons
from k3s_infra.config.catalog import CATALOG
from k3s_infra.bootstrap import k3s_config
from k3s_infra.bootstrap import bundle as server_bundle
from k3s_infra.config import load_environment
from k3s_infra.render import render
from tests.support.published import publish
from tests.support.fixture_scope import shared

ALL_ADDONS = Path(__file__).resolve().parents[1] / "environments" / "all-addons.yaml"


@pytest.fixture(scope=shared("module"))
def addon_templates():
    env = load_environment(path=ALL_ADDONS)
    publish(env)  # the add-ons' object the deploy uploads
    return env, {s.stack_id: yaml.safe_load(s.body) for s in render(env).stacks}


def manifests(run) -> dict[str, Path]:
    folder = run.path(bootstrap.MANIFESTS_DIR)
    return {p.name: p for p in folder.iterdir()} if folder.exists() else {}


def test_first_server_writes_every_addon_chart_and_its_boot_values(sandbox, addon_templates):
    env, templates = addon_templates
    run = sandbox.run(expand(templates["ServerInit"]))
    assert run.returncode == 0, run.stderr
    files = manifests(run)

    # One multi-document manifest, decoded by cloud-init, with every chart pinned.
    bundle = files[Path(bootstrap.ADDONS_MANIFEST).name]
    assert bundle.stat().st_mode & 0o077 == 0
    charts = {d["metadata"]["name"]: d for d in yaml.safe_load_all(bundle.read_text()) if d}
    assert set(charts) == {addons.chart_name(name) for name in CATALOG}
    for name in CATALOG:
        spec = charts[addons.chart_name(name)]["spec"]
        assert spec["version"] == addons.version(env, name), name
        assert spec["targetNamespace"] == CATALOG[name].namespace

    # Each boot-time value as a Secret the chart's valuesSecrets names, root-only.
    expected = {
        "k3s-infra-rancher-bootstrap-password":
            ("bootstrapPassword", ADDON_SECRETS[PARAMETERS["RancherBootstrapPasswordSecretArn"]]),
        "k3s-infra-grafana-admin-password":
            ("adminPassword", ADDON_SECRETS[PARAMETERS["GrafanaAdminPasswordSecretArn"]]),
        "k3s-infra-node-termination-handler-queue-url": ("queueURL", PARAMETERS["DrainQueueUrl"]),
    }
    for name, (key, value) in expected.items():
        path = files[f"{name}.yaml"]
        assert path.stat().st_mode & 0o077 == 0, name
        secret = yaml.safe_load(path.read_text())
        assert (secret["kind"], secret["metadata"]) == ("Secret", {"name": name, "namespace": "kube-system"})
        assert yaml.safe_load(secret["stringData"][addons.VALUES_KEY]) == {key: value}
    named = {s["name"] for c in charts.values() for s in c["spec"].get("valuesSecrets", [])}
    assert named == set(expected)

    # The add-on secrets were read with the instance role, by ARN.
    assert set(run.secrets_read()) == {PARAMETERS["TokenSecretArn"], PARAMETERS["AgentTokenSecretArn"],
                                       PARAMETERS["RancherBootstrapPasswordSecretArn"],
                                       PARAMETERS["GrafanaAdminPasswordSecretArn"]}
    # Longhorn's node packages through dnf, iscsid started, all before K3s is installed.
    assert run.dnf_calls == [["install", "-y", "iscsi-initiator-utils", "nfs-utils"]]
    assert run.systemctl_calls == [["enable", "--now", "iscsid"], *SERVER_STARTS]
    assert run.installed


def test_addon_secret_values_appear_only_in_their_secret_manifests(sandbox, addon_templates):
    _, templates = addon_templates
    run = sandbox.run(expand(templates["Servers"]), api_up_after=0)
    assert run.returncode == 0, run.stderr
    folder = bootstrap.MANIFESTS_DIR
    places = {
        PARAMETERS["RancherBootstrapPasswordSecretArn"]: f"{folder}/k3s-infra-rancher-bootstrap-password.yaml",
        PARAMETERS["GrafanaAdminPasswordSecretArn"]: f"{folder}/k3s-infra-grafana-admin-password.yaml",
    }
    for arn, value in ADDON_SECRETS.items():
        assert value not in run.stdout + run.stderr
        found = [str(p) for p in run.root.rglob("*") if p.is_file() and value in p.read_text(errors="replace")]
        assert found == [str(run.path(places[arn]))]
        for log in run.logs.iterdir():  # never on a command line
            assert value not in log.read_text()
    assert token_leaks(run, {k3s_config.TOKEN_FILE: SERVER_TOKEN, k3s_config.AGENT_TOKEN_FILE: AGENT_TOKEN}) == []


def test_agents_install_longhorn_packages_but_write_no_manifests(sandbox, addon_templates):
    _, templates = addon_templates
    run = sandbox.run(expand(templates["AgentPoolGeneral"]), api_up_after=0)
    assert run.returncode == 0, run.stderr
    assert run.dnf_calls == [["install", "-y", "iscsi-initiator-utils", "nfs-utils"]]
    assert manifests(run) == {}
    assert run.secrets_read() == [PARAMETERS["AgentTokenSecretArn"]]


def test_without_addons_nothing_is_installed_or_written(sandbox, user_data):
    run = sandbox.run(user_data("dev", "ServerInit"))
    assert run.returncode == 0, run.stderr
    assert run.dnf_calls == [] and run.systemctl_calls == SERVER_STARTS
    # dev's pool can grow: the cluster autoscaler (on by default, no node packages) is the
    # one add-on written; no opt-in add-on is. The cloud controller and the pod identity
    # webhook are no add-ons: every server has them.
    written = manifests(run)
    assert set(written) == {Path(m).name for m in (bootstrap.CCM_MANIFEST, bootstrap.ADDONS_MANIFEST,
                                                   server_bundle.WEBHOOK_MANIFEST)}
    charts = [d for d in yaml.safe_load_all(written[Path(bootstrap.ADDONS_MANIFEST).name].read_text()) if d]
    assert [c["metadata"]["name"] for c in charts] == ["cluster-autoscaler"]
