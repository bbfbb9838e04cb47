"""`k3s-infra emulator start` for real (its own process, detached): what it prints is shell
text, the VPC it seeds is routed as AWS routes one (read back with the test's own EC2 client),
a second start is refused, and `stop` ends the process. The walkthrough that deploys into it:
test_readme_walkthrough.py."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

ZONES = 3  # issue 26: three zones of the region


def _cli(cache, *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "K3S_INFRA_"))}
    return subprocess.run([sys.executable, "-m", "k3s_infra", *argv], capture_output=True, text=True, timeout=90,
                          env={**env, "XDG_CACHE_HOME": str(cache)})


@pytest.fixture(scope="module")
def started(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    result = _cli(cache, "emulator", "start", "--port", "0", "--region", "eu-central-1")
    try:
        assert result.returncode == 0, result
        record = json.loads((cache / "k3s-infra" / "emulator.json").read_text())
        yield cache, result, record
    finally:
        _cli(cache, "emulator", "stop")


@pytest.fixture(scope="module")
def ec2(started):
    _, _, record = started
    return boto3.client("ec2", region_name="eu-central-1", endpoint_url=f"http://127.0.0.1:{record['port']}",
                        aws_access_key_id="x", aws_secret_access_key="x")


def test_start_prints_only_shell_text_that_exports_the_endpoint(started):
    _, result, record = started
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith(("# ", "#   ", "export ", "unset ")) for line in lines), result.stdout
    shell = subprocess.run(["/bin/sh", "-c", result.stdout + 'echo "$AWS_ENDPOINT_URL $AWS_DEFAULT_REGION"'],
                           capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert shell.stdout == f"http://127.0.0.1:{record['port']} eu-central-1\n"
    assert "no node boots here" in result.stdout  # it says what it fakes


def _default_route(table: dict) -> dict:
    """The table's 0.0.0.0/0 route ({} where it has none: the VPC's main table)."""
    return next((r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"), {})


def test_the_seeded_vpc_has_public_and_private_subnets_in_three_zones(ec2, started):
    _, _, record = started
    vpc = record["network"]["vpc_id"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    tables = {a["SubnetId"]: t for t in ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"] for a in t["Associations"] if a.get("SubnetId")}
    public = [s for s in subnets if _default_route(tables[s["SubnetId"]]).get("GatewayId", "").startswith("igw-")]
    private = [s for s in subnets if _default_route(tables[s["SubnetId"]]).get("NatGatewayId")]
    assert len(public) == len(private) == ZONES and len(subnets) == 2 * ZONES
    zones = sorted(z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"])[:ZONES]
    assert sorted(s["AvailabilityZone"] for s in public) == sorted(s["AvailabilityZone"] for s in private) == zones
    assert all(s["MapPublicIpOnLaunch"] for s in public) and not any(s["MapPublicIpOnLaunch"] for s in private)
    (gateway,) = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])[
        "InternetGateways"]
    assert {_default_route(tables[s["SubnetId"]])["GatewayId"] for s in public} == {gateway["InternetGatewayId"]}
    # the NAT gateway the private subnets leave through sits in a public subnet
    (nat_id,) = {_default_route(tables[s["SubnetId"]])["NatGatewayId"] for s in private}
    (nat,) = ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"]
    assert nat["SubnetId"] in {s["SubnetId"] for s in public}
    cidr = ipaddress.ip_network(ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["CidrBlock"])
    assert all(ipaddress.ip_network(s["CidrBlock"]).subnet_of(cidr) for s in subnets)


def test_the_seeded_vpc_has_an_s3_gateway_endpoint_on_the_private_route_table(ec2, started):
    _, _, record = started
    vpc = record["network"]["vpc_id"]
    (endpoint,) = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
    # https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-s3.html: com.amazonaws.<region>.s3, Gateway
    assert endpoint["ServiceName"] == "com.amazonaws.eu-central-1.s3" and endpoint["VpcEndpointType"] == "Gateway"
    private_tables = {t["RouteTableId"] for t in ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"] if _default_route(t).get("NatGatewayId")}
    assert set(endpoint["RouteTableIds"]) == private_tables


def test_a_second_start_is_refused_and_stop_ends_it(started):
    cache, _, record = started
    again = _cli(cache, "emulator", "start", "--port", "0")
    assert again.returncode == 2 and "already running" in again.stderr, again
    stopped = _cli(cache, "emulator", "stop")
    assert stopped.returncode == 0 and f"pid {record['pid']}" in stopped.stdout, stopped
    assert not (cache / "k3s-infra" / "emulator.json").exists()
    client = boto3.client("ec2", region_name="eu-central-1", endpoint_url=f"http://127.0.0.1:{record['port']}",
                          aws_access_key_id="x", aws_secret_access_key="x",
                          config=Config(retries={"max_attempts": 0}, connect_timeout=2))
    with pytest.raises(EndpointConnectionError):  # nothing listens there any more
        client.describe_vpcs()
