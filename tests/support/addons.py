"""Readers of the add-ons a node stack's user data writes, and environments with chosen
add-ons. Used by several test modules."""

from __future__ import annotations

import yaml

from k3s_infra import bootstrap
from k3s_infra.config import validate
from k3s_infra.model import addons
from tests.support.oracle_helpers import user_data_text
from tests.support.published import addons_manifest


def write_files(template: dict) -> dict[str, dict]:
    # The static entries are base64 text, so Fn::Sub variables never reach them.
    return {f["path"]: f for f in yaml.safe_load(user_data_text(template))["write_files"]}


def charts_of(template: dict) -> dict[str, dict]:
    """HelmCharts a node stack's servers write into the manifests dir (the add-ons' object their
    bundle names, k3s_infra/bootstrap/bundle.py, as the deploy uploaded it), by name."""
    text = addons_manifest(template)
    if text is None:
        return {}
    documents = [d for d in yaml.safe_load_all(text) if d is not None]
    assert all(d["apiVersion"] == "helm.cattle.io/v1" and d["kind"] == "HelmChart" for d in documents)
    return {d["metadata"]["name"]: d for d in documents}


def with_addons(env_document, base: str = "dev", **addon_settings) -> object:
    document = env_document(base)
    # One add-on at a time: the autoscaler, on by default where pools can grow, is tested
    # on its own (tests/support/autoscaler.py names the tests).
    document["addons"] = {"cluster_autoscaler": {"enabled": False}, **addon_settings}
    return validate(document, f"{base}.yaml")


def nth_values(env) -> dict:
    """The node termination handler's chart values as rendered for ``env``."""
    (chart,) = [c for c in addons.charts(env) if c["metadata"]["name"] == "node-termination-handler"]
    return yaml.safe_load(chart["spec"]["valuesContent"])
