"""The add-on catalog (k3s_infra/config/catalog.py): every value the catalog sets is a key of
the chart at its pinned version (keys read in each chart's repository at the release tag,
tests/support/chart_keys.py), and the values make the add-on actually work: the node
termination handler finds nodes the way boot.sh names them (aws/aws-node-termination-handler
v1.25.2 pkg/monitor/sqsevent/sqs-monitor.go, pkg/node/node.go), Rancher's audit log is
enabled, not only levelled (rancher/rancher chart/values.yaml), Alloy ships only its own
node's pods' logs (grafana/alloy helm-chart/1.2.1). Expected values come from those sources,
never from the constants the code uses.
"""

from __future__ import annotations

import re

import pytest
import yaml

from k3s_infra import bootstrap
from k3s_infra.config import defaults, load_environment
from k3s_infra.config.catalog import CATALOG, CLUSTER_AUTOSCALER_CHARTS
from k3s_infra.model import addons
from tests.support.addons import nth_values as _nth_values
from tests.support.addons import with_addons
from tests.support.chart_keys import (
    CCM_VERIFIED_KEYS,
    VERIFIED_KEYS,
)
from tests.support.chart_keys import (
    key_paths as _paths,
)
from tests.support.chart_keys import (
    unverified as _unverified,
)
from tests.support.oracle_helpers import ALL_ADDONS


def test_the_termination_handler_finds_nodes_the_way_the_boot_names_them():
    """boot.sh names nodes by instance ID and sets provider-id aws:///<zone>/<instance-id>; NTH
    v1.25.2 looks nodes up by private DNS name unless useProviderId, and then builds
    fmt.Sprintf("aws:///%s/%s", AvailabilityZone, instanceID) (pkg/monitor/sqsevent/sqs-monitor.go)
    and compares it with Node.spec.providerID (pkg/node/node.go)."""
    script = bootstrap.boot_script()
    assert re.search(r"^node-name: \$instance_id$", script, re.M)
    (provider_id,) = re.findall(r"provider-id=(\S+)", script)
    nth_format = "aws:///%s/%s" % ("$zone", "$instance_id")
    assert provider_id == nth_format
    env = load_environment("prod")
    assert env.draining
    values = _nth_values(env)
    assert values["useProviderId"] is True and values["enableSqsTerminationDraining"] is True
    # IMDS-mode switches do nothing in queue mode (values.yaml "Only used in IMDS mode").
    assert not {"enableRebalanceMonitoring", "enableScheduledEventDraining"} & set(values)


def test_rancher_audit_log_is_enabled_not_only_levelled(env_document):
    """rancher/rancher chart/values.yaml: auditLog.enabled (default false) gates the audit
    sidecar and AUDIT_LEVEL; level alone records nothing."""
    env = with_addons(env_document, "dev", rancher={"enabled": True, "values": {"hostname": "r.example.com"}})
    values = addons.values(env, "rancher")
    assert values["auditLog"]["enabled"] is True and values["auditLog"]["level"] >= 1


def test_alloy_ships_only_its_own_nodes_pod_logs(env_document):
    """The chart runs Alloy as a DaemonSet with HOSTNAME = spec.nodeName (grafana/alloy
    operations/helm/charts/alloy/values.yaml controller.type and
    templates/containers/_agent.yaml @ helm-chart/1.2.1); discovery must select that node's
    pods (grafana/alloy docs/sources/reference/components/discovery/discovery.kubernetes.md @ v1.10.1,
    "Pods on the same node"), or every node ships every pod's logs."""
    env = with_addons(env_document, "dev", alloy={"enabled": True})
    values = addons.values(env, "alloy")
    assert values.get("controller", {}).get("type", "daemonset") == "daemonset"
    content = values["alloy"]["configMap"]["content"]
    discovery = re.search(r'discovery\.kubernetes "pods" \{(.*?)\n\}', content, re.S).group(1)
    selectors = re.search(r"selectors \{(.*?)\}", discovery, re.S).group(1)
    assert re.search(r'role\s*=\s*"pod"', selectors)
    assert re.search(r'field\s*=\s*"spec\.nodeName="\s*\+\s*sys\.env\("HOSTNAME"\)', selectors)
    assert "loki.source.kubernetes" in content  # reads logs through the API, no node files
    assert not values["alloy"].get("mounts", {}).get("varlog")


# --- chart value keys, verified at each pinned version ----------------------------------

def test_every_pinned_chart_version_has_verified_keys():
    """A version bump must come with its keys re-read at the new version."""
    pinned = {(name, entry.version) for name, entry in CATALOG.items()}
    pinned |= {("cluster_autoscaler", v) for v in CLUSTER_AUTOSCALER_CHARTS.values()}
    assert pinned - set(VERIFIED_KEYS) == set()
    assert defaults.CCM_CHART_VERSION in CCM_VERIFIED_KEYS


@pytest.mark.parametrize("name,version", sorted(VERIFIED_KEYS))
def test_catalog_values_are_keys_of_that_chart_version(name, version):
    """Every key the rendered HelmChart sets (valuesContent as rendered for an environment
    with every add-on on, valuesSecrets keys, deploy-time and required keys) is a key of the
    chart at that version."""
    entry = CATALOG[name]
    env = load_environment(path=ALL_ADDONS)
    (chart,) = [c for c in addons.charts(env) if c["metadata"]["name"] == addons.chart_name(name)]
    keys = _paths(yaml.safe_load(chart["spec"]["valuesContent"]))
    keys |= set(entry.secret_values) | set(entry.runtime_values) | set(entry.required_values)
    assert _unverified(keys, VERIFIED_KEYS[(name, version)]) == set(), name
