"""A server's boot beyond its user data (the first server's logic, the watch, the manifests)
comes from an SSM parameter of its node stack, which anyone allowed to write it could change:
the user data pins the bundle's SHA-256, and the boot extracts nothing else
(k3s_infra/bootstrap/bundle.py; boot.sh install_bundle). A parameter holds what PutParameter
last wrote (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html)."""

from __future__ import annotations

import base64
import gzip
import io
import tarfile

import pytest
from tests.support.boot_sandbox import expand

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


@pytest.mark.parametrize("stack_id,parts", [("ServerInit", ["first_server.sh", "watch.sh"]), ("Servers", ["watch.sh"])])
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
    assert not [c for c in run.aws_calls if "ssm" in c]
