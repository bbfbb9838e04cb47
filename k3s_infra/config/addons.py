"""Configuration of the opt-in cluster add-ons (charts in ``catalog``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from k3s_infra.config import catalog, rules, secret_scan, yaml_load
from k3s_infra.config.types import ChartVersion, Strict, Url, shape

# A top-level chart value key: it also names the Kubernetes Secret that carries it (kebab-case).
ValueKey = shape(r"^[A-Za-z][A-Za-z0-9]{0,62}$", "a top-level chart value key like adminPassword")
# A complete secret ARN, with the 6 characters Secrets Manager appends to the name, so the
# servers' GetSecretValue can be granted on exactly this secret
# (https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_iam-permissions.html).
SecretArn = shape(r"^arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}"
                   r"-[A-Za-z0-9]{6}$", "a full Secrets Manager secret ARN, ending in -<6 characters>", scanned=True)


class AddOn(Strict):
    """One cluster add-on: a Helm chart K3s's helm controller installs from the servers' manifests."""

    enabled: bool = False
    version: ChartVersion | None = Field(None, description="Pinned chart version (default: the catalog's).")
    repo: Url | None = Field(None, description="Chart repository, e.g. a mirror (default: the catalog's).")
    values: dict[str, Any] = Field(default_factory=dict, description=(
        "Chart values, merged over the catalog's defaults; never secrets. JSON values only: a date "
        "(2024-01-05) is kept as the text written, as Helm reads it; sets, binary, ordered maps, .inf and "
        ".nan are refused."))
    secret_values: dict[ValueKey, SecretArn] = Field(
        default_factory=dict, max_length=20,
        description="Top-level chart value -> ARN of a Secrets Manager secret in the cluster's region whose "
                    "value the servers read at boot (never in user data). A customer-managed KMS key must "
                    "let the server role decrypt.")

    @field_validator("values")
    @classmethod
    def _json(cls, values: dict[str, Any]) -> dict[str, Any]:
        # The YAML reader refuses these with their line; this holds for documents built in Python.
        found = yaml_load.first_problem(values)
        if found:
            raise ValueError(f"{found[0] + ': ' if found[0] else ''}{found[1]}")
        return values


class NodeTerminationHandler(AddOn):
    enabled: bool | None = Field(None, description="Default: on when any agent pool runs on spot.")


class ClusterAutoscaler(AddOn):
    enabled: bool | None = Field(None, description="Default: on when any agent pool has max_size > min_size.")
    version: ChartVersion | None = Field(None, description="Pinned chart version (default: the catalog's chart "
                                                           "for k3s.version's Kubernetes minor).")


def _addon_field(name: str, model: type[AddOn] = AddOn) -> Any:
    return Field(default_factory=model, description=catalog.CATALOG[name].description)


class Addons(Strict):
    """Opt-in add-ons (see k3s_infra/config/catalog.py for charts, versions and defaults)."""

    cert_manager: AddOn = _addon_field("cert_manager")
    rancher: AddOn = _addon_field("rancher")
    victoria_metrics: AddOn = _addon_field("victoria_metrics")
    victoria_logs: AddOn = _addon_field("victoria_logs")
    grafana: AddOn = _addon_field("grafana")
    alloy: AddOn = _addon_field("alloy")
    longhorn: AddOn = _addon_field("longhorn")
    vault: AddOn = _addon_field("vault")
    gatekeeper: AddOn = _addon_field("gatekeeper")
    node_termination_handler: NodeTerminationHandler = _addon_field("node_termination_handler",
                                                                    NodeTerminationHandler)
    cluster_autoscaler: ClusterAutoscaler = _addon_field("cluster_autoscaler", ClusterAutoscaler)

    @model_validator(mode="after")
    def _values(self) -> Addons:
        for name, entry in catalog.CATALOG.items():
            addon = getattr(self, name)
            for key in entry.secret_values:
                if key in addon.values:
                    raise ValueError(f"{name}.values.{key}: is a secret; it is generated in Secrets Manager "
                                     "and read at boot, never written in YAML")
            for key in addon.secret_values:
                if key in addon.values:
                    raise ValueError(f"{name}.secret_values.{key}: is also set in {name}.values")
            if "hostname" in addon.values:  # e.g. Rancher's: its ingress host and certificate name
                try:
                    rules.hostname(addon.values["hostname"])
                except ValueError as exc:
                    raise ValueError(f"{name}.values.hostname: {exc}") from None
            if addon.enabled:
                for key in entry.required_values:
                    if key not in addon.values:
                        raise ValueError(f"{name}.values.{key}: required when {name} is enabled")
        return self


def kubernetes_minor(k3s_version: str) -> str:
    """'v1.33.5+k3s1' -> '1.33'."""
    return ".".join(k3s_version.lstrip("v").split(".")[:2])


def enabled(env: Any) -> list[str]:
    """Add-ons switched on, with the ones they require (as model.addons.enabled)."""
    wanted: set[str] = set()
    defaults = {"node_termination_handler": env.draining, "cluster_autoscaler": env.autoscaling}
    pending = [n for n in catalog.CATALOG if defaults.get(n, getattr(env.addons, n).enabled)]
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending.extend(catalog.CATALOG[name].requires)
    return [name for name in catalog.CATALOG if name in wanted]


def check_chart_kube_versions(env: Any) -> None:
    """Refuse a catalog chart whose Chart.yaml kubeVersion excludes k3s.version's Kubernetes:
    Helm would refuse to install it and K3s's helm controller retry forever. A version the
    environment pins itself (addons.<name>.version) is its own to vouch for."""
    for name in enabled(env):
        entry, pinned = catalog.CATALOG[name], getattr(env.addons, name).version
        if entry.kube_version and pinned in (None, entry.version) \
                and not rules.kube_version_allows(entry.kube_version, env.k3s.version):
            raise ValueError(f"k3s.version: {env.k3s.version} is Kubernetes {kubernetes_minor(env.k3s.version)}, but "
                             f"the {entry.chart} chart {entry.version} (addons.{name}) requires kubeVersion "
                             f"{entry.kube_version!r}: Helm would refuse to install it; pin a chart that supports "
                             f"it in addons.{name}.version or choose another k3s.version")


def check_cluster_autoscaler(env: Any) -> None:
    """What an enabled autoscaler needs of the environment (called from Environment's
    validation, so a refusal names its field like any other config error). Its tags'
    AWS limits are checked with the tags themselves (``model.limits.check_environment``)."""
    if not env.autoscaling:
        return
    minor = kubernetes_minor(env.k3s.version)
    if env.addons.cluster_autoscaler.version is None and minor not in catalog.CLUSTER_AUTOSCALER_CHARTS:
        known = ", ".join(catalog.CLUSTER_AUTOSCALER_CHARTS)
        raise ValueError(f"k3s.version: no cluster-autoscaler chart is pinned for Kubernetes {minor} (known: "
                         f"{known}); set addons.cluster_autoscaler.version to a chart whose appVersion is "
                         f"{minor}.x, or addons.cluster_autoscaler.enabled: false")
    for pool in env.agent_pools:
        keys = [taint.split(":")[0].split("=")[0] for taint in pool.taints]
        for key in {k for k in keys if keys.count(k) > 1}:
            raise ValueError(f"agent_pools[{pool.name}].taints: {key} is listed twice; the autoscaler's "
                             "node-template tags hold one taint per key (drop one, or set "
                             "addons.cluster_autoscaler.enabled: false)")


def secret_shaped_values(addons: Addons) -> list[tuple[str, str]]:
    """(field path, reason) of every add-on value that looks like a secret (config/secret_scan.py).
    A lint-time warning, not a refusal: the values travel in an SSE-KMS object only the server
    roles read, never in user data or templates (bootstrap/bundle.py), so the scanner is a second
    guard; a secret belongs in Secrets Manager all the same, named in ``secret_values``."""
    found = []
    for name in catalog.CATALOG:
        for path, reason in secret_scan.scan(getattr(addons, name).values):
            found.append((f"addons.{name}.values" + (f".{path}" if path else ""), reason))
    return found
