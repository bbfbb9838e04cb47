"""What deploys upload besides templates: the add-ons' manifests (bootstrap/bundle.py
addons_object, uploaded by deploy/package.py), as a deploy of each environment the tests
render would have put them. Content-addressed keys: a key names one body."""

from __future__ import annotations

from k3s_infra.bootstrap import bundle
from tests.support.oracle_helpers import bundle_files

PUBLISHED: dict[str, str] = {}  # bucket/key -> body


def publish(env) -> None:
    """Upload an environment's add-ons object as the deployer does."""
    found = bundle.addons_object(env)
    if found:
        PUBLISHED[f"{found.bucket}/{found.key}"] = found.body


def addons_location(settings: str) -> str | None:
    """bucket/key of the add-ons object a bundle.env names (None: no add-on on)."""
    values = {k: v.strip("'") for k, v in (line.split("=", 1) for line in settings.splitlines() if "=" in line)}
    return f"{values['ADDONS_BUCKET']}/{values['ADDONS_KEY']}" if values.get("ADDONS_KEY") else None


def addons_manifest(template: dict) -> str | None:
    """The manifests a server of this node stack installs (its bundle names the object)."""
    location = addons_location(bundle_files(template).get(bundle.BUNDLE_ENV, ""))
    if location is None:
        return None
    assert location in PUBLISHED, f"{location}: render the environment through publish() first"
    return PUBLISHED[location]
