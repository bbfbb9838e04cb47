"""A stand-in K3s release for tests: small files under the release's asset names and its
checksum files, as the release workflow writes them (k3s-io/k3s .github/workflows/release.yml,
"Combine and format sha256sum files": sha256sum(1) lines of every airgap images tarball of the
architecture, .tar, .tar.gz and .tar.zst, then of its binary; https://github.com/k3s-io/k3s/releases
lists k3s, k3s-arm64, k3s-airgap-images-<arch>.tar.zst and sha256sum-<arch>.txt). The names are
spelled here from those sources, never taken from the code under test.

Used by the deploy tests (a release folder, served or given with --artifacts) and by the boot
sandbox (the objects the deployer staged: what each node reads from S3)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.support import stub_server

# K3s architecture name -> its binary's asset name (k3s-io/k3s install.sh, setup_verify_arch).
BINARIES = {"amd64": "k3s", "arm64": "k3s-arm64"}
# Our machine's architectures (EC2) -> K3s's names.
K3S_ARCH = {"x86_64": "amd64", "arm64": "arm64"}


def images_name(k3s_arch: str) -> str:
    return f"k3s-airgap-images-{k3s_arch}.tar.zst"


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def fake_files(k3s_arch: str) -> dict[str, bytes]:
    """Release file name -> bytes of one architecture (the binary and the zstd images tarball)."""
    return {BINARIES[k3s_arch]: f"#!/bin/sh\necho fake k3s {k3s_arch}\n".encode(),
            images_name(k3s_arch): b"\x28\xb5\x2f\xfd fake airgap images " + k3s_arch.encode()}


def checksum_file(files: dict[str, bytes], k3s_arch: str) -> str:
    """sha256sum-<arch>.txt as released: the other tarball formats too (absent here)."""
    lines = [f"{sha256(b'tar ' + k3s_arch.encode())}  k3s-airgap-images-{k3s_arch}.tar",
             f"{sha256(b'gz ' + k3s_arch.encode())}  k3s-airgap-images-{k3s_arch}.tar.gz"]
    lines += [f"{sha256(data)}  {name}" for name, data in files.items() if name.startswith("k3s-airgap")]
    lines += [f"{sha256(data)}  {name}" for name, data in files.items() if not name.startswith("k3s-airgap")]
    return "\n".join(lines) + "\n"


def write_release(folder: Path, k3s_archs=("amd64", "arm64"), *, replace: dict[str, bytes] | None = None) -> dict:
    """The release's files of these architectures in ``folder``; ``replace``: other bytes for a
    file than those its checksum file lists (a tampered copy). Returns file name -> SHA-256 of the
    genuine bytes (the checksum files' too)."""
    folder.mkdir(parents=True, exist_ok=True)
    digests = {}
    for k3s_arch in k3s_archs:
        files = fake_files(k3s_arch)
        sums = checksum_file(files, k3s_arch)
        files[f"sha256sum-{k3s_arch}.txt"] = sums.encode()
        for name, data in files.items():
            digests[name] = sha256(data)
            (folder / name).write_bytes((replace or {}).get(name, data))
    return digests


# --- the boot sandbox: what the deployer staged in the artifact bucket --------------------

# The images tarball every sandbox node reads (one for both architectures, so one digest).
SANDBOX_IMAGES = "(zstd) K3s airgap images of the sandbox\n"


def sandbox_parameters() -> dict[str, str]:
    """The node-stack parameters that pin the staged files: the genuine (stub) K3s the sandbox
    runs for both architectures, and SANDBOX_IMAGES."""
    return {"K3sBinarySha256": sha256(stub_server.CLIENT), "K3sImagesSha256": sha256(SANDBOX_IMAGES)}


def staged_objects(boot_env: dict[str, str], binary: str | None = None, images: str | None = None) -> dict[str, str]:
    """bucket/key -> content of every file the deployer staged for these nodes, at
    <bucket>/<stack>/k3s/<sha256>/<file name> (docs/node-boot.md "Verified install"); ``binary``, ``images``:
    what those objects hold instead of the genuine bytes (tampered objects)."""
    where = f"{boot_env['ARTIFACT_BUCKET']}/{boot_env['ARTIFACT_PREFIX']}"
    pins = sandbox_parameters()
    found = {}
    for k3s_arch, name in BINARIES.items():
        found[f"{where}/{pins['K3sBinarySha256']}/{name}"] = stub_server.CLIENT if binary is None else binary
        found[f"{where}/{pins['K3sImagesSha256']}/{images_name(k3s_arch)}"] = \
            SANDBOX_IMAGES if images is None else images
    return found
