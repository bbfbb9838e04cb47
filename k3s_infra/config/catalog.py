"""The cluster add-ons k3s-infra knows, as data: chart, pinned version, target
namespace and default values. An environment's ``addons:`` section switches
each one on and may override its version, repository and values; everything
else comes from here.

Pinned versions are reviewed choices (chart releases current when they were
picked, compatible with the default K3s minor): bump them here, in one place.
Values that are secrets are never here nor in an environment file: each entry
names the value keys filled at boot from a Secrets Manager secret (see
``secret_values``), which K3s's helm controller merges through the HelmChart's
``valuesSecrets``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CatalogEntry:
    chart: str  # chart name in ``repo``, or an oci:// reference when repo is None
    repo: str | None
    version: str
    namespace: str
    description: str
    values: dict[str, Any] = field(default_factory=dict)
    # Top-level value key -> what the generated secret is, e.g. {"bootstrapPassword": "..."}.
    secret_values: dict[str, str] = field(default_factory=dict)
    # Top-level value key -> a value known only at deploy time, by its name in
    # model.addons.RUNTIME_PARAMETERS (e.g. the drain queue's URL).
    runtime_values: dict[str, str] = field(default_factory=dict)
    requires: tuple[str, ...] = ()  # other add-ons switched on with this one
    packages: tuple[str, ...] = ()  # node packages (Amazon Linux 2023 dnf names), every node
    services: tuple[str, ...] = ()  # systemd units enabled after the packages are installed
    required_values: tuple[str, ...] = ()  # top-level keys the environment must give
    # Calls AWS: its pods run as this service account (namespace/name), which gets an IAM role
    # of its own through the cluster's OIDC issuer (model/workload_identity.py); no node role
    # carries its permissions and no pod reaches a node's (IMDS hop limit 1 everywhere).
    service_account: str | None = None
    # Where the chart's values configure that service account ({name, annotations} below it).
    service_account_values: tuple[str, ...] = ()
    kernel_modules: tuple[str, ...] = ()  # loaded at every boot on every node (cloud-init)
    # The pinned chart's Chart.yaml kubeVersion, verbatim (None: the chart states none): Helm
    # refuses to install it on another Kubernetes version, so config refuses the pair first.
    kube_version: str | None = None


# The ASG/instance tag the handler acts on (its managedTag).
NTH_MANAGED_TAG = "aws-node-termination-handler/managed"

_CONTROL_PLANE = {
    "nodeSelector": {"node-role.kubernetes.io/control-plane": "true"},
    "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                     "effect": "NoSchedule"}],
}

# Keys are the config names under ``addons:`` (underscores); the HelmChart name is the
# same with dashes.
CATALOG: dict[str, CatalogEntry] = {
    "cert_manager": CatalogEntry(
        chart="cert-manager", repo="https://charts.jetstack.io", version="v1.18.2", namespace="cert-manager",
        # cert-manager deploy/charts/cert-manager/Chart.template.yaml @ v1.18.2
        kube_version=">= 1.22.0-0",
        description="certificates for Rancher and other ingresses",
        values={"crds": {"enabled": True}}),
    "rancher": CatalogEntry(
        chart="rancher", repo="https://releases.rancher.com/server-charts/stable", version="2.12.1",
        namespace="cattle-system",
        # rancher/rancher chart/Chart.yaml @ v2.12.1: Rancher 2.12 runs on Kubernetes up to 1.33.
        kube_version="< 1.34.0-0",
        description="access management; identity providers are configured in Rancher after install",
        # auditLog.level alone logs nothing: the chart only adds the audit sidecar and
        # AUDIT_LEVEL when auditLog.enabled (rancher/rancher chart/templates/deployment.yaml @ v2.12.1).
        values={"replicas": 3, "ingress": {"tls": {"source": "rancher"}},
                "auditLog": {"enabled": True, "level": 1}},
        secret_values={"bootstrapPassword": "first admin login to Rancher (change it at first login)"},
        requires=("cert_manager",), required_values=("hostname",)),
    "victoria_metrics": CatalogEntry(
        chart="victoria-metrics-single", repo="https://victoriametrics.github.io/helm-charts",
        version="0.24.5", namespace="monitoring",
        # VictoriaMetrics/helm-charts charts/victoria-metrics-single/Chart.yaml @ victoria-metrics-single-0.24.5
        kube_version=">=1.25.0-0",
        description="metrics store, scraping the cluster itself",
        values={"server": {"retentionPeriod": "30d",
                           "persistentVolume": {"enabled": True, "size": "50Gi"},
                           "scrape": {"enabled": True}}}),
    "victoria_logs": CatalogEntry(
        chart="victoria-logs-single", repo="https://victoriametrics.github.io/helm-charts",
        version="0.11.8", namespace="monitoring",
        # VictoriaMetrics/helm-charts charts/victoria-logs-single/Chart.yaml @ victoria-logs-single-0.11.8
        kube_version=">=1.25.0-0",
        description="log store; accepts the Loki push API Alloy ships to",
        values={"server": {"retentionPeriod": "14d",
                           "persistentVolume": {"enabled": True, "size": "50Gi"}}}),
    "grafana": CatalogEntry(
        chart="grafana", repo="https://grafana.github.io/helm-charts", version="9.3.1", namespace="monitoring",
        kube_version="^1.8.0-0",  # grafana/helm-charts charts/grafana/Chart.yaml @ grafana-9.3.1
        description="dashboards over VictoriaMetrics",
        values={"persistence": {"enabled": True, "size": "10Gi"},
                "datasources": {"datasources.yaml": {"apiVersion": 1, "datasources": [{
                    "name": "VictoriaMetrics", "type": "prometheus", "isDefault": True, "access": "proxy",
                    "url": "http://victoria-metrics-victoria-metrics-single-server.monitoring.svc:8428"}]}}},
        secret_values={"adminPassword": "Grafana admin password"},
        requires=("victoria_metrics",)),
    # Grafana Alloy succeeds Promtail (its chart, grafana/alloy operations/helm/charts/alloy/Chart.yaml @
# helm-chart/1.2.1, states no kubeVersion; nor does gatekeeper's charts/gatekeeper/Chart.yaml @ v3.20.0) (end of life in 2026) as the log shipper.
    "alloy": CatalogEntry(
        chart="alloy", repo="https://grafana.github.io/helm-charts", version="1.2.1", namespace="monitoring",
        description="log shipper (Promtail's successor): pod logs to VictoriaLogs",
        # The chart runs Alloy as a DaemonSet (controller.type) with HOSTNAME set to the
        # node name (grafana/alloy operations/helm/charts/alloy/values.yaml and
        # templates/containers/_agent.yaml @ helm-chart/1.2.1): each pod discovers only its
        # own node's pods, or every node would ship every pod's logs
        # (grafana/alloy docs/sources/reference/components/discovery/discovery.kubernetes.md @ v1.10.1).
        # loki.source.kubernetes reads logs through the API, not the node's files, so no
        # /var/log host mount (mounts.varlog) is needed.
        values={"alloy": {"configMap": {"content": "\n".join([
            'discovery.kubernetes "pods" {', '  role = "pod"', "  selectors {", '    role  = "pod"',
            '    field = "spec.nodeName=" + sys.env("HOSTNAME")', "  }", "}",
            'loki.source.kubernetes "pods" {', "  targets    = discovery.kubernetes.pods.targets",
            "  forward_to = [loki.write.victorialogs.receiver]", "}",
            'loki.write "victorialogs" {', "  endpoint {",
            '    url = "http://victoria-logs-victoria-logs-single-server.monitoring.svc:9428'
            '/insert/loki/api/v1/push"', "  }", "}", ""])}}},
        requires=("victoria_logs",)),
    "longhorn": CatalogEntry(
        chart="longhorn", repo="https://charts.longhorn.io", version="1.9.1", namespace="longhorn-system",
        kube_version=">=1.25.0-0",  # longhorn/longhorn chart/Chart.yaml @ v1.9.1
        description="replicated block storage on the nodes' disks",
        # Longhorn's StorageClass is the cluster default (persistence.defaultClass becomes its
        # storageclass.kubernetes.io/is-default-class annotation: longhorn/longhorn
        # chart/templates/storageclass.yaml @ v1.9.1); K3s's local-path one is then
        # disabled (addons.k3s_disabled) so exactly one default StorageClass remains.
        values={"persistence": {"defaultClass": True, "defaultClassReplicaCount": 3},
                "defaultSettings": {"defaultDataPath": "/var/lib/longhorn",
                                    "nodeDrainPolicy": "block-for-eviction-if-contains-last-replica"}},
        # Longhorn's prerequisites: open-iscsi with the iscsi_tcp module loaded
        # (https://longhorn.io/docs/1.9.1/deploy/install/#installing-open-iscsi).
        packages=("iscsi-initiator-utils", "nfs-utils"), services=("iscsid",), kernel_modules=("iscsi_tcp",)),
    "vault": CatalogEntry(
        chart="vault", repo="https://helm.releases.hashicorp.com", version="0.30.1", namespace="vault",
        kube_version=">= 1.20.0-0",  # hashicorp/vault-helm Chart.yaml @ v0.30.1
        description="secrets; initialise and unseal after install (or configure auto-unseal)",
        values={"server": {"ha": {"enabled": True, "replicas": 3, "raft": {"enabled": True}},
                           "dataStorage": {"size": "10Gi"}},
                "injector": {"enabled": True}}),
    "gatekeeper": CatalogEntry(
        chart="gatekeeper", repo="https://open-policy-agent.github.io/gatekeeper/charts", version="3.20.0",
        namespace="gatekeeper-system", description="OPA Gatekeeper admission policy",
        values={"replicas": 3, "auditInterval": 60}),
    # Served by the SQS queue and EventBridge rules of the Draining stack; runs on servers
    # only, so only the server role may read the queue.
    "node_termination_handler": CatalogEntry(
        chart="oci://public.ecr.aws/aws-ec2/helm/aws-node-termination-handler", repo=None, version="0.27.2",
        namespace="kube-system", description="drains nodes before ASG termination, spot interruption or rebalance",
        # aws/aws-node-termination-handler config/helm/aws-node-termination-handler/Chart.yaml @ v1.25.2
        kube_version=">= 1.16-0",
        # Chart 0.27.2 (NTH v1.25.2), config/helm/aws-node-termination-handler/values.yaml:
        # - useProviderId: nodes are named by instance ID (boot.sh node-name), not by the
        #   private DNS name NTH looks up by default; NTH builds aws:///<zone>/<instance-id>
        #   (pkg/monitor/sqsevent/sqs-monitor.go) and matches Node.spec.providerID
        #   (pkg/node/node.go GetNodeNameFromProviderID), the provider-id boot.sh sets.
        # - enableRebalanceMonitoring/Draining are IMDS-mode only: in queue mode every event
        #   that reaches the queue is drained unless cordonOnly, which applies to all events
        #   (pkg/interruptionevent/draincordon/handler.go). So rebalance recommendations reach
        #   the queue only when enableRebalanceDraining is set (drain_queue, stacks/draining).
        # - queue mode "never runs with host networking" (values.yaml useHostNetwork): its
        #   AWS credentials come from its own role (service_account), never the node's.
        values={"enableSqsTerminationDraining": True, "useProviderId": True, "checkTagBeforeDraining": True,
                "managedTag": NTH_MANAGED_TAG, "deleteSqsMsgIfNodeNotFound": True,
                "replicas": 1, **_CONTROL_PLANE},
        runtime_values={"queueURL": "drain_queue_url"},
        service_account="kube-system/aws-node-termination-handler", service_account_values=("serviceAccount",)),
}

# --- cluster autoscaler ---------------------------------------------------------
# Chart version per Kubernetes minor: the newest chart release whose appVersion is
# that minor (kubernetes/autoscaler, charts/cluster-autoscaler/Chart.yaml at tags
# cluster-autoscaler-chart-<version>; cluster-autoscaler/charts/... from 9.52.0 on).
# The autoscaler supports only its own Kubernetes minor (its README's version table),
# so a K3s minor missing here is refused unless the environment pins a version.
CLUSTER_AUTOSCALER_CHARTS: dict[str, str] = {
    "1.30": "9.37.0",  # appVersion 1.30.0
    "1.31": "9.44.0",  # appVersion 1.31.0
    "1.32": "9.46.6",  # appVersion 1.32.0
    "1.33": "9.51.0",  # appVersion 1.33.0
    "1.34": "9.53.0",  # appVersion 1.34.2
    "1.35": "9.59.0",  # appVersion 1.35.0
}

CATALOG["cluster_autoscaler"] = CatalogEntry(
    chart="cluster-autoscaler", repo="https://kubernetes.github.io/autoscaler",
    version=CLUSTER_AUTOSCALER_CHARTS["1.33"],  # the default K3s minor; addons.version picks per k3s.version
    namespace="kube-system",
    description="scales agent pools between min_size and max_size (ASG auto-discovery); "
                "default: on when any pool has max_size > min_size",
    # Keys checked against the chart's values.yaml at 9.51.0. autoDiscovery.clusterName and
    # awsRegion are filled from the environment (addons.autoscaler_values).
    values={"cloudProvider": "aws",
            # Pod network, credentials from its own role (service_account): with IMDS hop limit
            # 1 it cannot fall back to the node's role (IMDSv2's hop limit counts the pod's veth:
            # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-v2-how-it-works.html).
            "extraArgs": {
                "expander": "least-waste",
                "balance-similar-node-groups": True,
                # kube-system Deployments (CoreDNS, metrics-server) would otherwise pin an
                # agent forever; PodDisruptionBudgets still hold and DaemonSets are ignored.
                "skip-nodes-with-system-pods": False,
                "scale-down-unneeded-time": "10m",
                "scale-down-delay-after-add": "10m",
                "max-node-provision-time": "15m"},
            **_CONTROL_PLANE},
    service_account="kube-system/cluster-autoscaler", service_account_values=("rbac", "serviceAccount"))

# The pod identity webhook's own service account (model/pod_identity.py): it needs no AWS role.
WEBHOOK_SERVICE_ACCOUNT = "kube-system/pod-identity-webhook"


def reserved_service_accounts() -> dict[str, str]:
    """Service accounts k3s-infra itself configures -> what runs as them: a workload role
    for one of them would give its pods a second role (config refuses it)."""
    found = {entry.service_account: name for name, entry in CATALOG.items() if entry.service_account}
    return {**found, WEBHOOK_SERVICE_ACCOUNT: "pod identity webhook"}

