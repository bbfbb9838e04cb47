"""Staging the K3s release files in the artifact bucket (k3s_infra/deploy/artifacts.py), against
the session's moto S3: every file under <stack>/k3s/<sha256>/<file name>, its bytes as checked;
a file already there (same key, same length) is not uploaded again, one whose object is cut short
is; a changed file is a new key and the old one stays for nodes of the earlier template."""

from __future__ import annotations

import hashlib

import pytest

from k3s_infra.config import load_environment
from k3s_infra.deploy import artifacts
from k3s_infra.deploy.aws import Aws
from k3s_infra.deploy.progress import ArtifactsStaged
from tests.support.k3s_release import write_release

STACK = "k3s-staging-files"
NAMES = ("k3s", "k3s-airgap-images-amd64.tar.zst", "sha256sum-amd64.txt")
NEXT = b"#!/bin/sh\necho the next k3s\n"  # the binary of a later release


@pytest.fixture(scope="module")
def env(write_env):
    return load_environment(path=write_env("staging-files.yaml", deploy={"stack_name": STACK}))


def _versions(aws, bucket: str) -> dict[str, int]:
    """key -> how many versions the (versioned) artifact bucket holds of it, under this stack's K3s prefix."""
    found: dict[str, int] = {}
    for version in aws.s3.list_object_versions(Bucket=bucket, Prefix=f"{STACK}/k3s/").get("Versions", []):
        found[version["Key"]] = found.get(version["Key"], 0) + 1
    return found


def test_files_are_staged_under_their_digest_and_skipped_when_present(env, aws, tmp_path):
    digests = write_release(tmp_path / "release", ("amd64",))
    files = artifacts.gather(env, directory=tmp_path / "release")
    seen = []
    staging = artifacts.stage(Aws(env), files, seen.append)
    bucket = env.artifact_bucket
    keys = {name: f"{STACK}/k3s/{digests[name]}/{name}" for name in NAMES}
    assert staging.bucket == bucket and [s.key for s in staging.files] == [keys[name] for name in NAMES]
    assert _versions(aws, bucket) == {key: 1 for key in keys.values()}
    for name, key in keys.items():
        got = aws.s3.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == (tmp_path / "release" / name).read_bytes()
        assert got["Metadata"]["sha256"] == digests[name] and got["Metadata"]["k3s-version"] == env.k3s.version
    assert seen[-1] == ArtifactsStaged(bucket, f"{STACK}/k3s", NAMES, ())

    # Again: nothing uploaded, nothing new in the bucket.
    seen.clear()
    again = artifacts.stage(Aws(env), files, seen.append)
    assert [s.uploaded for s in again.files] == [False, False, False]
    assert _versions(aws, bucket) == {key: 1 for key in keys.values()}
    assert seen == [ArtifactsStaged(bucket, f"{STACK}/k3s", (), NAMES)]

    # An object cut short (an upload someone interrupted by hand) is replaced; the rest stay.
    aws.s3.put_object(Bucket=bucket, Key=keys["k3s"], Body=b"#!")
    third = artifacts.stage(Aws(env), files)
    assert [s.uploaded for s in third.files] == [True, False, False]
    body = aws.s3.get_object(Bucket=bucket, Key=keys["k3s"])["Body"].read()
    assert body == (tmp_path / "release" / "k3s").read_bytes()

    # A new release is new keys; the old objects stay (nodes of the earlier template read them).
    new = tmp_path / "new"
    write_release(new, ("amd64",))
    (new / "sha256sum-amd64.txt").write_text((new / "sha256sum-amd64.txt").read_text().replace(digests["k3s"],
                                                                                               _sha(NEXT)))
    (new / "k3s").write_bytes(NEXT)
    fourth = artifacts.stage(Aws(env), artifacts.gather(env, directory=new))
    assert fourth.files[0].uploaded and fourth.files[0].key == f"{STACK}/k3s/{_sha(NEXT)}/k3s"
    assert set(keys.values()) <= set(_versions(aws, bucket))
    assert {p["ParameterKey"]: p["ParameterValue"] for p in fourth.parameters()} == {
        "K3sBinarySha256Amd64": _sha(NEXT), "K3sImagesSha256Amd64": digests["k3s-airgap-images-amd64.tar.zst"]}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
