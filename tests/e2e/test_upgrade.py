"""k3s-infra upgrade through the real CLI on the session's moto server. The emulator serves no
Kubernetes API (no K3s runs and the kubeconfig stays unpublished), so the rules that read it refuse,
saying why; the rest read what moto keeps: the version the stack pins (the staged binary's S3
metadata), the server groups, the snapshot bucket. A refused upgrade changes nothing; with the API's
rules skipped (said on stderr) and a fresh snapshot, it rolls to the new release as a deploy does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.support.k3s_release import checksum_file, fake_files, sha256

STACK = "k3s-upg"
FROM, TO = "v1.33.5+k3s1", "v1.33.6+k3s1"  # environments/defaults.yaml's version; its next patch


@pytest.fixture(scope="module")
def config(write_env):
    return str(write_env("upg.yaml", deploy={"stack_name": STACK}))


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, str]:
    """The target's release files for --artifacts: its own binary (another release, other bytes:
    content-addressed keys differ, as on GitHub), checksums as the release workflow writes them."""
    folder = tmp_path_factory.mktemp("release")
    files = fake_files("amd64")
    files["k3s"] = f"#!/bin/sh\necho fake k3s {TO}\n".encode()
    files["sha256sum-amd64.txt"] = checksum_file(files, "amd64").encode()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder, sha256(files["k3s"])


def root(aws) -> dict:
    return aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]


def test_deploy(cli, config):
    assert cli("deploy", "--config", config, "--yes").code == 0


def test_a_refused_upgrade_changes_nothing(cli, config, aws):
    before, change_sets = root(aws), aws.cloudformation.list_change_sets(StackName=STACK)["Summaries"]
    result = cli("upgrade", "--config", config, "--to", TO, "--yes", "-o", "json")
    assert result.code == 1, result
    doc = json.loads(result.out)
    assert doc["outcome"] == "refused" and doc["deploy"] is None
    assert doc["running"] == [{"where": "the stack's pinned binary", "version": FROM}]
    verdicts = {f["rule"]: f["verdict"] for f in doc["findings"] if f["verdict"] == "refuse"}
    assert set(verdicts) == {"etcd-health", "snapshot-age", "removed-apis"}  # no API, no snapshot yet
    after = root(aws)
    assert (after.get("LastUpdatedTime"), after["StackStatus"]) == (before.get("LastUpdatedTime"), before["StackStatus"])
    assert aws.cloudformation.list_change_sets(StackName=STACK)["Summaries"] == change_sets  # none made


def test_two_minors_at_once_are_refused_from_the_version_the_stack_pins(cli, config):
    result = cli("upgrade", "--config", config, "--to", "v1.35.9+k3s1", "--yes", "-o", "json")
    skew = [f for f in json.loads(result.out)["findings"] if f["rule"] == "version-skew"]
    assert result.code == 1 and skew[0]["verdict"] == "refuse" and f"{FROM} -> v1.35.9+k3s1" in skew[0]["message"]


@pytest.mark.parametrize("command", ["plan", "deploy"])
def test_an_edited_version_meets_the_same_pre_flight_in_plan_and_deploy(cli, config, aws, command):
    """The file's k3s.version edited by hand: plan and deploy run the upgrade's checks before any
    upload and refuse as upgrade does (no API here: etcd-health and removed-apis say no)."""
    edited = yaml.safe_load(Path(config).read_text())
    edited.setdefault("k3s", {})["version"] = TO
    path = Path(config).with_name(f"upg-edited-{command}.yaml")
    path.write_text(yaml.safe_dump(edited))
    before, change_sets = root(aws), aws.cloudformation.list_change_sets(StackName=STACK)["Summaries"]
    result = cli(command, "--config", str(path), *(["--yes"] if command == "deploy" else []), "-o", "json")
    assert result.code == 1, result
    error = json.loads(result.out)
    assert error["kind"] == "error" and "upgrade pre-flight refused" in json.dumps(error)
    assert "etcd-health" in result.err and "refuse" in result.err
    after = root(aws)
    assert (after.get("LastUpdatedTime"), after["StackStatus"]) == (before.get("LastUpdatedTime"), before["StackStatus"])
    assert aws.cloudformation.list_change_sets(StackName=STACK)["Summaries"] == change_sets


def test_with_the_api_rules_skipped_and_a_fresh_snapshot_it_rolls(cli, config, aws, release):
    folder, binary = release
    snapshots = {o["OutputKey"]: o["OutputValue"] for o in root(aws)["Outputs"]}["SnapshotBucketName"]
    aws.s3.put_object(Bucket=snapshots, Key="etcd/dev/etcd-snapshot-ip-10-0-0-5-1796385600", Body=b"etcd" * 100)
    result = cli("upgrade", "--config", config, "--to", TO, "--yes", "--artifacts", str(folder), "--write",
                 "--skip-check", "etcd-health", "--skip-check", "removed-apis")
    assert result.code == 0, result
    assert result.err.count("SKIPPED") == 2 and "snapshot-age     ok" in result.out
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in root(aws)["Parameters"]}
    assert parameters["K3sBinarySha256Amd64"] == binary and root(aws)["StackStatus"] == "UPDATE_COMPLETE"
    assert yaml.safe_load(Path(config).read_text())["k3s"]["version"] == TO
    again = cli("upgrade", "--config", config, "--to", TO, "--yes", "-o", "json")  # the stack pins TO now
    assert again.code == 0 and json.loads(again.out)["outcome"] == "up to date", again


def test_destroy(cli, config):
    assert cli("destroy", "--config", config, "--yes").code == 0
