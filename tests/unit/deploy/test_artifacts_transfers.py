"""Moving K3s's release files (deploy/artifacts.py download, stage), as docs/node-boot.md "Verified install"
(Verified install) says: a download that waits more than 60 s for its connection or its next
bytes, or ends short of its Content-Length, fails naming its URL and keeps nothing partial;
downloads and uploads report progress every 32 MiB; a file already in the bucket (HeadObject:
its length) is not uploaded again, a missing one answers 404/NoSuchKey/NotFound. Downloads from
a loopback HTTP server, uploads against botocore's Stubber. Choosing and checking the files is
test_artifacts.py's."""

from __future__ import annotations

import hashlib
import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy import DeployError, artifacts
from k3s_infra.deploy.progress import ArtifactsStaged, ArtifactTransfer
from k3s_infra.model import naming

MIB = 1 << 20
ENV = load_environment("dev")


class _Body(BaseHTTPRequestHandler):
    """Answers with server.body; server.length as Content-Length (None: none, the end of the
    body is the end of the connection); then waits server.stall seconds before closing."""

    protocol_version = "HTTP/1.0"

    def do_GET(self):
        server = self.server
        self.send_response(200)
        if server.length is not None:
            self.send_header("Content-Length", str(server.length))
        self.end_headers()
        self.wfile.write(server.body)
        self.wfile.flush()
        time.sleep(server.stall)

    def log_message(self, *args):
        pass


@pytest.fixture
def host():
    servers = []

    def _host(body: bytes, length: int | None = -1, stall: float = 0.0) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Body)
        server.body, server.length, server.stall = body, len(body) if length == -1 else length, stall
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/k3s"

    yield _host
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_download_reports_its_start_every_32_mib_and_its_end(host, tmp_path):
    body = b"\0" * (33 * MIB)
    seen: list = []
    digest = artifacts.download(host(body), tmp_path / "k3s", "k3s", seen.append)
    assert digest == hashlib.sha256(body).hexdigest() and (tmp_path / "k3s").stat().st_size == len(body)
    assert [(m.done, m.total) for m in seen] == [(0, len(body)), (32 * MIB, len(body)), (len(body), len(body))]


def test_a_download_without_a_length_is_taken_whole(host, tmp_path):
    seen: list = []
    artifacts.download(host(b"binary", length=None), tmp_path / "k3s", "k3s", seen.append)
    assert seen == [ArtifactTransfer("k3s", "download", 0, None), ArtifactTransfer("k3s", "download", 6, 6)]


def test_a_download_that_ends_short_of_its_length_fails_and_keeps_nothing(host, tmp_path):
    url = host(b"0123456789", length=100)
    with pytest.raises(DeployError, match=f"cannot download {url}: the connection ended after 10 of 100 bytes"):
        artifacts.download(url, tmp_path / "k3s", "k3s")
    assert not (tmp_path / "k3s").exists()


def test_a_download_that_stalls_fails_and_keeps_nothing(host, tmp_path, monkeypatch):
    monkeypatch.setattr(artifacts, "TIMEOUT", 0.3)  # the bound itself: the next test
    url = host(b"0123456789", length=100, stall=2.0)
    with pytest.raises(DeployError, match=f"cannot download {url}: timed out"):
        artifacts.download(url, tmp_path / "k3s", "k3s")
    assert not (tmp_path / "k3s").exists()


def test_a_download_waits_60_seconds_at_most_for_its_connection_or_its_next_bytes(tmp_path, monkeypatch):
    asked = []

    def urlopen(request, timeout):
        asked.append(timeout)
        raise urllib.error.URLError("unreachable")

    monkeypatch.setattr(artifacts.urllib.request, "urlopen", urlopen)
    with pytest.raises(DeployError, match="unreachable"):
        artifacts.download("https://github.com/k3s-io/k3s/releases/download/x/k3s", tmp_path / "k3s", "k3s")
    assert asked == [60]


# --- staging in the artifact bucket --------------------------------------------------------------

def _artifact(tmp_path: Path, kind: str, name: str, data: bytes) -> artifacts.Artifact:
    path = tmp_path / name
    path.write_bytes(data)
    return artifacts.Artifact("x86_64", kind, name, path, hashlib.sha256(data).hexdigest(), len(data))


@pytest.fixture
def s3():
    client = boto3.client("s3", region_name=ENV.region, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        client.stub = stub
        yield client
        stub.assert_no_pending_responses()


@pytest.mark.parametrize("missing", ["404", "NoSuchKey", "NotFound"])
def test_only_files_the_bucket_lacks_are_uploaded(tmp_path, s3, missing):
    kept = _artifact(tmp_path, "checksums", "sha256sum-amd64.txt", b"listing\n")
    new = _artifact(tmp_path, "binary", "k3s", b"\x7fELF binary")
    s3.stub.add_response("head_bucket", {}, {"Bucket": ENV.artifact_bucket})
    s3.stub.add_response("head_object", {"ContentLength": kept.size},
                         {"Bucket": ENV.artifact_bucket, "Key": naming.k3s_artifact_key(ENV, kept.sha256, kept.name)})
    key = naming.k3s_artifact_key(ENV, new.sha256, new.name)
    s3.stub.add_client_error("head_object", missing, expected_params={"Bucket": ENV.artifact_bucket, "Key": key})
    s3.stub.add_response("put_object", {}, {"Bucket": ENV.artifact_bucket, "Key": key, "Body": ANY,
                                            "ContentType": "application/octet-stream", "ChecksumAlgorithm": ANY,
                                            "Metadata": {"k3s-version": ENV.k3s.version, "sha256": new.sha256}})
    seen: list = []
    staging = artifacts.stage(SimpleNamespace(env=ENV, s3=s3), [kept, new], seen.append)
    assert [(s.artifact.name, s.uploaded) for s in staging.files] == [(kept.name, False), (new.name, True)]
    assert isinstance(seen[-1], ArtifactsStaged) and seen[-1].uploaded == (new.name,)
    uploads = [(m.done, m.total) for m in seen if isinstance(m, ArtifactTransfer)]
    assert uploads[0] == (0, new.size) and uploads[-1] == (new.size, new.size)


class _Bucket:
    """An artifact bucket without the file; upload_file reports its bytes through Callback in
    parts, as s3transfer does while it sends (botocore's Stubber never reads a body, so it
    never calls back)."""

    def __init__(self, part: int):
        self.part = part

    def head_bucket(self, **_):
        return {}

    def head_object(self, **_):
        raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")

    def upload_file(self, filename, bucket, key, Callback, Config, ExtraArgs):  # boto3's names
        size = Path(filename).stat().st_size
        for start in range(0, size, self.part):
            Callback(min(self.part, size - start))


@pytest.mark.parametrize("part", [MIB, 8 * MIB])
def test_an_upload_reports_every_32_mib(tmp_path, part):
    big = _artifact(tmp_path, "images", "k3s-airgap-images-amd64.tar.zst", b"\0" * (33 * MIB))
    seen: list = []
    artifacts.stage(SimpleNamespace(env=ENV, s3=_Bucket(part)), [big], seen.append)
    done = [m.done for m in seen if isinstance(m, ArtifactTransfer)]
    assert done == [0, 32 * MIB, big.size]
