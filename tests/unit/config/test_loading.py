"""Config validation: every rule of an environment file, and how errors read."""

from __future__ import annotations

import copy
import json

import pytest

from k3s_infra.config import ConfigError, json_schema, load_environment, read_document, validate


def refused(document: dict) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        validate(document, "env.yaml")
    return caught.value


def paths(error: ConfigError) -> list[str]:
    return [path for path, _ in error.problems]


@pytest.fixture
def dev(env_document) -> dict:
    return copy.deepcopy(env_document("dev"))


@pytest.fixture
def prod(env_document) -> dict:
    return copy.deepcopy(env_document("prod"))


def test_shipped_environments_load():
    dev, prod = load_environment("dev"), load_environment("prod")
    assert dev.servers.count == 1 and len(dev.agent_pools) == 1
    assert prod.servers.count == 3 and len(prod.agent_pools) >= 2
    assert prod.api.scheme == "internet-facing" and prod.api.allowed_cidrs
    assert prod.k3s.etcd_snapshots.enabled
    assert any(p.spot and len(p.instance_types) > 1 for p in prod.agent_pools)
    assert any(p.spot is None for p in prod.agent_pools)


def test_extends_merges_mappings_and_child_lists_win(tmp_path):
    (tmp_path / "base.yaml").write_text("k3s: {version: v1.30.1+k3s1, disable: [traefik]}\nregion: eu-west-1\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nk3s: {disable: [servicelb]}\nregion: us-east-2\n")
    document = read_document(tmp_path / "child.yaml")
    assert document["k3s"] == {"version": "v1.30.1+k3s1", "disable": ["servicelb"]}
    assert document["region"] == "us-east-2"
    assert "extends" not in document


def test_extends_cycle_and_missing_parent_are_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\n")
    for name, text in (("a.yaml", "circular"), ("c.yaml", "not found")):
        with pytest.raises(ConfigError) as caught:
            load_environment(path=tmp_path / name)
        assert caught.value.problems[0][0] == "extends" and text in str(caught.value)


@pytest.mark.parametrize("where", [(), ("network",), ("network", "subnets", 0), ("api",), ("k3s",),
                                   ("k3s", "etcd_snapshots"), ("servers",), ("agent_pools", 0), ("deploy",)])
def test_unknown_keys_are_refused_at_every_level(dev, where):
    node = dev
    for step in where:
        node = node[step]
    node["surprise"] = 1
    error = refused(dev)
    expected = {
        (): "surprise", ("network", "subnets", 0): "network.subnets[0].surprise",
        ("agent_pools", 0): "agent_pools[general].surprise",
    }.get(where, ".".join(map(str, where)) + ".surprise")
    assert paths(error) == [expected]
    assert "unknown key" in str(error)


@pytest.mark.parametrize("count", [2, 4])
def test_even_server_count_breaks_etcd_quorum(dev, count):
    dev["servers"]["count"] = count
    error = refused(dev)
    assert paths(error) == ["servers.count"] and "odd" in str(error)


@pytest.mark.parametrize("count", [1, 3, 5])
def test_odd_server_counts_are_accepted(dev, count):
    dev["servers"]["count"] = count
    assert validate(dev, "env.yaml").servers.count == count


@pytest.mark.parametrize("sizes", [(2, 1, 3), (0, 4, 3), (3, 2, 1)])
def test_pool_sizes_need_min_le_desired_le_max(dev, sizes):
    pool = dev["agent_pools"][0]
    pool["min_size"], pool["desired"], pool["max_size"] = sizes
    error = refused(dev)
    assert paths(error) == ["agent_pools[general].desired"]


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


def test_subnet_zone_must_be_in_region(dev):
    dev["network"]["subnets"][0]["az"] = "us-east-1a"
    assert "outside region" in str(refused(dev))


@pytest.mark.parametrize("version", ["1.33.5+k3s1", "v1.33.5", "v1.33.5-k3s1", "latest"])
def test_k3s_version_string(dev, version):
    dev["k3s"]["version"] = version
    error = refused(dev)
    assert paths(error) == ["k3s.version"] and "K3s release" in str(error)


@pytest.mark.parametrize("where", ["servers", "pool"])
def test_instance_types(dev, where):
    if where == "servers":
        dev["servers"]["instance_type"] = "T3 Medium"
        expected = "servers.instance_type"
    else:
        dev["agent_pools"][0]["instance_types"] = ["t3.small", "huge"]
        expected = "agent_pools[general].instance_types[1]"
    assert paths(refused(dev)) == [expected]


def test_wrong_types_are_named(dev):
    dev["servers"]["count"] = "three"
    dev["protected"] = "yes"
    error = refused(dev)
    assert sorted(paths(error)) == ["protected", "servers.count"]
    assert "got str 'three'" in str(error)


def test_unquoted_account_id_is_refused_with_its_value(dev):
    dev["account_id"] = 123456789012
    assert "got int 123456789012" in str(refused(dev))


def test_missing_required_fields(dev):
    del dev["network"]["vpc_id"]
    del dev["agent_pools"]
    error = refused(dev)
    assert sorted(paths(error)) == ["agent_pools", "network.vpc_id"]
    assert "required" in str(error)


def test_internet_facing_api_needs_cidrs(prod):
    prod["api"]["allowed_cidrs"] = []
    assert paths(refused(prod)) == ["api.allowed_cidrs"]


def test_pool_names_unique(prod):
    prod["agent_pools"][1]["name"] = prod["agent_pools"][0]["name"]
    assert paths(refused(prod)) == ["agent_pools"]


def test_cluster_networks_must_not_overlap_vpc(dev):
    dev["k3s"]["cluster_cidr"] = "10.0.128.0/17"
    assert paths(refused(dev)) == ["k3s.cluster_cidr"]


def test_cluster_dns_inside_service_cidr(dev):
    dev["k3s"]["cluster_dns"] = "10.99.0.10"
    assert paths(refused(dev)) == ["k3s.cluster_dns"]


@pytest.mark.parametrize("taint, ok", [("dedicated=gpu:NoSchedule", True), ("gpu:NoExecute", True),
                                       ("gpu=true", False), ("a=b:Sometimes", False)])
def test_taints(dev, taint, ok):
    dev["agent_pools"][0]["taints"] = [taint]
    if ok:
        assert validate(dev, "env.yaml").agent_pools[0].taints == [taint]
    else:
        assert paths(refused(dev)) == ["agent_pools[general].taints[0]"]


def test_reserved_tag_prefixes(dev):
    dev["deploy"]["tags"] = {"aws:owner": "me"}
    assert paths(refused(dev)) == ["deploy.tags"]


def test_error_message_names_file_path_and_problem(dev):
    dev["servers"]["count"] = 2
    assert str(refused(dev)) == "env.yaml: servers.count: must be odd for etcd quorum (1, 3, 5, ...), got 2"


def test_defaults_and_derived_names(dev):
    env = validate(dev, "env.yaml")
    assert env.stack_name == "k3s-dev"
    assert env.artifact_bucket == "k3s-infra-123456789012-eu-west-1"
    assert env.k3s.secrets_encryption and env.k3s.server_taint


def test_json_schema_describes_every_section_and_forbids_extras():
    schema = json_schema()
    assert {"name", "region", "network", "servers", "agent_pools", "k3s", "api", "extends"} <= set(
        schema["properties"])
    assert schema["additionalProperties"] is False
    assert all(definition.get("additionalProperties") is False for definition in schema["$defs"].values()
               if definition.get("type") == "object")
    json.dumps(schema)


def test_shipped_schema_file_matches_the_model():
    from pathlib import Path

    shipped = Path(__file__).resolve().parent.parent / "environments" / "schema.json"
    assert json.loads(shipped.read_text()) == json_schema(), "run `make schema` to refresh environments/schema.json"


def test_a_copied_environment_file_still_finds_the_shared_defaults(tmp_path):
    from pathlib import Path

    shipped = Path(__file__).resolve().parent.parent / "environments" / "dev.yaml"
    copy = tmp_path / "my-dev.yaml"
    copy.write_text(shipped.read_text().replace("vpc-0a1b2c3d4e5f60718", "vpc-0123456789abcdef0"))
    env = load_environment(path=copy)
    assert env.network.vpc_id == "vpc-0123456789abcdef0"
    assert env.deploy.tags["managed-by"] == "k3s-infra"  # from environments/defaults.yaml


def test_api_cidrs_listed_twice_are_refused(prod):
    prod["api"]["allowed_cidrs"] = ["203.0.113.0/24", "198.51.100.0/24", "203.0.113.0/24"]
    error = refused(prod)
    assert paths(error) == ["api.allowed_cidrs"] and "203.0.113.0/24" in str(error)
