"""The K3s release files a deploy stages for the nodes (k3s_infra/deploy/artifacts.py), fetched
on this machine: from the release over HTTP (a loopback http.server stands in for GitHub), or
from --artifacts DIR; each checked against the release's sha256sum-<arch>.txt (always the
official release's, as k3s-io/k3s install.sh download_hash does) and a k3s.binary_sha256 pin;
kept in a cache and checked again on reuse. Release URLs name the tag with '+' as %2B
(https://docs.k3s.io/installation/airgap: .../releases/download/v1.29.1-rc2%2Bk3s1/...).
Staging into S3 (content-addressed, skipped when present): tests/e2e/test_k3s_artifacts.py."""

from __future__ import annotations

import re
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from k3s_infra.config import ENVIRONMENTS_DIR, load_environment, read_document, validate
from k3s_infra.deploy import DeployError, Refused, artifacts
from k3s_infra.deploy.progress import (
    ArtifactCacheRejected,
    ArtifactTransfer,
    ArtifactVerified,
)
from tests.support.k3s_release import sha256, write_release

VERSION = read_document(ENVIRONMENTS_DIR / "defaults.yaml")["k3s"]["version"]  # v1.33.5+k3s1
TAG = VERSION.replace("+", "%2B")
AMD64 = ("k3s", "k3s-airgap-images-amd64.tar.zst", "sha256sum-amd64.txt")


class _Recording(SimpleHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(folder) -> (base URL, the paths asked for): a release host on loopback."""
    servers = []

    def _serve(folder: Path) -> tuple[str, list[str]]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Recording, directory=str(folder)))
        server.requests = []
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}", server.requests

    yield _serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _env(name: str = "dev", **k3s):
    if not k3s:
        return load_environment(name)
    document = read_document(ENVIRONMENTS_DIR / f"{name}.yaml")
    return validate({**document, "k3s": {**document.get("k3s", {}), **k3s}}, f"{name}.yaml")


def _release(tmp_path: Path, name: str = "official", archs=("amd64",), **replace) -> tuple[Path, dict]:
    """A release host's folder: <root>/<version>/<files> (http.server unquotes %2B to '+')."""
    return tmp_path / name, write_release(tmp_path / name / VERSION, archs, replace=replace or None)


def test_the_files_come_from_the_release_checked_against_its_checksums(serve, tmp_path):
    root, digests = _release(tmp_path)
    url, requests = serve(root)
    seen = []
    found = artifacts.gather(_env(), cache=tmp_path / "cache", release_url=url, checksums_url=url,
                             on_progress=seen.append)
    assert requests == [f"/{TAG}/sha256sum-amd64.txt", f"/{TAG}/k3s", f"/{TAG}/k3s-airgap-images-amd64.tar.zst"]
    assert [(a.arch, a.kind, a.name, a.sha256) for a in found] == [
        ("x86_64", "binary", "k3s", digests["k3s"]),
        ("x86_64", "images", AMD64[1], digests[AMD64[1]]),
        ("x86_64", "checksums", AMD64[2], digests[AMD64[2]])]
    for artifact in found:
        assert artifact.path == tmp_path / "cache" / artifact.name
        assert artifact.path.read_bytes() == (root / VERSION / artifact.name).read_bytes()
        assert artifact.size == artifact.path.stat().st_size
    assert [(m.name, m.source) for m in seen if isinstance(m, ArtifactVerified)] == [
        ("k3s", f"{url}/{TAG}/k3s"), (AMD64[1], f"{url}/{TAG}/{AMD64[1]}")]
    transfers = [(m.name, m.done) for m in seen if isinstance(m, ArtifactTransfer)]
    assert ("k3s", 0) in transfers and ("k3s", found[0].size) in transfers  # its start and its end
    assert not list((tmp_path / "cache").glob("*.part"))


def test_every_architecture_in_use_gets_its_files(serve, tmp_path):
    root, digests = _release(tmp_path, archs=("amd64", "arm64"))
    url, _ = serve(root)
    found = artifacts.gather(_env("prod"), cache=tmp_path / "cache", release_url=url, checksums_url=url)
    assert {(a.arch, a.name) for a in found} == {
        ("x86_64", "k3s"), ("x86_64", AMD64[1]), ("x86_64", AMD64[2]),
        ("arm64", "k3s-arm64"), ("arm64", "k3s-airgap-images-arm64.tar.zst"), ("arm64", "sha256sum-arm64.txt")}
    assert all(a.sha256 == digests[a.name] for a in found)


def test_with_a_mirror_the_checksums_still_come_from_the_official_release(serve, tmp_path):
    official, _ = _release(tmp_path)
    # The mirror's own checksum file lists its tampered binary: it must not be what decides.
    forged = b"#!/bin/sh\necho owned\n"
    mirror, _ = _release(tmp_path, "mirror", k3s=forged)
    (mirror / VERSION / "sha256sum-amd64.txt").write_text(f"{sha256(forged)}  k3s\n")
    official_url, official_asked = serve(official)
    mirror_url, mirror_asked = serve(mirror)
    with pytest.raises(Refused) as refused:
        artifacts.gather(_env(), cache=tmp_path / "cache", release_url=mirror_url, checksums_url=official_url)
    assert f"has SHA-256 {sha256(forged)}" in str(refused.value) and "refusing it" in str(refused.value)
    assert official_asked == [f"/{TAG}/sha256sum-amd64.txt"] and mirror_asked == [f"/{TAG}/k3s"]
    assert not (tmp_path / "cache" / "k3s").exists() and not list((tmp_path / "cache").glob("*.part"))
    # A faithful mirror is fine: files from it, checksums from the official release.
    (mirror / VERSION / "k3s").write_bytes((official / VERSION / "k3s").read_bytes())
    found = artifacts.gather(_env(), cache=tmp_path / "cache", release_url=mirror_url, checksums_url=official_url)
    assert len(found) == 3
    assert mirror_asked[1:] == [f"/{TAG}/k3s", f"/{TAG}/{AMD64[1]}"] and len(official_asked) == 1


def test_a_tampered_images_tarball_is_refused_and_not_kept(serve, tmp_path):
    root, digests = _release(tmp_path, **{AMD64[1]: b"not the images"})
    url, _ = serve(root)
    with pytest.raises(Refused) as refused:
        artifacts.gather(_env(), cache=tmp_path / "cache", release_url=url, checksums_url=url)
    message = str(refused.value)
    assert f"{AMD64[1]} of K3s {VERSION} from {url}/{TAG}/{AMD64[1]}" in message
    assert sha256(b"not the images") in message and digests[AMD64[1]] in message
    assert not (tmp_path / "cache" / AMD64[1]).exists()


def test_a_pin_must_agree_with_the_release(serve, tmp_path):
    root, digests = _release(tmp_path)
    url, asked = serve(root)
    found = artifacts.gather(_env(binary_sha256={"amd64": digests["k3s"]}), cache=tmp_path / "cache",
                             release_url=url, checksums_url=url)
    assert found[0].sha256 == digests["k3s"]
    asked.clear()
    with pytest.raises(Refused) as refused:
        artifacts.gather(_env(binary_sha256={"amd64": "0" * 64}), cache=tmp_path / "other",
                         release_url=url, checksums_url=url)
    assert f"k3s.binary_sha256.amd64 pins {'0' * 64}" in str(refused.value) and digests["k3s"] in str(refused.value)
    assert asked == [f"/{TAG}/sha256sum-amd64.txt"]  # refused before the binary was fetched


def test_the_cache_spares_the_download_and_is_checked_on_every_reuse(serve, tmp_path):
    root, digests = _release(tmp_path)
    url, asked = serve(root)
    cache = tmp_path / "cache"
    artifacts.gather(_env(), cache=cache, release_url=url, checksums_url=url)
    asked.clear()
    seen = []
    artifacts.gather(_env(), cache=cache, release_url=url, checksums_url=url, on_progress=seen.append)
    assert asked == []  # nothing downloaded again
    assert [(m.name, m.source) for m in seen if isinstance(m, ArtifactVerified)] == [
        ("k3s", f"cache {cache / 'k3s'}"), (AMD64[1], f"cache {cache / AMD64[1]}")]
    (cache / AMD64[1]).write_bytes(b"corrupted on disk")
    seen.clear()
    found = artifacts.gather(_env(), cache=cache, release_url=url, checksums_url=url, on_progress=seen.append)
    assert [m for m in seen if isinstance(m, ArtifactCacheRejected)] == [
        ArtifactCacheRejected(str(cache / AMD64[1]), sha256(b"corrupted on disk"), digests[AMD64[1]])]
    assert asked == [f"/{TAG}/{AMD64[1]}"]
    assert found[1].path.read_bytes() == (root / VERSION / AMD64[1]).read_bytes()


def test_the_cache_folder_follows_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("K3S_INFRA_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert artifacts.cache_folder(VERSION) == tmp_path / "xdg" / "k3s-infra" / "k3s" / VERSION
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert artifacts.cache_folder(VERSION) == tmp_path / "home" / ".cache" / "k3s-infra" / "k3s" / VERSION
    monkeypatch.setenv("K3S_INFRA_CACHE", str(tmp_path / "mine"))
    assert artifacts.cache_folder(VERSION) == tmp_path / "mine" / "k3s" / VERSION


def test_artifacts_dir_needs_no_network_and_is_checked_all_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("K3S_INFRA_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "offline"
    digests = write_release(folder, ("amd64",))
    seen = []
    # k3s.release_url unreachable on purpose: nothing may be fetched.
    found = artifacts.gather(_env(release_url="https://release.invalid/k3s"), directory=folder,
                             on_progress=seen.append)
    assert [(a.name, a.path, a.sha256) for a in found] == [(name, folder / name, digests[name]) for name in AMD64]
    assert [m.source for m in seen if isinstance(m, ArtifactVerified)] == [str(folder / "k3s"), str(folder / AMD64[1])]
    assert not (tmp_path / "cache").exists()
    (folder / AMD64[1]).write_bytes(b"swapped")
    with pytest.raises(Refused, match=rf"{re.escape(AMD64[1])} has SHA-256 {sha256(b'swapped')}, but sha256sum"):
        artifacts.gather(_env(), directory=folder)
    (folder / AMD64[1]).unlink()
    with pytest.raises(Refused, match=rf"^--artifacts {re.escape(str(folder))}: no {re.escape(AMD64[1])} "
                                      rf"\(K3s {re.escape(VERSION)}"):
        artifacts.gather(_env(), directory=folder)
    x86_only = tmp_path / "x86"
    write_release(x86_only, ("amd64",))
    with pytest.raises(Refused, match=r": no sha256sum-arm64\.txt "):  # prod has Graviton nodes too
        artifacts.gather(_env("prod"), directory=x86_only)


def test_a_checksum_file_without_the_images_is_refused(tmp_path):
    folder = tmp_path / "offline"
    write_release(folder, ("amd64",))
    (folder / AMD64[2]).write_text((folder / AMD64[2]).read_text().replace(AMD64[1], "other.tar.zst"))
    with pytest.raises(Refused, match=rf"sha256sum-amd64\.txt of K3s .* lists no {AMD64[1]}: refusing it"):
        artifacts.gather(_env(), directory=folder)


@pytest.mark.parametrize("path, expected", [("/missing", r"HTTP 404"), (None, r"without a way there")])
def test_a_failed_download_says_which_url(serve, tmp_path, path, expected):
    if path is None:  # nothing listens there
        url = f"http://127.0.0.1:{_closed_port()}"
    else:
        url, _ = serve(tmp_path)
        url += path
    with pytest.raises(DeployError, match=rf"^cannot download {url}/{TAG}/sha256sum-amd64\.txt: .*{expected}"):
        artifacts.gather(_env(), cache=tmp_path / "cache", release_url=url, checksums_url=url)
    assert not list((tmp_path / "cache").glob("*"))


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_checksum_listings_in_both_sha256sum_modes_and_no_contradictions():
    text = f"{'a' * 64}  k3s\n{'B' * 64} *k3s-arm64\nnot a line\n"
    assert artifacts.parse_checksums(text, "sums") == {"k3s": "a" * 64, "k3s-arm64": "b" * 64}
    with pytest.raises(Refused, match="lists k3s twice with different SHA-256s"):
        artifacts.parse_checksums(f"{'a' * 64}  k3s\n{'c' * 64}  k3s\n", "sums")


def test_the_root_parameters_carry_each_architectures_digests(tmp_path):
    """The names the root declares (stacks/root.py), one pair per architecture in use."""
    write_release(tmp_path, ("amd64", "arm64"))
    found = artifacts.gather(_env("prod"), directory=tmp_path)
    staged = artifacts.Staging("bucket", tuple(artifacts.Staged(a, "key", True) for a in found))
    digests = {a.name: a.sha256 for a in found}
    assert {p["ParameterKey"]: p["ParameterValue"] for p in staged.parameters()} == {
        "K3sBinarySha256Amd64": digests["k3s"], "K3sImagesSha256Amd64": digests[AMD64[1]],
        "K3sBinarySha256Arm64": digests["k3s-arm64"],
        "K3sImagesSha256Arm64": digests["k3s-airgap-images-arm64.tar.zst"]}
