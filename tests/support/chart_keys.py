"""Chart value keys read in each chart's sources at its pinned version: the oracle for "every
value we set is a key the chart reads" (tests/unit/config/test_catalog.py,
tests/unit/bootstrap/test_k3s_config.py)."""

from __future__ import annotations

# Chart value keys (dotted paths; a key covers everything under it) read in each chart's
# values.yaml, or in its templates where values.yaml leaves the key out or commented, at the
# pinned version: checked in the chart's repository at the release tag named per row.
# rbac.serviceAccount.{create,name,annotations}: the chart README's values table ("Additional
# Service Account annotations"), seen at 9.38.0 and unchanged in the later values.yaml.
_AUTOSCALER_KEYS = {"autoDiscovery.clusterName", "awsRegion", "cloudProvider", "extraArgs", "nodeSelector",
                    "tolerations", "rbac.serviceAccount.name", "rbac.serviceAccount.annotations"}
VERIFIED_KEYS: dict[tuple[str, str], set[str]] = {
    # cert-manager/cert-manager deploy/charts/cert-manager/values.yaml @ tag v1.18.2
    ("cert_manager", "v1.18.2"): {"crds.enabled"},
    # rancher/rancher chart/values.yaml @ tag v2.12.1 (ed376a3); hostname is commented out
    # there and read by chart/templates (ingress.yaml, NOTES.txt).
    ("rancher", "2.12.1"): {"replicas", "ingress.tls.source", "auditLog.enabled", "auditLog.level", "hostname",
                            "bootstrapPassword"},
    # VictoriaMetrics/helm-charts charts/victoria-metrics-single/values.yaml @ tag
    # victoria-metrics-single-0.24.5 (appVersion v1.125.1)
    ("victoria_metrics", "0.24.5"): {"server.retentionPeriod", "server.persistentVolume.enabled",
                                     "server.persistentVolume.size", "server.scrape.enabled"},
    # VictoriaMetrics/helm-charts charts/victoria-logs-single/values.yaml @ tag
    # victoria-logs-single-0.11.8 (appVersion v1.33.0)
    ("victoria_logs", "0.11.8"): {"server.retentionPeriod", "server.persistentVolume.enabled",
                                  "server.persistentVolume.size"},
    # grafana/helm-charts charts/grafana/values.yaml @ tag grafana-9.3.1; adminPassword is
    # commented out there and read by templates/_config.tpl (grafana.secretsData).
    ("grafana", "9.3.1"): {"persistence.enabled", "persistence.size", "adminPassword", "datasources"},
    # grafana/alloy operations/helm/charts/alloy/values.yaml @ tag helm-chart/1.2.1 (the chart
    # is released from grafana/alloy; grafana/helm-charts has no charts/alloy).
    ("alloy", "1.2.1"): {"alloy.configMap.content", "alloy.mounts.varlog"},
    # longhorn/longhorn chart/values.yaml @ tag v1.9.1 (longhorn/charts has no v1.9 branch stored)
    ("longhorn", "1.9.1"): {"persistence.defaultClass", "persistence.defaultClassReplicaCount",
                            "defaultSettings.defaultDataPath", "defaultSettings.nodeDrainPolicy"},
    # hashicorp/vault-helm values.yaml @ tag v0.30.1
    ("vault", "0.30.1"): {"server.ha.enabled", "server.ha.replicas", "server.ha.raft.enabled",
                          "server.dataStorage.size", "injector.enabled"},
    # open-policy-agent/gatekeeper charts/gatekeeper/values.yaml @ tag v3.20.0
    ("gatekeeper", "3.20.0"): {"replicas", "auditInterval"},
    # aws/aws-node-termination-handler tag v1.25.2, config/helm/aws-node-termination-handler/values.yaml
    ("node_termination_handler", "0.27.2"): {
        "enableSqsTerminationDraining", "useProviderId", "checkTagBeforeDraining", "managedTag",
        "deleteSqsMsgIfNodeNotFound", "replicas", "nodeSelector", "tolerations", "awsRegion", "queueURL",
        "enableRebalanceDraining", "cordonOnly",
        # values.yaml `serviceAccount: {create: true, name:, annotations: {}}`, its comment naming
        # eks.amazonaws.com/role-arn (seen at chart 0.27.1 / NTH v1.25.1).
        "serviceAccount.name", "serviceAccount.annotations"},
    # kubernetes/autoscaler values.yaml and templates/deployment.yaml (hostNetwork, dnsPolicy,
    # extraArgs rendered as --<key>=<value>) @ tags cluster-autoscaler-chart-<version>, under
    # charts/cluster-autoscaler/ up to 9.51.0 and cluster-autoscaler/charts/cluster-autoscaler/ after.
    **{("cluster_autoscaler", v): _AUTOSCALER_KEYS for v in ("9.37.0", "9.44.0", "9.46.6", "9.51.0", "9.53.0",
                                                             "9.59.0")},
}
# kubernetes/cloud-provider-aws charts/aws-cloud-controller-manager/values.yaml @ tag
# helm-chart-aws-cloud-controller-manager-0.0.9; hostNetworking is not in values.yaml, only
# read by templates/daemonset.yaml (`if .Values.hostNetworking` -> hostNetwork: true).
CCM_VERIFIED_KEYS: dict[str, set[str]] = {
    "0.0.9": {"image.tag", "args", "hostNetworking", "nodeSelector", "tolerations"},
}


def key_paths(values: dict, prefix: str = "") -> set[str]:
    """Every dotted key path of a values mapping (a non-empty mapping is walked, anything else is a leaf)."""
    found = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        found |= key_paths(value, f"{path}.") if isinstance(value, dict) and value else {path}
    return found


def unverified(keys: set[str], verified: set[str]) -> set[str]:
    """The keys not covered by a verified key (equal to it, or under it)."""
    return {k for k in keys if not any(k == v or k.startswith(f"{v}.") for v in verified)}
