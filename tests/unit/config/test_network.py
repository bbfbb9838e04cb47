"""The network and API sections (k3s_infra/config/network.py): CIDRs, VPC and subnet ID shapes,
at least two subnets in two availability zones (three, each subnet's zone given, with three or
more servers), a created network that refuses brought fields, and the API's allowed CIDRs:
required for an internet-facing API, each listed once, at most 50 (EC2's 60 inbound rules per
security group, nodes take two), never the whole world unless ``open_to_world`` says so.
A refusal through the CLI exits 2 and writes nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from k3s_infra.config import validate
from tests.support.config_errors import paths, refused
from tests.support.config_errors import refused as _refused

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("field, value", [
    (("network", "vpc_cidr"), "10.0.0.1/16"),     # host bits set
    (("network", "vpc_cidr"), "10.0.0.0/33"),
    (("api", "allowed_cidrs"), ["not-a-cidr"]),
    (("k3s", "cluster_cidr"), "300.1.0.0/16"),
])
def test_invalid_cidrs(dev, field, value):
    dev[field[0]][field[1]] = value
    error = refused(dev)
    assert paths(error)[0].startswith(".".join(field)) and "CIDR" in str(error)


@pytest.mark.parametrize("field, value", [
    (("network", "vpc_id"), "vpc-XYZ"),
    (("network", "vpc_id"), "subnet-0a1b2c3d"),
])
def test_vpc_id_shape(dev, field, value):
    dev[field[0]][field[1]] = value
    assert paths(refused(dev)) == ["network.vpc_id"]


def test_subnet_id_shape(dev):
    dev["network"]["subnets"][1]["id"] = "sub-123"
    error = refused(dev)
    assert paths(error) == ["network.subnets[1].id"] and "subnet ID" in str(error)


def test_at_least_two_subnets(dev):
    dev["network"]["subnets"] = dev["network"]["subnets"][:1]
    assert paths(refused(dev)) == ["network.subnets"]


def test_subnets_must_span_two_zones_when_zones_are_given(dev):
    for subnet in dev["network"]["subnets"]:
        subnet["az"] = "eu-west-1a"
    error = refused(dev)
    assert paths(error) == ["network.subnets"] and "availability zones" in str(error)


def test_zone_spread_is_not_checked_when_zones_are_unknown(dev):
    for subnet in dev["network"]["subnets"]:
        subnet.pop("az")
    assert len(validate(dev, "env.yaml").network.subnets) == 2


def test_two_public_subnets_in_one_zone_are_refused(dev):
    """The internet-facing load balancer takes every public subnet, and at most one per zone
    (ELB API Reference, CreateLoadBalancer, Subnets); node subnets may share a zone."""
    dev["api"] = {**dev.get("api", {}), "scheme": "internet-facing", "allowed_cidrs": ["203.0.113.0/24"]}
    dev["network"]["public_subnets"] = [{"id": "subnet-0a1b2c3d4e5f60711", "az": "eu-west-1a"},
                                        {"id": "subnet-0a1b2c3d4e5f60712", "az": "eu-west-1b"},
                                        {"id": "subnet-0a1b2c3d4e5f60713", "az": "eu-west-1a"}]
    error = refused(dev)
    assert paths(error) == ["network.public_subnets[2].az"], error
    assert "subnet-0a1b2c3d4e5f60711" in str(error) and "one subnet per availability zone" in str(error)
    dev["network"]["public_subnets"].pop()
    dev["network"]["subnets"].append({"id": "subnet-0a1b2c3d4e5f60714", "az": dev["network"]["subnets"][0]["az"]})
    assert len(validate(dev, "env.yaml").network.subnets) == 3


# --- three or more servers: no zone may hold a majority (k3s_infra/model/placement.py) -----

def test_three_servers_in_two_zones_are_refused(dev):
    dev["servers"]["count"] = 3
    error = refused(dev)
    assert paths(error) == ["network.subnets"]
    assert "at least 3 availability zones" in str(error) and "got 2 (eu-west-1a, eu-west-1b)" in str(error)
    assert "majority" in str(error) and "quorum" in str(error)


def test_three_servers_need_the_zone_of_every_subnet(dev):
    dev["servers"]["count"] = 3
    dev["network"]["subnets"].append({"id": "subnet-0a1b2c3d4e5f60703", "az": "eu-west-1c"})
    assert validate(dev, "env.yaml").servers.count == 3
    dev["network"]["subnets"][1].pop("az")
    error = refused(dev)
    assert paths(error) == ["network.subnets[1].az"] and "zone of every node subnet" in str(error)


def test_a_created_network_of_two_zones_is_refused_for_three_servers(env_document):
    staging = env_document("staging")
    staging["network"]["create"]["availability_zones"] = 2
    error = _refused(staging)
    assert paths(error) == ["network.create.availability_zones"] and "at least 3 zones" in str(error)
    staging["servers"]["count"] = 1  # a lone server: any zone will do
    assert validate(staging, "env.yaml").network.create.availability_zones == 2


def test_three_servers_in_two_zones_exit_2_from_the_cli(dev, tmp_path):
    from k3s_infra.cli import main

    dev["servers"]["count"] = 3
    path = tmp_path / "two-zones.yaml"
    path.write_text(yaml.safe_dump(dev))
    assert main(["render", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_managed_network_refuses_brought_fields(env_document):
    staging = env_document("staging")
    staging["network"]["vpc_id"] = "vpc-0a1b2c3d4e5f60718"
    assert [p for p, _ in _refused(staging).problems] == ["network.vpc_id"]
    staging = env_document("staging")
    staging["network"]["create"]["nat_gateways"] = "two"
    assert [p for p, _ in _refused(staging).problems] == ["network.create.nat_gateways"]


# --- who may reach the API ---------------------------------------------------------

def test_internet_facing_api_needs_cidrs(prod):
    prod["api"]["allowed_cidrs"] = []
    assert paths(refused(prod)) == ["api.allowed_cidrs"]


def test_api_cidrs_listed_twice_are_refused(prod):
    prod["api"]["allowed_cidrs"] = ["203.0.113.0/24", "198.51.100.0/24", "203.0.113.0/24"]
    error = refused(prod)
    assert paths(error) == ["api.allowed_cidrs"] and "203.0.113.0/24" in str(error)


@pytest.mark.parametrize("world", ["0.0.0.0/0", "::/0"])
def test_world_open_api_needs_open_to_world(env_document, world):
    prod = env_document("prod")
    prod["api"]["allowed_cidrs"] = [world]
    error = _refused(prod)
    assert [p for p, _ in error.problems] == ["api.allowed_cidrs"] and "open_to_world" in str(error)


def test_an_api_open_to_the_world_on_purpose_is_accepted(env_document):
    prod = env_document("prod")
    prod["api"].update(allowed_cidrs=["0.0.0.0/0"], open_to_world=True)
    assert validate(prod, "env.yaml").api.allowed_cidrs == ["0.0.0.0/0"]


def test_world_open_api_exits_2_from_the_cli(env_document, tmp_path):
    from k3s_infra.cli import main

    prod = env_document("prod")
    prod["api"]["allowed_cidrs"] = ["0.0.0.0/0"]
    path = tmp_path / "open.yaml"
    path.write_text(yaml.safe_dump(prod))
    assert main(["render", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_too_many_api_cidrs_is_refused_by_the_config(env_document, tmp_path):
    document = env_document("prod")
    document["api"] = {**document["api"], "allowed_cidrs": [f"10.{i // 250}.{i % 250}.0/24" for i in range(60)]}
    env_file = tmp_path / "many.yaml"
    env_file.write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(ROOT / "build.py"), "--config", str(env_file), "--out", str(out)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "api.allowed_cidrs" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
