"""k3s-infra init --managed-network: the file gives the cluster a VPC of its own (network.create),
with or without --from-account, and renders with the Network stack."""

from __future__ import annotations

import yaml

from k3s_infra.cli import main
from tests.support.isolated import in_child

# environments/staging.yaml's shape of a managed network; init's choices for a trial: 10.0.0.0/16.
MANAGED = {"cidr": "10.0.0.0/16", "availability_zones": 3, "nat_gateways": "one"}


def test_managed_network_without_an_account_marks_the_account_a_placeholder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "trial", "--managed-network", "--region", "eu-central-1"]) == 0
    text = (tmp_path / "environments" / "trial.yaml").read_text()
    doc = yaml.safe_load(text)
    assert doc["network"] == {"create": MANAGED} and "PLACEHOLDER: your AWS account ID" in text
    assert main(["render", "--env", "trial", "--out", str(tmp_path / "build")]) == 0
    root = yaml.safe_load((tmp_path / "build" / "root.yaml").read_text())
    assert root["Resources"]["Network"]["Type"] == "AWS::CloudFormation::Stack"


@in_child  # mock_aws resets moto's backends: not those of this process's e2e server
def test_from_account_with_managed_network_reads_the_account_and_no_vpc(tmp_path, monkeypatch):
    """Even where a VPC with private subnets exists (which --from-account alone would take)."""
    import boto3
    from moto import mock_aws

    monkeypatch.chdir(tmp_path)
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):  # a worker's e2e moto server is not this test's
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="eu-west-1")
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        for index, zone in enumerate(("eu-west-1a", "eu-west-1b")):
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{index}.0/24", AvailabilityZone=zone)
        assert main(["init", "brought", "--from-account", "--region", "eu-west-1"]) == 0
        assert main(["init", "own", "--from-account", "--managed-network", "--region", "eu-west-1"]) == 0
    assert yaml.safe_load((tmp_path / "environments" / "brought.yaml").read_text())["network"]["vpc_id"] == vpc
    text = (tmp_path / "environments" / "own.yaml").read_text()
    doc = yaml.safe_load(text)
    assert doc["account_id"] == "123456789012" and doc["network"] == {"create": MANAGED}  # moto's account (STS)
    assert "PLACEHOLDER" not in text and "--managed-network" in text
