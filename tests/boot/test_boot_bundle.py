"""A server's boot beyond its user data (the first server's logic, the watch, the manifests)
comes from an SSM parameter of its node stack, which anyone allowed to write it could change:
the user data pins the bundle's SHA-256, and the boot extracts nothing else
(k3s_infra/bootstrap/bundle.py; boot.sh install_bundle). A parameter holds what PutParameter
last wrote (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile

import pytest
import yaml
from tests.support.boot_sandbox import expand
from tests.support.published import addons_manifest

from k3s_infra import bootstrap
from k3s_infra.bootstrap import bundle


def _packed(files: dict[str, str]) -> str:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(gzip.compress(raw.getvalue())).decode()


@pytest.mark.parametrize("stack_id,parts", [("ServerInit", ["addons.sh", "first_server.sh", "watch.sh"]),
                                             ("Servers", ["addons.sh", "watch.sh"])])
def test_a_server_installs_exactly_its_rendered_bundle(sandbox, rendered, stack_id, parts):
    user_data = expand(rendered["prod"].templates[stack_id])
    run = sandbox.run(user_data, api_up_after=None if stack_id == "ServerInit" else 0)
    assert run.returncode == 0, run.stderr
    files = bundle.unpack(user_data.bundle[1])
    # Its scripts (the folder also holds the webhook configuration and the issuer's last copy).
    assert sorted(p.name for p in run.path(bundle.BUNDLE_DIR).glob("*.sh")) == parts
    for path, text in files.items():
        assert run.path(path).read_text() == text, path
        assert run.path(path).stat().st_mode & 0o077 == 0, path


def test_a_tampered_bundle_is_refused_and_nothing_of_it_is_extracted(sandbox, rendered):
    user_data = expand(rendered["prod"].templates["Servers"])
    files = bundle.unpack(user_data.bundle[1])
    watch = f"{bundle.BUNDLE_DIR}/watch.sh"
    files[watch] = files[watch].replace("replacement_is_safe() {", "replacement_is_safe() {\n  return 0")
    run = sandbox.run(user_data, api_up_after=0, bundle=_packed(files))
    assert run.returncode == 1
    assert "the server bundle's sha256 is" in run.stderr and "refusing it" in run.stderr
    assert not run.path(bundle.BUNDLE_DIR).exists()
    assert not run.path(bootstrap.CCM_MANIFEST).exists()
    assert not run.installed and run.statuses == ["FAILURE"]


def test_an_agent_reads_no_bundle(sandbox, rendered):
    user_data = expand(rendered["prod"].templates["AgentPoolGeneral"])
    assert user_data.bundle is None  # its node stack has none
    run = sandbox.run(user_data, api_up_after=0)
    assert run.returncode == 0, run.stderr
    # Its one SSM read is the API's name (boot.sh bind_facts), no bundle.
    assert [c[c.index("--name") + 1] for c in run.aws_calls if "ssm" in c] == [
        f"/k3s-infra/{rendered['prod'].env.stack_name}/facts/api-dns-name"]


# --- the add-ons' manifests: an object in the artifact bucket (issue 24) ---------------------

def test_a_server_installs_exactly_the_addons_object_its_bundle_pins(sandbox, rendered):
    template = rendered["prod"].templates["Servers"]
    user_data = expand(template)
    published = addons_manifest(template)
    run = sandbox.run(user_data, api_up_after=0)
    assert run.returncode == 0, run.stderr
    manifest = run.path(bootstrap.ADDONS_MANIFEST)
    assert manifest.read_text() == published and manifest.stat().st_mode & 0o077 == 0
    (read,) = run.state["addons_reads"]
    assert read.endswith("/" + hashlib.sha256(published.encode()).hexdigest() + ".yaml")


def test_a_tampered_addons_object_is_refused_and_nothing_of_it_is_written(sandbox, rendered):
    """The object is the user's chart values: someone who may write the artifact bucket must not
    get other manifests into K3s. The bundle pins its SHA-256 (the user data pins the bundle)."""
    template = rendered["prod"].templates["Servers"]
    published = addons_manifest(template)
    forged = published + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: planted}\n"
    run = sandbox.run(expand(template), api_up_after=0, addons_body=forged)
    assert run.returncode == 1
    assert "the add-on manifests' sha256 is" in run.stderr and "refusing them" in run.stderr
    assert not run.path(bootstrap.ADDONS_MANIFEST).exists()
    assert not run.installed and run.statuses == ["FAILURE"]


def test_a_server_that_may_not_read_the_addons_object_fails_its_boot(sandbox, env_document):
    """An object that is not there (never uploaded) or not readable: AccessDenied, and the
    boot gives up (FAILURE) rather than start a cluster without its add-ons."""
    from k3s_infra.config import validate
    from k3s_infra.render import render

    document = env_document("prod")
    document["addons"] = {**document.get("addons", {}), "grafana": {"enabled": True}}
    rendering = render(validate(document, "prod.yaml"))  # never published: no such object
    template = yaml.safe_load(next(s.body for s in rendering.children if s.stack_id == "Servers"))
    run = sandbox.run(expand(template), api_up_after=0)
    assert run.returncode == 1
    assert "cannot read the add-on manifests s3://" in run.stderr
    assert not run.path(bootstrap.ADDONS_MANIFEST).exists() and run.statuses == ["FAILURE"]
