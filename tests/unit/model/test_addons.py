"""Add-ons as HelmCharts (k3s_infra/model/addons.py): off unless asked for (the cluster
autoscaler on by default where a pool can grow), one line enables an add-on with the
catalog's defaults, version, repository and values override the catalog, an add-on brings
what it requires, every server writes every chart at its pinned version, and what an add-on
needs on the nodes follows it: Longhorn's packages and iscsi_tcp (https://longhorn.io/docs/1.9.1/deploy/install/)
with K3s's local-path class no longer the default (https://docs.k3s.io/installation/packaged-components),
rebalance draining only when asked (aws-node-termination-handler v1.25.2
pkg/interruptionevent/draincordon/handler.go), the autoscaler's chart pinned per Kubernetes
minor and run on the servers with auto-discovery (the chart's values.yaml at 9.51.0), the
node termination handler's queue URL given at boot, and a user's own secret read at boot.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from k3s_infra import bootstrap
from k3s_infra.bootstrap import bundle
from k3s_infra.config import read_document, validate
from k3s_infra.config.catalog import CATALOG, NTH_MANAGED_TAG
from k3s_infra.model import addons, roles

from tests.support.addons import charts_of, nth_values as _nth_values, with_addons, write_files
from tests.support.autoscaler import CONTROL_PLANE, PREFIX, SCALING, cluster_of, groups, server_chart
from tests.support.iam_policies import allow_statements, as_list
from tests.support.oracle_helpers import bundle_files, user_data_sub as _user_data
from tests.support.rendering import rendered_templates
from tests.support.published import addons_manifest, publish


SERVER_STACKS = ("ServerInit", "Servers")

NODE_STACK = re.compile(r"^(ServerInit|Servers|AgentPool.*)$")

ROOT = Path(__file__).resolve().parents[3]


def _server_config(templates: dict, stack_id: str = "ServerInit") -> dict:
    return yaml.safe_load(write_files(templates[stack_id])[bootstrap.K3S_CONFIG]["content"])


USER_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/grafana-admin-AbC123"


# --- switched on and off ------------------------------------------------------------

def test_addons_are_off_unless_asked_for(env_document):
    document = env_document("dev")
    for pool in document["agent_pools"]:  # pools that can grow switch the autoscaler on (config/test_model.py)
        pool["min_size"] = pool["max_size"] = pool["desired"]
    env = validate(document, "dev.yaml")
    assert addons.enabled(env) == []
    assert addons.bundle(env) == ""
    assert bundle.addons_object(env) is None
    assert "ADDONS_KEY" not in bundle.unpack(bundle.value(env, roles.SERVER_INIT))[bundle.BUNDLE_ENV]


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


def test_disabled_addons_are_absent(env_document):
    env = with_addons(env_document, vault={"enabled": True}, gatekeeper={"enabled": False})
    document = yaml.safe_load(bootstrap.cloud_config(env, roles.SERVER))
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(bundle.addons_object(env).body) if d]
    assert names == ["vault"]
    boot_env = document["write_files"][0]["content"]
    assert "PACKAGES=" not in boot_env and "ADDON_SECRETS=" not in boot_env


def test_explicit_enable_on_fixed_pools(env_document):
    document = env_document("dev")
    document["agent_pools"][0].update(min_size=2, desired=2, max_size=2)
    document["addons"] = {"cluster_autoscaler": {"enabled": True}}
    assert "cluster_autoscaler" in addons.enabled(validate(document, "dev.yaml"))


def test_enabled_false_removes_chart_tags_and_permissions(env_document):
    from k3s_infra.render import render

    document = env_document("prod")
    document["addons"] = {"cluster_autoscaler": {"enabled": False}}
    env = validate(document, "prod.yaml")
    assert "cluster_autoscaler" not in addons.enabled(env)
    templates = {s.stack_id: yaml.safe_load(s.body) for s in render(env).stacks}
    for stack_id, template in templates.items():
        for group in groups(template):
            assert not [t for t in group["Tags"] if t["Key"].startswith(PREFIX)], stack_id
    actions = {a for _, _, s in allow_statements(templates) for a in as_list(s["Action"])}
    assert not actions & SCALING


# --- charts at their pinned versions --------------------------------------------------

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


@pytest.mark.parametrize("k3s_version, chart", [("v1.33.5+k3s1", "9.51.0"), ("v1.32.3+k3s1", "9.46.6")])
def test_chart_version_matches_the_kubernetes_minor(env_document, k3s_version, chart):
    document = env_document("dev")
    document["k3s"]["version"] = k3s_version
    (spec,) = [c["spec"] for c in addons.charts(validate(document, "dev.yaml"))
               if c["metadata"]["name"] == "cluster-autoscaler"]
    assert spec["version"] == chart


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_chart_runs_on_the_servers_with_auto_discovery_and_its_own_role(rendered, name):
    document = read_document(ROOT / "environments" / f"{name}.yaml")
    chart = server_chart(rendered[name])
    assert chart["spec"]["repo"] == "https://kubernetes.github.io/autoscaler"
    assert chart["spec"]["chart"] == "cluster-autoscaler" and chart["spec"]["version"] == "9.51.0"
    values = yaml.safe_load(chart["spec"]["valuesContent"])
    assert values["cloudProvider"] == "aws"
    assert values["autoDiscovery"]["clusterName"] == cluster_of(document)
    assert values["awsRegion"] == document["region"]
    # The pod network (IMDS out of reach at hop limit 1) and its own role, by the annotation the
    # pod identity webhook reads (eks.amazonaws.com/role-arn, its README): the role the Identity
    # stack names for kube-system/cluster-autoscaler, in the environment's account.
    assert "hostNetwork" not in values
    account = values["rbac"]["serviceAccount"]
    assert account["name"] == "cluster-autoscaler"
    arn = account["annotations"]["eks.amazonaws.com/role-arn"]
    identity = rendered[name].templates["Identity"]["Resources"]
    (role,) = [r["Properties"] for r in identity.values() if r["Type"] == "AWS::IAM::Role"
               and "system:serviceaccount:kube-system:cluster-autoscaler" in r["Properties"]["AssumeRolePolicyDocument"]["Fn::Sub"][0]]
    assert arn == f"arn:aws:iam::{document['account_id']}:role{role['Path']}{role['RoleName']}"
    assert values["nodeSelector"] == {CONTROL_PLANE: "true"}
    assert {"key": CONTROL_PLANE, "operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]
    args = values["extraArgs"]
    assert args["expander"] == "least-waste" and args["balance-similar-node-groups"] is True
    assert args["skip-nodes-with-system-pods"] is False
    assert {"scale-down-unneeded-time", "scale-down-delay-after-add"} <= set(args)
    assert charts_of(rendered[name].templates["Servers"])["cluster-autoscaler"] == chart


def test_the_handler_chart_runs_on_servers_and_gets_its_queue_at_boot(rendered):
    r = rendered["prod"]
    (chart,) = [c for c in addons.charts(r.env) if c["metadata"]["name"] == "node-termination-handler"]
    values = yaml.safe_load(chart["spec"]["valuesContent"])
    assert values["enableSqsTerminationDraining"] is True
    assert values["nodeSelector"] == {"node-role.kubernetes.io/control-plane": "true"}
    assert values["awsRegion"] == r.env.region and values["managedTag"] == NTH_MANAGED_TAG
    assert "queueURL" not in values  # a deploy-time value: a Secret written at boot
    (boot_value,) = [v for v in addons.boot_values(r.env) if v.addon == "node_termination_handler"]
    assert chart["spec"]["valuesSecrets"] == [{"name": boot_value.kubernetes_secret, "keys": ["values.yaml"]}]
    for stack_id in ("ServerInit", "Servers"):
        wired = r.templates["Root"]["Resources"][stack_id]["Properties"]["Parameters"]["DrainQueueUrl"]
        assert wired == {"Fn::GetAtt": ["Draining", "Outputs.DrainQueueUrl"]}
    for stack_id in (s for s in r.templates if s.startswith("AgentPool")):
        assert "DrainQueueUrl" not in r.templates[stack_id]["Parameters"]


# --- what an add-on needs on the nodes -------------------------------------------------

def test_longhorn_packages_are_installed_on_every_node(everything):
    _, _, _, templates = everything
    for stack_id in (s for s in templates if s in SERVER_STACKS or s.startswith("AgentPool")):
        boot_env = write_files(templates[stack_id])[bootstrap.BOOT_ENV]["content"]
        assert "PACKAGES='iscsi-initiator-utils nfs-utils'" in boot_env, stack_id
        assert "SERVICES='iscsid'" in boot_env, stack_id


def test_longhorn_loads_iscsi_tcp_and_leaves_one_default_storage_class(env_document):
    """Longhorn needs iscsi_tcp loaded (https://longhorn.io/docs/1.9.1/deploy/install/); K3s's
    local-path class is a default class until `disable: local-storage`
    (https://docs.k3s.io/installation/packaged-components)."""
    from tests.support.oracle_helpers import user_data_text

    on = rendered_templates(with_addons(env_document, "dev", longhorn={"enabled": True}))
    for stack_id in (s for s in on if NODE_STACK.match(s)):
        document = yaml.safe_load(user_data_text(on[stack_id]))
        assert ["modprobe", "iscsi_tcp"] in document["bootcmd"], stack_id
        (modules,) = [f for f in document["write_files"] if f["path"].startswith("/etc/modules-load.d/")]
        assert modules["content"].split() == ["iscsi_tcp"]
    assert "local-storage" in _server_config(on)["disable"]
    assert "local-storage" in _server_config(on, "Servers")["disable"]  # identical on every server
    off = rendered_templates(with_addons(env_document, "dev"))
    assert "local-storage" not in _server_config(off)["disable"]
    assert "bootcmd" not in yaml.safe_load(user_data_text(off["ServerInit"]))
    kept = rendered_templates(with_addons(env_document, "dev", longhorn={
        "enabled": True, "values": {"persistence": {"defaultClass": False}}}))
    assert "local-storage" not in _server_config(kept)["disable"]


def test_rebalance_recommendations_drain_only_when_asked(env_document):
    """Queue-mode NTH cordons only if cordonOnly, which covers every event; otherwise it drains
    what it receives (v1.25.2 pkg/interruptionevent/draincordon/handler.go). Rebalance events
    therefore reach the queue only when enableRebalanceDraining is set."""
    def rules(env):
        return {k for k, v in rendered_templates(env)["Draining"]["Resources"].items()
                if v["Type"] == "AWS::Events::Rule"}

    default = with_addons(env_document, "prod")
    asked = with_addons(env_document, "prod", node_termination_handler={"values": {"enableRebalanceDraining": True}})
    assert "RebalanceRule" not in rules(default) and "RebalanceRule" in rules(asked)
    assert _nth_values(default).get("cordonOnly") is not True  # terminations must drain


def test_users_own_secret_is_read_at_boot_and_granted_exactly(env_document):
    import yaml

    from k3s_infra import bootstrap
    from k3s_infra.config import validate
    from k3s_infra.render import render

    document = env_document("dev")
    document["addons"] = {"grafana": {"enabled": True, "secret_values": {"adminPassword": USER_ARN}}}
    rendering = render(validate(document, "dev.yaml"))
    publish(rendering.env)  # the add-ons' object a deploy uploads
    templates = {s.stack_id: yaml.safe_load(s.body) for s in rendering.stacks}
    # No generated secret for the value the user supplies.
    assert not [r for r in templates["ClusterData"]["Resources"].values()
                if r["Type"] == "AWS::SecretsManager::Secret" and "grafana" in r["Properties"]["Name"]]
    # The servers' role may read exactly that ARN.
    role = next(r for r in templates["NodeIam"]["Resources"].values()
                if r["Type"] == "AWS::IAM::Role" and "server" in str(r).lower())
    statements = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]
                  if s.get("Sid") == "ReadAddonSecrets"]
    assert statements and USER_ARN in statements[0]["Resource"]
    assert all(s["Resource"] != "*" for s in statements)
    # The boot reads it into the chart's values Secret (boot.env ADDON_SECRETS: name=key=arn).
    text, variables = _user_data(templates["ServerInit"])
    expanded = bootstrap.resolve(text, {name: f"<{name}>" for name in variables})
    files = {f["path"]: bootstrap.unpacked(f) for f in yaml.safe_load(expanded)["write_files"]}
    assert f"=adminPassword={USER_ARN}" in files[bootstrap.BOOT_ENV]
    charts = addons_manifest(templates["ServerInit"])
    grafana = next(d for d in yaml.safe_load_all(charts) if d["metadata"]["name"] == "grafana")
    assert any("admin-password" in v["name"] for v in grafana["spec"]["valuesSecrets"])
