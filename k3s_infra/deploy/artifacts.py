"""The K3s release files the nodes install, staged in the cluster's artifact bucket so that no
node reaches the internet for them (a network without NAT still forms a cluster): for each CPU
architecture in use, the binary (``k3s``, ``k3s-arm64``), the airgap images tarball
(``k3s-airgap-images-<arch>.tar.zst``, which K3s imports when it starts: its own images need no
registry) and the release's ``sha256sum-<arch>.txt`` (kept beside them: what they were checked
against).

Where this machine gets them: ``--artifacts DIR`` (the same file names; for an operator who is
offline himself), else the release, ``<k3s.release_url>/<version, + as %2B>/<file>`` (urllib),
through a cache (``$K3S_INFRA_CACHE``, else ``$XDG_CACHE_HOME`` or ``~/.cache`` +
``/k3s-infra``; then ``k3s/<version>/``) that spares the next download. Every file, downloaded,
cached or given, is checked against the checksum file before it is used; the checksum file comes
from the official release even when ``k3s.release_url`` is a mirror (as k3s-io/k3s install.sh,
download_hash), or from DIR; a ``k3s.binary_sha256`` pin must agree with it as well.

Keys (``naming.k3s_artifact_key``): ``<stack>/k3s/<sha256>/<file>``, content-addressed: an object
already there with the file's length is not uploaded again, a changed file is a new key (nodes of
an earlier launch template still find theirs), and a node derives its key from the digest alone,
which its node stack pins: the digests are root parameters (``outputs.K3S_BINARY_SHA256S``,
``K3S_IMAGES_SHA256S``) the deployer passes with the change set, as it does the pinned images
(deploy/images.py). boot.sh install_k3s checks each digest again before it installs anything.

Nothing here prints: progress goes to ``on_progress`` (deploy/progress.py). A download or an
upload that fails raises DeployError; a file missing or not matching raises Refused (nothing was
changed)."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from k3s_infra.config import Environment, architectures, defaults
from k3s_infra.deploy import DeployError, Refused
from k3s_infra.deploy.package import ensure_bucket
from k3s_infra.deploy.progress import (
    ArtifactCacheRejected,
    ArtifactsStaged,
    ArtifactTransfer,
    ArtifactVerified,
    Progress,
    ignore,
)
from k3s_infra.model import naming
from k3s_infra.model import outputs as o

CHUNK = 1 << 20
REPORT_EVERY = 32 << 20  # bytes between two transfer messages of one file
TIMEOUT = 60  # seconds a download may wait on its connection or for its next bytes
CONTENT_TYPES = {"binary": "application/octet-stream", "images": "application/zstd", "checksums": "text/plain"}
# Root parameters carrying each architecture's digests to its node stacks (stacks/root.py).
PARAMETERS = {"binary": o.K3S_BINARY_SHA256S, "images": o.K3S_IMAGES_SHA256S}
_LISTED = re.compile(r"([0-9a-fA-F]{64}) [ *](\S+)")  # sha256sum(1): "<digest>  <name>" ("*": binary mode)


@dataclass(frozen=True)
class Artifact:
    """One release file on this machine, checked against its release's checksum file."""
    arch: str    # architectures.ARCHITECTURES: x86_64 | arm64
    kind: str    # binary | images | checksums
    name: str    # the release's file name
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class Staged:
    artifact: Artifact
    key: str
    uploaded: bool  # False: the bucket held it already


@dataclass(frozen=True)
class Staging:
    bucket: str
    files: tuple[Staged, ...]

    def parameters(self) -> list[dict[str, str]]:
        """The change set's root parameters: each architecture's binary and images digests."""
        return [{"ParameterKey": PARAMETERS[s.artifact.kind][s.artifact.arch], "ParameterValue": s.artifact.sha256}
                for s in self.files if s.artifact.kind in PARAMETERS]


def file_names(k3s_arch: str) -> dict[str, str]:
    """kind -> the release's file name, for a K3s architecture name (amd64, arm64)."""
    return {"binary": naming.k3s_binary_name(k3s_arch), "images": naming.k3s_images_name(k3s_arch),
            "checksums": naming.k3s_checksums_name(k3s_arch)}


def cache_folder(version: str) -> Path:
    """Where downloads of a K3s release are kept (XDG Base Directory Specification: $XDG_CACHE_HOME,
    default ~/.cache)."""
    base = os.environ.get("K3S_INFRA_CACHE")
    root = Path(base) if base else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "k3s-infra"
    return root / "k3s" / version


def release_file_url(base: str, version: str, name: str) -> str:
    """A release file's URL: GitHub names the tag with '+' as %2B."""
    return f"{base.rstrip('/')}/{version.replace('+', '%2B')}/{name}"


def parse_checksums(text: str, source: str) -> dict[str, str]:
    """file name -> SHA-256 of a sha256sum(1) listing; other lines are ignored."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _LISTED.fullmatch(line.strip())
        if match and found.setdefault(match.group(2), match.group(1).lower()) != match.group(1).lower():
            raise Refused(f"{source} lists {match.group(2)} twice with different SHA-256s: refusing it")
    return found


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for chunk in iter(lambda: data.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def prepare(aws, *, directory: Path | None = None, on_progress: Progress = ignore) -> list[dict[str, str]]:
    """Gather, check and stage the files of ``aws.env``; the root parameters naming them."""
    return stage(aws, gather(aws.env, directory=directory, on_progress=on_progress), on_progress).parameters()


def gather(env: Environment, *, directory: Path | None = None, cache: Path | None = None,
           release_url: str | None = None, checksums_url: str | None = None,
           on_progress: Progress = ignore) -> list[Artifact]:
    """Every file the nodes of ``env`` need, checked: from ``directory``, else from the release
    through ``cache`` (default ``cache_folder``). ``release_url``, ``checksums_url``: other bases
    than k3s.release_url and the official release."""
    version = env.k3s.version
    if directory is not None:
        source: _Source = _Folder(Path(directory), version, on_progress)
    else:
        source = _Release(cache or cache_folder(version), release_url or env.k3s.release_url,
                          checksums_url or defaults.K3S_OFFICIAL_RELEASE_URL, version, on_progress)
    found = []
    for arch in architectures.in_use(env):
        k3s_arch = architectures.K3S_NAMES[arch]
        names = file_names(k3s_arch)
        sums_path, where = source.checksums(names["checksums"])
        listed = parse_checksums(sums_path.read_text(encoding="utf-8", errors="replace"),
                                 f"{names['checksums']} of K3s {version} ({where})")
        expected = {}
        for kind in ("binary", "images"):
            expected[kind] = listed.get(names[kind])
            if expected[kind] is None:
                raise Refused(f"{names['checksums']} of K3s {version} ({where}) lists no {names[kind]}: refusing it")
        pin = getattr(env.k3s.binary_sha256, k3s_arch)
        if pin and pin != expected["binary"]:
            raise Refused(f"k3s.binary_sha256.{k3s_arch} pins {pin}, but {names['checksums']} of K3s {version} "
                          f"({where}) lists {expected['binary']} for {names['binary']}: refusing both")
        for kind in ("binary", "images"):
            path = source.file(names[kind], expected[kind], names["checksums"])
            found.append(Artifact(arch, kind, names[kind], path, expected[kind], path.stat().st_size))
        found.append(Artifact(arch, "checksums", names["checksums"], sums_path, sha256_of(sums_path),
                              sums_path.stat().st_size))
    return found


class _Source:
    def checksums(self, name: str) -> tuple[Path, str]:
        """The checksum file's path, and where it came from (for messages)."""
        raise NotImplementedError

    def file(self, name: str, expected: str, listing: str) -> Path:
        """The path of a file whose SHA-256 is ``expected`` (listed in ``listing``)."""
        raise NotImplementedError


class _Folder(_Source):
    """--artifacts DIR: the operator brought the files; nothing is downloaded."""

    def __init__(self, folder: Path, version: str, on_progress: Progress):
        self.folder, self.version, self.on_progress = folder, version, on_progress

    def _path(self, name: str) -> Path:
        path = self.folder / name
        if not path.is_file():
            raise Refused(f"--artifacts {self.folder}: no {name} (K3s {self.version} needs {name} there)")
        return path

    def checksums(self, name: str) -> tuple[Path, str]:
        return self._path(name), f"--artifacts {self.folder}"

    def file(self, name: str, expected: str, listing: str) -> Path:
        path = self._path(name)
        actual = sha256_of(path)
        if actual != expected:
            raise Refused(f"{path} has SHA-256 {actual}, but {listing} lists {expected}: refusing it")
        self.on_progress(ArtifactVerified(name, actual, str(path)))
        return path


class _Release(_Source):
    """The release over HTTPS, each file kept in the cache once it matched."""

    def __init__(self, cache: Path, files_url: str, checksums_url: str, version: str, on_progress: Progress):
        self.cache, self.files_url, self.checksums_url = cache, files_url, checksums_url
        self.version, self.on_progress = version, on_progress

    def checksums(self, name: str) -> tuple[Path, str]:
        path = self.cache / name
        url = release_file_url(self.checksums_url, self.version, name)
        if path.is_file():
            return path, f"cache {path}, from {url}"
        part = path.with_name(name + ".part")
        download(url, part, name, self.on_progress)
        os.replace(part, path)
        return path, url

    def file(self, name: str, expected: str, listing: str) -> Path:
        path = self.cache / name
        if path.is_file():
            actual = sha256_of(path)  # checked on every reuse: a cache is no proof
            if actual == expected:
                self.on_progress(ArtifactVerified(name, actual, f"cache {path}"))
                return path
            self.on_progress(ArtifactCacheRejected(str(path), actual, expected))
            path.unlink()
        url = release_file_url(self.files_url, self.version, name)
        part = path.with_name(name + ".part")
        actual = download(url, part, name, self.on_progress)
        if actual != expected:
            part.unlink(missing_ok=True)
            raise Refused(f"{name} of K3s {self.version} from {url} has SHA-256 {actual}, but {listing} lists "
                          f"{expected}: refusing it")
        os.replace(part, path)
        self.on_progress(ArtifactVerified(name, actual, url))
        return path


def download(url: str, target: Path, name: str, on_progress: Progress = ignore) -> str:
    """``url`` into ``target`` (redirects followed: GitHub serves release files from another host);
    returns the SHA-256 of what arrived. A failure removes ``target`` and raises DeployError."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, done = hashlib.sha256(), 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "k3s-infra"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response, target.open("wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            on_progress(ArtifactTransfer(name, "download", 0, total))
            reported = 0
            while chunk := response.read(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if done - reported >= REPORT_EVERY:
                    on_progress(ArtifactTransfer(name, "download", done, total))
                    reported = done
    except urllib.error.HTTPError as exc:
        target.unlink(missing_ok=True)
        raise DeployError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        target.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise DeployError(f"cannot download {url}: {reason} (without a way there, give the release's files "
                          "with --artifacts DIR)") from None
    if total is not None and done != total:
        target.unlink(missing_ok=True)
        raise DeployError(f"cannot download {url}: the connection ended after {done} of {total} bytes")
    on_progress(ArtifactTransfer(name, "download", done, done))
    return digest.hexdigest()


def stage(aws, files: list[Artifact], on_progress: Progress = ignore) -> Staging:
    """Each file into the artifact bucket under its content-addressed key, unless it is there."""
    env = aws.env
    bucket = env.artifact_bucket
    ensure_bucket(aws.s3, bucket, env.region, naming.cluster_tags(env))
    staged = []
    for artifact in files:
        key = naming.k3s_artifact_key(env, artifact.sha256, artifact.name)
        present = _size_in(aws.s3, bucket, key) == artifact.size
        if not present:
            _upload(aws.s3, bucket, key, artifact, env.k3s.version, on_progress)
        staged.append(Staged(artifact, key, uploaded=not present))
    on_progress(ArtifactsStaged(bucket, naming.k3s_artifacts_prefix(env),
                                tuple(s.artifact.name for s in staged if s.uploaded),
                                tuple(s.artifact.name for s in staged if not s.uploaded)))
    return Staging(bucket, tuple(staged))


def _size_in(s3, bucket: str, key: str) -> int | None:
    """The length of the object at ``key`` (None: there is none)."""
    try:
        return s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def _upload(s3, bucket: str, key: str, artifact: Artifact, version: str, on_progress: Progress) -> None:
    """One file, multipart when large, on this thread (its progress messages stay in order).
    No checksum beyond S3's own: the nodes check each file's SHA-256 before they use it."""
    progress = {"done": 0, "reported": 0}

    def sent(count: int) -> None:
        progress["done"] += count
        if progress["done"] - progress["reported"] >= REPORT_EVERY:
            on_progress(ArtifactTransfer(artifact.name, "upload", progress["done"], artifact.size))
            progress["reported"] = progress["done"]

    on_progress(ArtifactTransfer(artifact.name, "upload", 0, artifact.size))
    try:
        s3.upload_file(str(artifact.path), bucket, key, Callback=sent, Config=TransferConfig(use_threads=False),
                       ExtraArgs={"ContentType": CONTENT_TYPES[artifact.kind],
                                  "Metadata": {"k3s-version": version, "sha256": artifact.sha256}})
    except (S3UploadFailedError, ClientError, BotoCoreError) as exc:
        raise DeployError(f"cannot upload {artifact.name} to s3://{bucket}/{key}: {exc}") from None
    on_progress(ArtifactTransfer(artifact.name, "upload", artifact.size, artifact.size))
