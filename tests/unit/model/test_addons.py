"""Add-ons: opt-in config, pinned HelmCharts in the servers' user data, secrets never in YAML,
and an environment with every add-on on still renders cfn-lint clean within EC2's 16 KB."""

from __future__ import annotations

import json

import pytest
import yaml

from k3s_infra import bootstrap
from k3s_infra.model import addons
from k3s_infra.model import limits
from k3s_infra.config.catalog import CATALOG
from k3s_infra.config import ConfigError, load_environment, validate
from k3s_infra.render import render, write
from k3s_infra.model import roles
from oracle_helpers import ALL_ADDONS, user_data_text
from fixture_scope import shared

SERVER_STACKS = ("ServerInit", "Servers")


@pytest.fixture(scope=shared("module"))
def everything(tmp_path_factory):
    """The all-add-ons test environment, rendered to disk and parsed back."""
    env = load_environment(path=ALL_ADDONS)
    rendering = render(env)
    folder = write(rendering, tmp_path_factory.mktemp("addons") / env.name)
    templates = {s.stack_id: yaml.safe_load((folder / s.file).read_text()) for s in rendering.stacks}
    return env, rendering, folder, templates


def write_files(template: dict) -> dict[str, dict]:
    # The static entries are base64 text, so Fn::Sub variables never reach them.
    return {f["path"]: f for f in yaml.safe_load(user_data_text(template))["write_files"]}


def charts_of(template: dict) -> dict[str, dict]:
    """HelmCharts a node stack's user data writes into the manifests dir, by name."""
    entry = write_files(template).get(bootstrap.ADDONS_MANIFEST)
    if entry is None:
        return {}
    assert entry["encoding"] == "gz+b64" and entry["permissions"] == "0600"
    documents = [d for d in yaml.safe_load_all(bootstrap.unpacked(entry)) if d is not None]
    assert all(d["apiVersion"] == "helm.cattle.io/v1" and d["kind"] == "HelmChart" for d in documents)
    return {d["metadata"]["name"]: d for d in documents}


def with_addons(env_document, base: str = "dev", **addon_settings) -> object:
    document = env_document(base)
    # One add-on at a time: the autoscaler, on by default where pools can grow, is tested
    # in test_autoscaler.
    document["addons"] = {"cluster_autoscaler": {"enabled": False}, **addon_settings}
    return validate(document, f"{base}.yaml")


# --- config -------------------------------------------------------------------

def test_addons_are_off_unless_asked_for(env_document):
    document = env_document("dev")
    for pool in document["agent_pools"]:  # pools that can grow switch the autoscaler on (test_autoscaler)
        pool["min_size"] = pool["max_size"] = pool["desired"]
    env = validate(document, "dev.yaml")
    assert addons.enabled(env) == []
    assert addons.bundle(env) == ""
    assert bootstrap.ADDONS_MANIFEST not in {f["path"] for f in bootstrap.files(env, roles.SERVER_INIT)}


def test_one_line_enables_an_addon_with_the_catalog_defaults(env_document):
    env = with_addons(env_document, longhorn={"enabled": True})
    assert addons.enabled(env) == ["longhorn"]
    (chart,) = addons.charts(env)
    entry = CATALOG["longhorn"]
    assert chart["metadata"] == {"name": "longhorn", "namespace": "kube-system"}
    assert chart["spec"]["chart"] == entry.chart and chart["spec"]["repo"] == entry.repo
    assert chart["spec"]["version"] == entry.version
    assert chart["spec"]["targetNamespace"] == entry.namespace and chart["spec"]["createNamespace"] is True
    assert yaml.safe_load(chart["spec"]["valuesContent"]) == entry.values


def test_version_repo_and_values_override_the_catalog(env_document):
    env = with_addons(env_document, longhorn={
        "enabled": True, "version": "1.9.2", "repo": "https://charts.mirror.example.com/longhorn",
        "values": {"persistence": {"defaultClassReplicaCount": 2}, "extra": [1, 2]}})
    (chart,) = addons.charts(env)
    assert chart["spec"]["version"] == "1.9.2"
    assert chart["spec"]["repo"] == "https://charts.mirror.example.com/longhorn"
    values = yaml.safe_load(chart["spec"]["valuesContent"])
    # Mappings merge key by key: the override wins, the catalog's siblings stay.
    assert values["persistence"] == {"defaultClass": True, "defaultClassReplicaCount": 2}
    assert values["defaultSettings"] == CATALOG["longhorn"].values["defaultSettings"]
    assert values["extra"] == [1, 2]
    assert CATALOG["longhorn"].values["persistence"]["defaultClassReplicaCount"] == 3  # catalog untouched


def test_an_addon_brings_what_it_requires(env_document):
    env = with_addons(env_document, rancher={"enabled": True, "values": {"hostname": "rancher.example.com"}},
                      grafana={"enabled": True})
    assert addons.enabled(env) == ["cert_manager", "rancher", "victoria_metrics", "grafana"]


@pytest.mark.parametrize("settings, path, fragment", [
    ({"rancher": {"enabled": True, "values": {"hostname": "r.example.com", "bootstrapPassword": "hunter2"}}},
     "addons.rancher.values.bootstrapPassword", "never written in YAML"),
    ({"grafana": {"values": {"adminPassword": "admin"}}}, "addons.grafana.values.adminPassword", "Secrets Manager"),
    ({"rancher": {"enabled": True}}, "addons.rancher.values.hostname", "required when rancher is enabled"),
    ({"longhorn": {"enabled": True, "version": "latest"}}, "addons.longhorn.version", "pinned chart version"),
    ({"longhorn": {"enabled": "yes"}}, "addons.longhorn.enabled", "bool"),
    ({"longhorn": {"enabled": True, "chart": "other"}}, "addons.longhorn.chart", "unknown key"),
    ({"istio": {"enabled": True}}, "addons.istio", "unknown key"),
    ({"vault": {"enabled": True, "repo": "http://insecure.example.com"}}, "addons.vault.repo", "https://"),
])
def test_bad_addon_settings_are_refused_with_the_field(env_document, settings, path, fragment):
    document = env_document("dev")
    document["addons"] = settings
    with pytest.raises(ConfigError) as caught:
        validate(document, "dev.yaml")
    problems = dict(caught.value.problems)
    assert path in problems, caught.value.problems
    assert fragment in problems[path]


# --- every add-on on ---------------------------------------------------------------

def test_every_addon_renders_cfn_lint_clean(everything, linter):
    env, rendering, folder, _ = everything
    assert set(addons.enabled(env)) == set(CATALOG)
    assert linter.lint_rendering(rendering, folder) == []


def test_every_addon_fits_in_the_user_data_limit(everything):
    env, _, _, templates = everything
    for stack_id, template in templates.items():
        if not any(r["Type"] == "AWS::EC2::LaunchTemplate" for r in template.get("Resources", {}).values()):
            continue
        worst = bootstrap.resolve(user_data_text(template), bootstrap.worst_case_values(env)).encode()
        assert len(worst) <= limits.MAX_USER_DATA_BYTES, stack_id


@pytest.mark.parametrize("stack_id", SERVER_STACKS)
def test_every_server_writes_every_helmchart_with_its_pinned_version(everything, stack_id):
    env, _, _, templates = everything
    charts = charts_of(templates[stack_id])
    assert set(charts) == {addons.chart_name(name) for name in CATALOG}
    for name, entry in CATALOG.items():
        spec = charts[addons.chart_name(name)]["spec"]
        pinned = env.addons.gatekeeper.version if name == "gatekeeper" else entry.version
        assert spec["version"] == pinned, name
        assert spec["chart"] == entry.chart and spec.get("repo") == entry.repo, name
        assert isinstance(yaml.safe_load(spec["valuesContent"]), dict), name
    assert charts["gatekeeper"]["spec"]["version"] == "3.20.1"  # the environment's override
    assert yaml.safe_load(charts["rancher"]["spec"]["valuesContent"])["hostname"] == "rancher.addons.example.com"


def test_agents_carry_no_manifests(everything):
    _, _, _, templates = everything
    for stack_id in (s for s in templates if s.startswith("AgentPool")):
        files = write_files(templates[stack_id])
        assert not any(path.startswith(bootstrap.MANIFESTS_DIR) for path in files), stack_id


def test_disabled_addons_are_absent(env_document):
    env = with_addons(env_document, vault={"enabled": True}, gatekeeper={"enabled": False})
    document = yaml.safe_load(bootstrap.cloud_config(env, roles.SERVER))
    (entry,) = [f for f in document["write_files"] if f["path"] == bootstrap.ADDONS_MANIFEST]
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(bootstrap.unpacked(entry)) if d]
    assert names == ["vault"]
    boot_env = document["write_files"][0]["content"]
    assert "PACKAGES=" not in boot_env and "ADDON_SECRETS=" not in boot_env


def test_secret_values_are_generated_in_secrets_manager_and_never_rendered(everything):
    env, rendering, _, templates = everything
    secrets = {k: r for k, r in templates["ClusterData"]["Resources"].items()
               if r["Type"] == "AWS::SecretsManager::Secret"}
    for spec in addons.secret_specs(env):
        secret = secrets[spec.logical_id]["Properties"]
        assert "GenerateSecretString" in secret and "SecretString" not in secret
        assert secret["KmsKeyId"] == {"Fn::GetAtt": ["ClusterKey", "Arn"]}
        assert templates["ClusterData"]["Outputs"][spec.output]["Value"] == {"Ref": spec.logical_id}
        # Wired by the root into the IAM stack and both server stacks, nowhere else.
        users = {s for s, r in templates["Root"]["Resources"].items()
                 if spec.output in r["Properties"].get("Parameters", {})}
        assert users == {"NodeIam", *SERVER_STACKS}
    assert {s.value_key for s in addons.secret_specs(env)} == {"bootstrapPassword", "adminPassword"}
    for stack_id in SERVER_STACKS:
        charts = charts_of(templates[stack_id])
        for spec in addons.secret_specs(env):
            spec_values = yaml.safe_load(charts[addons.chart_name(spec.addon)]["spec"]["valuesContent"])
            assert spec.value_key not in spec_values
            assert charts[addons.chart_name(spec.addon)]["spec"]["valuesSecrets"][0]["keys"] == [addons.VALUES_KEY]


def test_only_the_server_role_reads_the_addon_secrets(everything):
    env, _, _, templates = everything
    roles = {k: r for k, r in templates["NodeIam"]["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    server = {s["Sid"]: s for s in roles["ServerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]}
    assert server["ReadAddonSecrets"]["Action"] == ["secretsmanager:GetSecretValue"]
    assert server["ReadAddonSecrets"]["Resource"] == [{"Ref": s.output} for s in addons.secret_specs(env)]
    agent = json.dumps(roles["AgentRole"])
    assert not any(s.output in agent for s in addons.secret_specs(env))


def test_longhorn_packages_are_installed_on_every_node(everything):
    _, _, _, templates = everything
    for stack_id in (s for s in templates if s in SERVER_STACKS or s.startswith("AgentPool")):
        boot_env = write_files(templates[stack_id])[bootstrap.BOOT_ENV]["content"]
        assert "PACKAGES='iscsi-initiator-utils nfs-utils'" in boot_env, stack_id
        assert "SERVICES='iscsid'" in boot_env, stack_id


def test_rendering_is_deterministic_with_addons():
    env = load_environment(path=ALL_ADDONS)
    first, second = render(env), render(env)
    assert [s.body for s in first.stacks] == [s.body for s in second.stacks]


def test_graph_of_every_addon_names_every_stack_and_security_group_edge(everything):
    import subprocess
    import sys

    from test_graph import mermaid_edges, source_node

    _, _, _, templates = everything
    result = subprocess.run([sys.executable, "-m", "k3s_infra", "graph", "--config", str(ALL_ADDONS)],
                            cwd=ALL_ADDONS.parents[2], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for stack_id in templates["Root"]["Resources"]:
        assert f'subgraph {stack_id}["{stack_id} stack"]' in result.stdout
    assert "Draining" in templates["Root"]["Resources"]
    edges = mermaid_edges(result.stdout)
    for resource in templates["Security"]["Resources"].values():
        if resource["Type"] == "AWS::EC2::SecurityGroupIngress":
            p = resource["Properties"]
            assert (source_node(p), "Security_" + p["GroupId"]["Fn::GetAtt"][0]) in edges
