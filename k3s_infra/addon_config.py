"""Configuration of the opt-in cluster add-ons (charts in k3s_infra/addons_catalog.py)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from k3s_infra import addons_catalog
from k3s_infra.config_types import ChartVersion, Strict, Url


class AddOn(Strict):
    """One cluster add-on: a Helm chart K3s's helm controller installs from the servers' manifests."""

    enabled: bool = False
    version: ChartVersion | None = Field(None, description="Pinned chart version (default: the catalog's).")
    repo: Url | None = Field(None, description="Chart repository, e.g. a mirror (default: the catalog's).")
    values: dict[str, Any] = Field(default_factory=dict,
                                   description="Chart values, merged over the catalog's defaults; never secrets.")


class NodeTerminationHandler(AddOn):
    enabled: bool | None = Field(None, description="Default: on when any agent pool runs on spot.")


def _addon_field(name: str, model: type[AddOn] = AddOn) -> Any:
    return Field(default_factory=model, description=addons_catalog.CATALOG[name].description)


class Addons(Strict):
    """Opt-in add-ons (see k3s_infra/addons_catalog.py for charts, versions and defaults)."""

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

    @model_validator(mode="after")
    def _values(self) -> Addons:
        for name, entry in addons_catalog.CATALOG.items():
            addon = getattr(self, name)
            for key in entry.secret_values:
                if key in addon.values:
                    raise ValueError(f"{name}.values.{key}: is a secret; it is generated in Secrets Manager "
                                     "and read at boot, never written in YAML")
            if addon.enabled:
                for key in entry.required_values:
                    if key not in addon.values:
                        raise ValueError(f"{name}.values.{key}: required when {name} is enabled")
        return self
