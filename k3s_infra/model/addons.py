"""Add-ons as K3s HelmChart manifests, built as data from the environment and
the catalog (``config.catalog``).

The servers' boot writes these into ``/var/lib/rancher/k3s/server/manifests/``
where K3s's deploy controller applies them and its helm controller installs
the charts: no Helm or kubectl runs anywhere else. Secret values never appear
here: a chart that needs one lists a Kubernetes Secret in ``valuesSecrets``,
and the servers write that Secret at boot from Secrets Manager (see
``secret_specs`` and ``boot.sh``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from k3s_infra.config import AddOn, Environment
from k3s_infra.config.addons import kubernetes_minor
from k3s_infra.config.catalog import CATALOG, CLUSTER_AUTOSCALER_CHARTS, CatalogEntry
from k3s_infra.config.text import kebab
from k3s_infra.config.yaml_text import dump
from k3s_infra.model import naming
from k3s_infra.model import outputs as o

API_VERSION = "helm.cattle.io/v1"
HELM_NAMESPACE = "kube-system"  # where HelmChart objects (and their values Secrets) live
VALUES_KEY = "values.yaml"  # key of a values Secret
# The catalog's runtime values (known only at deploy time) -> the node-stack parameter carrying each.
RUNTIME_PARAMETERS = {"drain_queue_url": o.DRAIN_QUEUE_URL}
# The service account annotation the pod identity webhook reads (its --annotation-prefix
# default "eks.amazonaws.com" + "/role-arn": aws/amazon-eks-pod-identity-webhook README).
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"


@dataclass(frozen=True)
class BootValue:
    """A chart value the servers supply at boot, as a Kubernetes Secret the HelmChart's
    ``valuesSecrets`` names: from a generated secret (``secret``) or a deploy-time
    parameter such as the drain queue's URL."""

    addon: str
    value_key: str  # top-level chart value, e.g. bootstrapPassword
    description: str
    parameter: str  # node-stack parameter: the secret's ARN, or the value itself ('' with arn)
    secret: bool
    arn: str | None = None  # a user's own secret (addons.<name>.secret_values), known at render

    @property
    def kubernetes_secret(self) -> str:
        return f"k3s-infra-{chart_name(self.addon)}-{kebab(self.value_key)}"


@dataclass(frozen=True)
class SecretSpec:
    """A generated secret whose value becomes one chart value at boot."""

    addon: str
    value_key: str
    description: str

    @property
    def logical_id(self) -> str:
        return naming.logical_id(self.addon, self.value_key, "Secret")

    @property
    def output(self) -> str:
        """Output/Parameter name carrying the secret's ARN between stacks."""
        return naming.logical_id(self.addon, self.value_key, "SecretArn")


def chart_name(addon: str) -> str:
    return addon.replace("_", "-")


def enabled(env: Environment) -> list[str]:
    """Add-ons switched on, with the ones they require, in catalog order."""
    wanted: set[str] = set()

    def want(name: str) -> None:
        if name not in wanted:
            wanted.add(name)
            for dependency in CATALOG[name].requires:
                want(dependency)

    for name in CATALOG:
        if name == "node_termination_handler":
            if env.draining:
                want(name)
        elif name == "cluster_autoscaler":
            if env.autoscaling:
                want(name)
        elif getattr(env.addons, name).enabled:
            want(name)
    return [name for name in CATALOG if name in wanted]


def secret_specs(env: Environment) -> list[SecretSpec]:
    """Secrets to generate: the catalog's, except those the user supplies (see user_secrets)."""
    return [SecretSpec(name, key, description) for name in enabled(env)
            for key, description in CATALOG[name].secret_values.items()
            if key not in getattr(env.addons, name).secret_values]


def user_secrets(env: Environment) -> list[BootValue]:
    """The enabled add-ons' values read at boot from the user's own secrets, by ARN."""
    return [BootValue(name, key, f"{name} {key}", "", True, arn) for name in enabled(env)
            for key, arn in sorted(getattr(env.addons, name).secret_values.items())]


def all_secret_specs() -> list[SecretSpec]:
    """Every secret an environment could need (parameter types are declared for all of them)."""
    return [SecretSpec(name, key, description) for name, entry in CATALOG.items()
            for key, description in entry.secret_values.items()]


def boot_values(env: Environment) -> list[BootValue]:
    """Every value the servers supply at boot, secrets first."""
    found = [BootValue(s.addon, s.value_key, s.description, s.output, True) for s in secret_specs(env)]
    found += user_secrets(env)
    for name in enabled(env):
        found += [BootValue(name, key, f"{name} {key}", parameter, False)
                  for key, runtime in CATALOG[name].runtime_values.items()
                  for parameter in [RUNTIME_PARAMETERS[runtime]]]
    return found


def node_packages(env: Environment) -> tuple[list[str], list[str]]:
    """(packages, services) the enabled add-ons need on every node."""
    packages: list[str] = []
    services: list[str] = []
    for name in enabled(env):
        packages += [p for p in CATALOG[name].packages if p not in packages]
        services += [s for s in CATALOG[name].services if s not in services]
    return packages, services


def kernel_modules(env: Environment) -> list[str]:
    """Kernel modules the enabled add-ons need loaded on every node."""
    modules: list[str] = []
    for name in enabled(env):
        modules += [m for m in CATALOG[name].kernel_modules if m not in modules]
    return modules


def _merge(base: Any, override: Any) -> Any:
    """Values: mappings merge key by key, anything else (lists included) is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def values(env: Environment, name: str) -> dict[str, Any]:
    entry: CatalogEntry = CATALOG[name]
    config: AddOn = getattr(env.addons, name)
    known = {"awsRegion": env.region} if name == "node_termination_handler" else {}
    if name == "cluster_autoscaler":
        known = autoscaler_values(env)
    if entry.service_account:
        # Its own service account, annotated with its own role (model/workload_identity.py).
        account: dict[str, Any] = {"name": entry.service_account.split("/", 1)[1],
                                   "annotations": {ROLE_ARN_ANNOTATION: naming.workload_role_arn(
                                       env, entry.service_account)}}
        for key in reversed(entry.service_account_values):
            account = {key: account}
        known = _merge(known, account)
    # The environment's values come last, but never rename or re-annotate that account.
    return _merge(_merge(_merge(entry.values, known), config.values), _pinned_account(name, known))


def _pinned_account(name: str, known: dict[str, Any]) -> dict[str, Any]:
    entry = CATALOG[name]
    if not entry.service_account:
        return {}
    return {entry.service_account_values[0]: known[entry.service_account_values[0]]}


def version(env: Environment, name: str) -> str:
    if name == "cluster_autoscaler":
        return autoscaler_version(env)
    return getattr(env.addons, name).version or CATALOG[name].version


def autoscaler_version(env: Environment) -> str:
    """The environment's pin, else the chart built for k3s.version's Kubernetes minor (the
    config refuses a minor without one, see config.addons.check_cluster_autoscaler)."""
    pinned = env.addons.cluster_autoscaler.version
    return pinned or CLUSTER_AUTOSCALER_CHARTS[kubernetes_minor(env.k3s.version)]


def autoscaler_values(env: Environment) -> dict[str, Any]:
    """Values only the environment knows: ASG auto-discovery of this cluster's tagged groups
    (the chart turns autoDiscovery.clusterName into --node-group-auto-discovery=asg:tag=
    k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/<cluster>, matching
    naming.autoscaler_discovery_tags) and the region its AWS client calls."""
    return {"autoDiscovery": {"clusterName": naming.cluster_name(env)}, "awsRegion": env.region}


def helm_chart(env: Environment, name: str) -> dict[str, Any]:
    """The HelmChart object of one add-on."""
    entry = CATALOG[name]
    config: AddOn = getattr(env.addons, name)
    repo = config.repo or entry.repo
    chart = entry.chart if repo is None or entry.repo is not None else entry.chart.rsplit("/", 1)[-1]
    spec: dict[str, Any] = {"chart": chart}
    if repo:
        spec["repo"] = repo
    spec |= {"version": version(env, name), "targetNamespace": entry.namespace}
    if entry.namespace != HELM_NAMESPACE:
        spec["createNamespace"] = True
    from_boot = [v for v in boot_values(env) if v.addon == name]
    if from_boot:
        spec["valuesSecrets"] = [{"name": v.kubernetes_secret, "keys": [VALUES_KEY]} for v in from_boot]
    spec["valuesContent"] = dump(values(env, name))
    return {"apiVersion": API_VERSION, "kind": "HelmChart",
            "metadata": {"name": chart_name(name), "namespace": HELM_NAMESPACE}, "spec": spec}


def charts(env: Environment) -> list[dict[str, Any]]:
    """The HelmChart of every enabled add-on, in catalog order."""
    return [helm_chart(env, name) for name in enabled(env)]


def bundle(env: Environment) -> str:
    """Every enabled add-on's HelmChart as one multi-document manifest ('' when none is on)."""
    return "".join(f"---\n{dump(chart)}" for chart in charts(env))


def k3s_disabled(env: Environment) -> list[str]:
    """Packaged K3s components an add-on replaces. K3s's local-path StorageClass is annotated
    as the default (docs.k3s.io/storage; K3s manifests/local-storage.yaml); when Longhorn's
    class is the default (its persistence.defaultClass), K3s's `local-storage` is disabled
    (docs.k3s.io/installation/packaged-components) so exactly one default remains."""
    if "longhorn" in enabled(env) and values(env, "longhorn").get("persistence", {}).get("defaultClass"):
        return ["local-storage"]
    return []


def rebalance_draining(env: Environment) -> bool:
    """Whether EC2 rebalance recommendations go to the drain queue. In queue mode NTH drains
    every event it receives (see the catalog entry), so the chart's IMDS-mode switch
    ``enableRebalanceDraining`` decides here whether those events reach it at all."""
    return env.draining and bool(values(env, "node_termination_handler").get("enableRebalanceDraining"))
