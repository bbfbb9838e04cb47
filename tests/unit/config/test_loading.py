"""Reading an environment file (k3s_infra/config/loading.py): the shipped environments load,
``extends`` merges mappings key by key while the child's lists and values replace the
parent's (docs/configuration.md), a mistake is blamed on the file that made it, unknown keys
are refused at every level, each problem names the field path as the user wrote it (pool
names, label keys) and what is wrong, and the JSON Schema for editors matches the model.
Expected values come from the files written here and the documents below, not from the code;
the exact messages were pinned to kill mutation survivors (tests/mutation/mutation_survivors.md).
"""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from k3s_infra.config import (
    ConfigError,
    available_environments,
    json_schema,
    load_environment,
    read_document,
    validate,
)
from tests.support.config_errors import paths, refused
from tests.support.oracle_helpers import REPO


def _refusal(document: dict, source: str = "dev.yaml") -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        validate(document, source)
    return caught.value


def _family(tmp_path, parent: str, child: str) -> None:
    (tmp_path / "base.yaml").write_text(parent)
    (tmp_path / "child.yaml").write_text("extends: base.yaml\n" + child)


# --- files, extends and the shipped environments ---------------------------------

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


def test_a_copied_environment_file_still_finds_the_shared_defaults(tmp_path):
    shipped = REPO / "environments" / "dev.yaml"
    copy = tmp_path / "my-dev.yaml"
    copy.write_text(shipped.read_text().replace("vpc-0a1b2c3d4e5f60718", "vpc-0123456789abcdef0"))
    env = load_environment(path=copy)
    assert env.network.vpc_id == "vpc-0123456789abcdef0"
    assert env.deploy.tags["managed-by"] == "k3s-infra"  # from environments/defaults.yaml


def test_a_mistake_in_a_list_set_by_the_parent_blames_the_parent(tmp_path, env_document):
    parent = copy.deepcopy(env_document("dev"))
    parent["agent_pools"][0]["min_size"] = -1
    _family(tmp_path, yaml.safe_dump(parent), "region: eu-west-1\n")
    with pytest.raises(ConfigError) as caught:
        load_environment(path=tmp_path / "child.yaml")
    assert caught.value.source.endswith("base.yaml")


def test_a_missing_field_of_a_section_set_by_the_parent_blames_the_parent(tmp_path, env_document):
    # network.vpc_id is not in either file: the deepest key a file set is the parent's `network`.
    parent = copy.deepcopy(env_document("dev"))
    del parent["network"]["vpc_id"]
    _family(tmp_path, yaml.safe_dump(parent), "k3s: {secrets_encryption: true}\n")
    with pytest.raises(ConfigError) as caught:
        load_environment(path=tmp_path / "child.yaml")
    assert caught.value.source.endswith("base.yaml")
    assert [path for path, _ in caught.value.problems] == ["network.vpc_id"]


def test_files_starting_with_an_underscore_and_defaults_are_not_environments(tmp_path):
    for name in ("_shared.yaml", "defaults.yaml", "staging.yaml", "dev.yaml"):
        (tmp_path / name).write_text("{}\n")
    assert available_environments(tmp_path) == ["dev", "staging"]


# --- field paths and messages ------------------------------------------------------

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


def test_an_unknown_key_is_named_as_such_with_the_closest_known_one(dev):
    dev["k3s"]["versoin"] = "v1.30.1+k3s1"
    assert _refusal(dev).problems == [("k3s.versoin", "unknown key; did you mean version?")]


def test_a_missing_required_field_is_named_as_such(dev):
    del dev["agent_pools"][0]["max_size"]
    pool = dev["agent_pools"][0]["name"]
    assert _refusal(dev).problems == [(f"agent_pools[{pool}].max_size", "required field is missing")]


def test_missing_required_fields(dev):
    del dev["network"]["vpc_id"]
    del dev["agent_pools"]
    error = refused(dev)
    assert sorted(paths(error)) == ["agent_pools", "network.vpc_id"]
    assert "required" in str(error)


def test_wrong_types_are_named(dev):
    dev["servers"]["count"] = "three"
    dev["protected"] = "yes"
    error = refused(dev)
    assert sorted(paths(error)) == ["protected", "servers.count"]
    assert "got str 'three'" in str(error)


def test_unquoted_account_id_is_refused_with_its_value(dev):
    dev["account_id"] = 123456789012
    assert "got int 123456789012" in str(refused(dev))


def test_a_wrong_choice_shows_the_value_and_its_type(dev):
    dev["k3s"]["flannel_backend"] = "host-gw"  # K3s supports it, this tool does not
    ((path, message),) = _refusal(dev).problems
    assert path == "k3s.flannel_backend" and message.endswith("(got str 'host-gw')")


def test_a_mapping_where_a_value_belongs_is_called_a_mapping_not_echoed(dev):
    dev["k3s"]["version"] = {"major": 1}
    ((path, message),) = _refusal(dev).problems
    assert path == "k3s.version" and message.endswith("(got a dict)")


def test_a_bad_label_key_is_reported_at_the_key_without_pydantic_tags(dev):
    dev["agent_pools"][0]["labels"] = {"a//b": "x"}
    pool = dev["agent_pools"][0]["name"]
    ((path, _),) = _refusal(dev).problems
    assert path == f"agent_pools[{pool}].labels.a//b"


# --- the JSON Schema ---------------------------------------------------------------

def test_json_schema_describes_every_section_and_forbids_extras():
    schema = json_schema()
    assert {"name", "region", "network", "servers", "agent_pools", "k3s", "api", "extends"} <= set(
        schema["properties"])
    assert schema["additionalProperties"] is False
    assert all(definition.get("additionalProperties") is False for definition in schema["$defs"].values()
               if definition.get("type") == "object")
    json.dumps(schema)


def test_shipped_schema_file_matches_the_model():
    shipped = REPO / "environments" / "schema.json"
    assert json.loads(shipped.read_text()) == json_schema(), "run `make schema` to refresh environments/schema.json"
