"""Independent oracles: expected values come from the environment files (plain YAML,
tests/support/oracle_helpers.py), from K3s/AWS documentation or from a fixed table in this
file, never from the helper that produced the value under test. Every node's config.yaml
carries the file's cluster network, taints and snapshot settings; child TemplateURLs carry
the hash of the bytes written and change exactly when those bytes do; every chart a server
installs has reviewed coordinates.
"""

from __future__ import annotations

import hashlib
import re

import pytest
import yaml

from k3s_infra.config import load_environment, validate
from k3s_infra.render import render, write

from tests.support.fixture_scope import shared
from tests.support.published import addons_manifest, publish
from tests.support.oracle_helpers import (
    DEPLOYABLE,
    K3S_DOCUMENTED_DEFAULTS,
    node_files,
    node_stack_ids,
    plain_document,
    written_files,
)


K3S_CONFIG = "/etc/rancher/k3s/config.yaml"

SERVER_STACKS = ("ServerInit", "Servers")


def _render_to_disk(env, folder) -> dict[str, bytes]:
    """file name -> bytes as written; the rendering is read back only from disk."""
    out = write(render(env), folder)
    return {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".yaml"}


def _templates(files: dict[str, bytes]) -> dict[str, dict]:
    return {name: yaml.safe_load(body) for name, body in files.items()}


@pytest.fixture(scope=shared("module"), params=DEPLOYABLE, ids=lambda p: p.stem)
def environment_file(request, tmp_path_factory):
    path = request.param
    files = _render_to_disk(load_environment(path=path), tmp_path_factory.mktemp(path.stem))
    return plain_document(path), _templates(files)


def _node_configs(templates: dict[str, dict]) -> dict[str, dict]:
    return {name: yaml.safe_load(written_files(t)[K3S_CONFIG]) for name, t in templates.items()
            if name != "root.yaml" and node_stack_ids({name: t})}


def test_every_node_config_has_the_environment_files_cluster_network(environment_file):
    """K3s requires cluster-cidr, service-cidr, cluster-dns and cluster-domain identical on every
    server (https://docs.k3s.io/cli/server: "must be the same on all servers" is why the
    design renders them once); values from the file, else K3s's documented defaults."""
    document, templates = environment_file
    k3s = document.get("k3s", {})
    expected = {key: k3s.get(key, default) for key, default in K3S_DOCUMENTED_DEFAULTS.items()}
    servers = {name: cfg for name, cfg in _node_configs(templates).items()
               if name.startswith(("server-init", "servers"))}
    assert len(servers) == 2
    for name, cfg in servers.items():
        got = {key: cfg.get(key.replace("_", "-")) for key in K3S_DOCUMENTED_DEFAULTS}
        assert got == expected, name
        assert cfg["flannel-backend"] == k3s.get("flannel_backend", "vxlan"), name
        # One default StorageClass (docs.k3s.io/storage): Longhorn's chart makes its class the
        # default (longhorn values.yaml persistence.defaultClass: true) unless the file says not,
        # and then K3s's local-path provisioner (local-storage) is disabled.
        longhorn = document.get("addons", {}).get("longhorn", {})
        longhorn_default = longhorn.get("enabled") and \
            longhorn.get("values", {}).get("persistence", {}).get("defaultClass", True)
        expected_disable = set(k3s["disable"]) | ({"local-storage"} if longhorn_default else set())
        assert set(cfg["disable"]) == expected_disable, name
        assert cfg["secrets-encryption"] is k3s["secrets_encryption"], name


def test_custom_cluster_network_reaches_the_node_config_unswapped(tmp_path):
    """Distinct, non-default values for each field: a swap of pod and service CIDRs (or DNS
    taken from the wrong field) shows. The document is plain YAML; only validation and
    rendering run through the product."""
    document = plain_document(next(p for p in DEPLOYABLE if p.stem == "dev"))
    custom = {"cluster_cidr": "172.20.0.0/16", "service_cidr": "172.21.0.0/20",
              "cluster_dns": "172.21.0.53", "cluster_domain": "k3s.example.internal"}
    document["k3s"] = {**document.get("k3s", {}), **custom}
    templates = _templates(_render_to_disk(validate(document, "custom.yaml"), tmp_path / "custom"))
    configs = _node_configs(templates)
    for name in ("server-init.yaml", "servers.yaml"):
        cfg = configs[name]
        assert (cfg["cluster-cidr"], cfg["service-cidr"], cfg["cluster-dns"], cfg["cluster-domain"]) == (
            "172.20.0.0/16", "172.21.0.0/20", "172.21.0.53", "k3s.example.internal"), name


def test_server_taint_and_snapshot_settings_follow_the_file(environment_file):
    """etcd-snapshot-* flag names from https://docs.k3s.io/cli/etcd-snapshot; the S3 region
    is set explicitly because K3s's S3 client otherwise assumes us-east-1 (k3s flag
    etcd-s3-region, default us-east-1: https://docs.k3s.io/cli/etcd-snapshot)."""
    document, templates = environment_file
    snapshots = document["k3s"]["etcd_snapshots"]
    for name, cfg in _node_configs(templates).items():
        if not name.startswith(("server-init", "servers")):
            assert "etcd-s3" not in cfg and "cluster-init" not in cfg, name  # agents
            continue
        taints = cfg.get("node-taint", [])
        assert ("node-role.kubernetes.io/control-plane:NoSchedule" in taints) is document["k3s"]["server_taint"]
        assert cfg["etcd-snapshot-schedule-cron"] == snapshots["schedule"]
        assert cfg["etcd-snapshot-retention"] == snapshots["retention"]
        # S3 retention is its own flag since K3s v1.33.4 and defaults to 5, not the local value.
        assert cfg["etcd-s3-retention"] == snapshots["retention"]
        assert cfg["etcd-s3"] is True and cfg["etcd-s3-region"] == document["region"]
        assert cfg["write-kubeconfig-mode"] == "0600"
        assert ("cluster-init" in cfg) is name.startswith("server-init")


def test_agent_config_has_its_pools_labels_and_taints(environment_file):
    document, templates = environment_file
    configs = _node_configs(templates)
    for pool in document["agent_pools"]:
        cfg = configs[f"agent-pool-{pool['name']}.yaml"]
        labels = sorted(f"{k}={v}" for k, v in pool.get("labels", {}).items())
        assert sorted(cfg.get("node-label", [])) == labels
        assert cfg.get("node-taint", []) == pool.get("taints", [])
        assert cfg["server"].startswith("https://") and cfg["server"].endswith(":6443")
        assert "kubelet-arg" in cfg and "cloud-provider=external" in cfg["kubelet-arg"]


def _child_urls(templates: dict[str, dict], root: str = "root.yaml") -> dict[str, str]:
    """child file name -> its TemplateURL in the root."""
    stacks = [r for r in templates[root]["Resources"].values() if r["Type"] == "AWS::CloudFormation::Stack"]
    return {s["Properties"]["TemplateURL"].rsplit("/", 1)[1]: s["Properties"]["TemplateURL"] for s in stacks}


def test_child_url_carries_the_hash_of_the_bytes_written(environment_file, tmp_path):
    """CDK's nested stacks name the asset by the template's hash (aws-cdk core/lib/nested-stack.ts):
    the URL must change whenever the uploaded bytes do, so CloudFormation sees the update."""
    document, _ = environment_file
    env = validate(document, "plain.yaml")
    files = _render_to_disk(env, tmp_path / "h")
    urls = _child_urls(_templates(files))
    # The two roots (an update's and a first create's) are not children.
    assert urls and set(urls) == set(files) - {"root.yaml", "root-create.yaml"}
    assert _child_urls(_templates(files), "root-create.yaml") == urls
    for name, url in urls.items():
        digest = hashlib.sha256(files[name]).hexdigest()
        assert re.search(rf"/{digest[:16]}[0-9a-f]*/", url), (name, url)


@pytest.mark.parametrize("change, affected", [
    # One agent pool's instance type: only that pool's template bytes change.
    (lambda d: d["agent_pools"][0].update(instance_types=["t3.medium"]), {"agent-pool-general.yaml"}),
    # The server instance type: both server stacks, nothing else.
    (lambda d: d["servers"].update(instance_type="t3.large"), {"server-init.yaml", "servers.yaml"}),
    # A K3s setting every node carries: all node stacks.
    (lambda d: d["k3s"].update(version="v1.33.4+k3s1"),
     {"server-init.yaml", "servers.yaml", "agent-pool-general.yaml"}),
])
def test_a_child_url_changes_exactly_when_its_bytes_change(tmp_path, change, affected):
    document = plain_document(next(p for p in DEPLOYABLE if p.stem == "dev"))
    before = _render_to_disk(validate(document, "dev.yaml"), tmp_path / "before")
    change(document)
    after = _render_to_disk(validate(document, "dev.yaml"), tmp_path / "after")
    changed_bytes = {n for n in before if n not in ("root.yaml", "root-create.yaml") and before[n] != after[n]}
    assert changed_bytes == affected
    urls_before, urls_after = _child_urls(_templates(before)), _child_urls(_templates(after))
    changed_urls = {n for n in urls_before if urls_before[n] != urls_after[n]}
    assert changed_urls == changed_bytes


# (repo URL, chart, version): reviewed against each project's published Helm repository.
# A change here is a deliberate bump, reviewed like any dependency update.
KNOWN_GOOD_CHARTS = {
    "cert-manager": ("https://charts.jetstack.io", "cert-manager", "v1.18.2"),
    "rancher": ("https://releases.rancher.com/server-charts/stable", "rancher", "2.12.1"),
    "victoria-metrics": ("https://victoriametrics.github.io/helm-charts", "victoria-metrics-single", "0.24.5"),
    "victoria-logs": ("https://victoriametrics.github.io/helm-charts", "victoria-logs-single", "0.11.8"),
    "grafana": ("https://grafana.github.io/helm-charts", "grafana", "9.3.1"),
    "alloy": ("https://grafana.github.io/helm-charts", "alloy", "1.2.1"),
    "longhorn": ("https://charts.longhorn.io", "longhorn", "1.9.1"),
    "vault": ("https://helm.releases.hashicorp.com", "vault", "0.30.1"),
    # No classic repository: the chart is an OCI artifact (aws-node-termination-handler README).
    "node-termination-handler": (None, "oci://public.ecr.aws/aws-ec2/helm/aws-node-termination-handler", "0.27.2"),
    # kubernetes/autoscaler tag cluster-autoscaler-chart-9.51.0: Chart.yaml appVersion 1.33.0,
    # the autoscaler built for K3s v1.33 (the autoscaler supports only its own minor).
    "cluster-autoscaler": ("https://kubernetes.github.io/autoscaler", "cluster-autoscaler", "9.51.0"),
}


# tests/environments/all-addons.yaml pins gatekeeper itself; the file is the oracle for it.
FILE_PINNED = {"gatekeeper": ("https://open-policy-agent.github.io/gatekeeper/charts", "gatekeeper", "3.20.1")}


# https://github.com/kubernetes/cloud-provider-aws charts/aws-cloud-controller-manager
CCM_CHART = ("https://kubernetes.github.io/cloud-provider-aws", "aws-cloud-controller-manager", "0.0.9")


def _charts(templates: dict[str, dict], stack_file: str) -> dict[str, dict]:
    charts = {}
    # Servers get their own manifests in their bundle, the add-ons' in the object the bundle
    # names (k3s_infra/bootstrap/bundle.py).
    files = dict(node_files(templates[stack_file]))
    files["addons"] = addons_manifest(templates[stack_file]) or ""
    for path, text in files.items():
        if path.startswith("/var/lib/rancher/k3s/server/manifests/") or path == "addons":
            for doc in yaml.safe_load_all(text):
                if doc and doc.get("kind") == "HelmChart":
                    charts[doc["metadata"]["name"]] = doc["spec"]
    return charts


def test_every_chart_a_server_installs_has_reviewed_coordinates(tmp_path):
    path = next(p for p in DEPLOYABLE if p.stem == "all-addons")
    env = load_environment(path=path)
    publish(env)  # the add-ons' object a deploy uploads
    templates = _templates(_render_to_disk(env, tmp_path / "all"))
    expected = {**KNOWN_GOOD_CHARTS, **FILE_PINNED, "aws-cloud-controller-manager": CCM_CHART}
    for stack_file in ("server-init.yaml", "servers.yaml"):
        charts = _charts(templates, stack_file)
        assert set(charts) == set(expected)
        for name, spec in charts.items():
            assert (spec.get("repo"), spec["chart"], spec["version"]) == expected[name], name
