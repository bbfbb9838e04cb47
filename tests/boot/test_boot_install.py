"""Nothing runs as root unless its checksum is known: the boot downloads the pinned K3s
release binary and installs it only when its SHA-256 matches the release's published
sha256sum-<arch>.txt (always from the official release) or the checksum pinned in config;
then it installs the unit the official installer would write and starts it with a bound.
Asset names, checksum file and unit: k3s-io/k3s:install.sh (setup_verify_arch,
download_hash, create_systemd_service_file)."""

from __future__ import annotations

import configparser
import hashlib

import pytest
import yaml
from tests.support.boot_sandbox import OFFICIAL_RELEASES, SERVER_STARTS, expand, genuine_k3s

from k3s_infra import bootstrap
from k3s_infra.bootstrap import k3s_config
from k3s_infra.config import ConfigError, validate
from k3s_infra.render import render, write
from k3s_infra.model import roles

MIRROR = "https://artifacts.example.com/k3s/releases"


def _releases(run) -> list[str]:
    return [url for url in run.urls if "/releases/" in url]


def _user_data(env_document, tmp_path, stack_id: str = "Servers", **k3s) -> str:
    document = env_document("dev")
    document["k3s"].update(k3s)
    rendering = render(validate(document, "dev.yaml"))
    folder = write(rendering, tmp_path / "build")
    templates = {s.stack_id: yaml.safe_load((folder / s.file).read_text()) for s in rendering.stacks}
    return expand(templates[stack_id])


def _genuine_sha256(run) -> str:
    return hashlib.sha256(run.path(k3s_config.K3S_BINARY).read_bytes()).hexdigest()


@pytest.mark.parametrize("arch,asset,sums", [("x86_64", "k3s", "sha256sum-amd64.txt"),
                                             ("aarch64", "k3s-arm64", "sha256sum-arm64.txt")])
def test_the_release_binary_of_the_node_architecture_is_verified_installed_and_started(
        sandbox, user_data, rendered, arch, asset, sums):
    version = rendered["prod"].env.k3s.version.replace("+", "%2B")  # "+" URL-encoded in the tag path
    run = sandbox.run(user_data("prod", "Servers"), api_up_after=0, arch=arch)
    assert run.returncode == 0, run.stderr
    assert _releases(run) == [f"{OFFICIAL_RELEASES}/{version}/{sums}", f"{OFFICIAL_RELEASES}/{version}/{asset}"]
    assert run.installed  # /usr/local/bin/k3s 0755, kubectl/crictl/ctr links
    digest = _genuine_sha256(run)
    assert f"sha256: expected {digest}, actual {digest}" in run.stderr  # the boot log shows both
    assert run.systemctl_calls == SERVER_STARTS
    # The installed binary is what runs afterwards (readiness checks go through it).
    assert run.k3s_calls and run.k3s_calls[0][0] == "kubectl"


def test_a_tampered_binary_fails_the_boot_and_starts_nothing(sandbox, user_data):
    tampered = "#!/bin/sh\necho owned\n"
    run = sandbox.run(user_data("prod", "AgentPoolGeneral"), api_up_after=0, binary=tampered)
    assert run.returncode == 1
    actual = hashlib.sha256(tampered.encode()).hexdigest()
    assert f"actual {actual}" in run.stderr and "error: checksum mismatch" in run.stderr
    assert not run.installed and not run.state["started"]
    assert not any(call[:1] in (["start"], ["enable"]) for call in run.systemctl_calls)
    assert [s[3] for s in run.signals] == ["FAILURE"]
    assert not list(run.tmp.iterdir())  # the rejected download is removed


def test_with_a_mirror_the_checksums_still_come_from_the_official_release(sandbox, env_document, tmp_path):
    run = sandbox.run(_user_data(env_document, tmp_path, release_url=MIRROR), api_up_after=0)
    assert run.returncode == 0, run.stderr
    sums, binary = _releases(run)
    assert sums.startswith(OFFICIAL_RELEASES + "/") and sums.endswith("/sha256sum-amd64.txt")
    assert binary.startswith(MIRROR + "/") and binary.endswith("/k3s")
    assert run.installed


def test_a_tampered_mirror_is_caught_by_the_official_checksum(sandbox, env_document, tmp_path):
    run = sandbox.run(_user_data(env_document, tmp_path, release_url=MIRROR), api_up_after=0, binary="evil\n")
    assert run.returncode == 1 and "checksum mismatch" in run.stderr
    assert not run.installed and [s[3] for s in run.signals] == ["FAILURE"]


def test_a_pinned_checksum_wins_and_needs_no_published_file(sandbox, env_document, tmp_path):
    # An air-gapped mirror: the pinned checksum is all the boot needs besides the mirror.
    digest = hashlib.sha256(genuine_k3s().encode()).hexdigest()
    run = sandbox.run(_user_data(env_document, tmp_path, release_url=MIRROR, binary_sha256={"amd64": digest}),
                      api_up_after=0)
    assert run.returncode == 0, run.stderr
    (binary,) = _releases(run)
    assert binary.startswith(MIRROR + "/") and binary.endswith("/k3s")
    assert f"expected {digest}, actual {digest}" in run.stderr
    assert run.installed


def test_a_wrong_pinned_checksum_fails_even_when_the_published_one_matches(sandbox, env_document, tmp_path):
    run = sandbox.run(_user_data(env_document, tmp_path, binary_sha256={"amd64": "0" * 64}), api_up_after=0)
    assert run.returncode == 1 and f"expected {'0' * 64}" in run.stderr
    assert not [url for url in _releases(run) if "sha256sum" in url]
    assert not run.installed and [s[3] for s in run.signals] == ["FAILURE"]


@pytest.mark.parametrize("role,service,command", [("server-init", "k3s", "server"), ("server", "k3s", "server"),
                                                  ("agent", "k3s-agent", "agent")])
def test_the_unit_is_the_official_one_with_a_bounded_first_start(rendered, role, service, command):
    env = rendered["prod"].env
    pool = env.agent_pools[0] if role == "agent" else None
    entries = {e["path"]: bootstrap.unpacked(e) for e in bootstrap.files(env, roles.by_name(role), pool)}
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    text = entries[f"/etc/systemd/system/{service}.service"]
    unit.read_string(text)
    s = unit["Service"]
    assert (s["Type"], s["KillMode"], s["Delegate"], s["Restart"]) == ("notify", "process", "yes", "always")
    assert s["LimitNOFILE"] == "1048576" and s["TimeoutStartSec"] == "0"
    assert s["ExecStart"] == f"/usr/local/bin/k3s {command}"
    assert [line for line in text.splitlines() if line.startswith("ExecStartPre=")] == [
        "ExecStartPre=-/sbin/modprobe br_netfilter", "ExecStartPre=-/sbin/modprobe overlay"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # The first start is bounded by a runtime drop-in (/run: gone after a reboot).
    drop_in = configparser.ConfigParser(interpolation=None)
    drop_in.read_string(entries[f"/run/systemd/system/{service}.service.d/10-first-start.conf"])
    assert drop_in["Service"]["TimeoutStartSec"] == "300s"


def test_the_old_installer_key_is_refused_with_what_replaces_it(env_document):
    document = env_document("dev")
    document["k3s"]["installer_url"] = "https://get.k3s.io"
    with pytest.raises(ConfigError) as error:
        validate(document, "dev.yaml")
    message = str(error.value)
    assert message.startswith("dev.yaml: k3s.installer_url:")
    assert "k3s.release_url" in message and "k3s.binary_sha256" in message


@pytest.mark.parametrize("bad", ["abc", "G" * 64, "A" * 64])
def test_a_pinned_checksum_must_be_a_sha256(env_document, bad):
    document = env_document("dev")
    document["k3s"]["binary_sha256"] = {"arm64": bad}
    with pytest.raises(ConfigError, match=r"k3s\.binary_sha256\.arm64"):
        validate(document, "dev.yaml")


def test_every_network_call_of_the_boot_has_a_time_limit(sandbox, user_data):
    """curl has no total time limit by default (https://curl.se/docs/manpage.html#-m): one
    stalled connection (a black-holed NLB, a slow mirror) would outlast the group's signal
    timeout. Every curl of a first server's boot (metadata, API probes, checksums, binary) is bounded."""
    run = sandbox.run(user_data("dev", "ServerInit"), marker=None, api_up_after=None)
    assert run.returncode == 0, run.stderr
    urls = run.urls
    assert any(u.endswith("/ping") for u in urls) and any("/releases/download/" in u for u in urls)
    unbounded = [call for call in run.curl_calls if "--max-time" not in call and "-m" not in call]
    assert unbounded == []
