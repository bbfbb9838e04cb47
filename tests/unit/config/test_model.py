"""The Environment model (k3s_infra/config/model.py) and its sections: etcd quorum (an odd
server count), pool sizes, the shapes of versions and instance types, taints, reserved tags,
the cluster's networks against the VPC, the public subnets an internet-facing API needs, one
architecture per pool (Graviton families: https://aws.amazon.com/ec2/graviton/; the
single-image form of before refused with the new form shown), and the switches derived from
the file: draining when a pool runs on spot, the cluster autoscaler when a pool can grow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from k3s_infra.config import validate
from tests.support.config_errors import paths, refused
from tests.support.config_errors import refused as _refused
from tests.support.rendering import render_changed_dev as _render

ROOT = Path(__file__).resolve().parents[3]


def _pool(document: dict) -> dict:
    return document["agent_pools"][0]


# --- servers and pools -------------------------------------------------------------

@pytest.mark.parametrize("count", [2, 4])
def test_even_server_count_breaks_etcd_quorum(dev, count):
    dev["servers"]["count"] = count
    error = refused(dev)
    assert paths(error) == ["servers.count"] and "odd" in str(error)


@pytest.mark.parametrize("count", [1, 3, 5])
def test_odd_server_counts_are_accepted(dev, count):
    dev["servers"]["count"] = count
    # three or more servers need a third zone (tests/unit/config/test_network.py)
    dev["network"]["subnets"].append({"id": "subnet-0a1b2c3d4e5f60703", "az": "eu-west-1c"})
    assert validate(dev, "env.yaml").servers.count == count


@pytest.mark.parametrize("sizes", [(2, 1, 3), (0, 4, 3), (3, 2, 1)])
def test_pool_sizes_need_min_le_desired_le_max(dev, sizes):
    pool = dev["agent_pools"][0]
    pool["min_size"], pool["desired"], pool["max_size"] = sizes
    error = refused(dev)
    assert paths(error) == ["agent_pools[general].desired"]


def test_pool_names_unique(prod):
    prod["agent_pools"][1]["name"] = prod["agent_pools"][0]["name"]
    assert paths(refused(prod)) == ["agent_pools"]


@pytest.mark.parametrize("where", ["servers", "pool"])
def test_instance_types(dev, where):
    if where == "servers":
        dev["servers"]["instance_type"] = "T3 Medium"
        expected = "servers.instance_type"
    else:
        dev["agent_pools"][0]["instance_types"] = ["t3.small", "huge"]
        expected = "agent_pools[general].instance_types[1]"
    assert paths(refused(dev)) == [expected]


@pytest.mark.parametrize("taint, ok", [("dedicated=gpu:NoSchedule", True), ("gpu:NoExecute", True),
                                       ("gpu=true", False), ("a=b:Sometimes", False)])
def test_taints(dev, taint, ok):
    dev["agent_pools"][0]["taints"] = [taint]
    if ok:
        assert validate(dev, "env.yaml").agent_pools[0].taints == [taint]
    else:
        assert paths(refused(dev)) == ["agent_pools[general].taints[0]"]


@pytest.mark.parametrize("version", ["1.33.5+k3s1", "v1.33.5", "v1.33.5-k3s1", "latest"])
def test_k3s_version_string(dev, version):
    dev["k3s"]["version"] = version
    error = refused(dev)
    assert paths(error) == ["k3s.version"] and "K3s release" in str(error)


def test_reserved_tag_prefixes(dev):
    dev["deploy"]["tags"] = {"aws:owner": "me"}
    assert paths(refused(dev)) == ["deploy.tags"]


def test_defaults_and_derived_names(dev):
    env = validate(dev, "env.yaml")
    assert env.stack_name == "k3s-dev"
    assert env.artifact_bucket == "k3s-infra-123456789012-eu-west-1"
    assert env.k3s.secrets_encryption and env.k3s.server_taint


# --- networks: the cluster's against the VPC, subnets in the region, public subnets ---

def test_cluster_networks_must_not_overlap_vpc(dev):
    dev["k3s"]["cluster_cidr"] = "10.0.128.0/17"
    assert paths(refused(dev)) == ["k3s.cluster_cidr"]


def test_cluster_dns_inside_service_cidr(dev):
    dev["k3s"]["cluster_dns"] = "10.99.0.10"
    assert paths(refused(dev)) == ["k3s.cluster_dns"]


def test_subnet_zone_must_be_in_region(dev):
    dev["network"]["subnets"][0]["az"] = "us-east-1a"
    assert "outside region" in str(refused(dev))


def test_internet_facing_needs_public_subnets_in_two_zones(env_document):
    prod = env_document("prod")
    del prod["network"]["public_subnets"]
    error = _refused(prod)
    assert [p for p, _ in error.problems] == ["network.public_subnets"] and "env.yaml" in str(error)
    prod = env_document("prod")
    prod["network"]["public_subnets"] = [{**s, "az": "eu-west-1a"} for s in prod["network"]["public_subnets"]]
    assert [p for p, _ in _refused(prod).problems] == ["network.public_subnets"]


def test_public_subnets_are_refused_for_an_internal_api(env_document):
    dev = env_document("dev")
    dev["network"]["public_subnets"] = [{"id": "subnet-0a1b2c3d4e5f60799", "az": "eu-west-1a"},
                                        {"id": "subnet-0a1b2c3d4e5f60798", "az": "eu-west-1b"}]
    error = _refused(dev)
    assert [p for p, _ in error.problems] == ["network.public_subnets"] and "internet-facing" in str(error)


# --- architectures: one image per pool ---------------------------------------------

def test_a_pool_mixing_architectures_is_refused_by_the_cli(tmp_path):
    result = _render(tmp_path, lambda d: _pool(d).update(instance_types=["m6i.large", "m7g.large"]))
    assert result.returncode == 2, result.stderr
    name = yaml.safe_load((ROOT / "environments" / "dev.yaml").read_text())["agent_pools"][0]["name"]
    assert f"agent_pools[{name}].instance_types: mixes architectures" in result.stderr
    assert "m6i.large (x86_64)" in result.stderr and "m7g.large (arm64)" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("field, value", [
    ("ami_parameter", "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"),
    ("ami_id", "ami-0123456789abcdef0")])
def test_the_single_image_form_is_refused_showing_the_new_form(tmp_path, field, value):
    result = _render(tmp_path, lambda d: d.setdefault("nodes", {}).update({field: value}))
    assert result.returncode == 2, result.stderr
    assert f"nodes.{field}: one per architecture: write {field}: {{x86_64: " in result.stderr
    assert value in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


# --- switches derived from the file --------------------------------------------------

def test_draining_defaults_to_on_exactly_when_a_pool_runs_on_spot(rendered):
    assert not any(p.spot for p in rendered["dev"].env.agent_pools) and not rendered["dev"].env.draining
    assert any(p.spot for p in rendered["prod"].env.agent_pools) and rendered["prod"].env.draining


def test_on_by_default_when_a_pool_can_grow(env_document):
    document = env_document("dev")  # dev.yaml: general 1..3
    assert validate(document, "dev.yaml").autoscaling
    document["agent_pools"][0].update(min_size=2, desired=2, max_size=2)
    assert not validate(document, "dev.yaml").autoscaling
