"""k3s-infra init: a commented environment file that renders as is; nothing half-written."""

from __future__ import annotations

import yaml

from k3s_infra.cli import main
from tests.support.isolated import in_child


def test_init_writes_a_file_that_renders_and_finds_the_shipped_defaults(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a folder with no environments/ and no defaults.yaml
    assert main(["init", "trial", "--region", "eu-central-1"]) == 0
    path = tmp_path / "environments" / "trial.yaml"
    text = path.read_text()
    assert text.startswith("# k3s-infra environment") and "PLACEHOLDER" in text  # commented, placeholders marked
    doc = yaml.safe_load(text)
    assert doc["name"] == "trial" and doc["region"] == "eu-central-1" and doc["extends"] == "defaults.yaml"
    assert {s["az"] for s in doc["network"]["subnets"]} == {"eu-central-1a", "eu-central-1b"}
    assert str(path) in capsys.readouterr().out  # the hint names the absolute path
    assert main(["render", "--env", "trial", "--out", str(tmp_path / "build")]) == 0
    # the shipped defaults.yaml was merged in: its K3s version and managed-by tag
    assert "managed-by" in (tmp_path / "build" / "root.yaml").read_text()
    # and the packaged examples stay reachable beside the new ./environments
    assert main(["render", "--env", "dev", "--out", str(tmp_path / "dev")]) == 0


def test_init_never_replaces_a_file_without_force(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "mine.yaml"
    target.write_text("name: mine\n")
    assert main(["init", "mine", "--out", str(target)]) == 2
    assert "--force" in capsys.readouterr().err and target.read_text() == "name: mine\n"
    assert main(["init", "mine", "--out", str(target), "--force"]) == 0
    assert yaml.safe_load(target.read_text())["name"] == "mine"


def test_init_refuses_a_bad_name_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "Bad_Name"]) == 2
    err = capsys.readouterr().err
    assert "init NAME: 'Bad_Name' is not valid" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # not even the environments/ folder


@in_child  # mock_aws resets moto's backends: not those of this process's e2e server
def test_from_account_without_private_subnets_proposes_a_managed_network(tmp_path, monkeypatch):
    """moto's account has only its default VPC, whose subnets give instances public IPs
    (as AWS's default VPC does): nodes belong in private subnets, so init writes a managed
    network (network.create) instead, and the file renders."""
    from moto import mock_aws

    monkeypatch.chdir(tmp_path)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # a worker's e2e moto server: not this test's account
    with mock_aws():
        assert main(["init", "fresh", "--from-account", "--region", "eu-west-1"]) == 0
    doc = yaml.safe_load((tmp_path / "environments" / "fresh.yaml").read_text())
    assert doc["account_id"] == "123456789012"  # moto's account, read through STS
    assert set(doc["network"]) == {"create"} and doc["network"]["create"]["nat_gateways"] == "one"
    assert main(["render", "--env", "fresh", "--out", str(tmp_path / "build")]) == 0
