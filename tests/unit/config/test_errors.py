"""The exact shape of a refused environment file's message: which file is blamed, the
field path as the user wrote it (pool names, label keys) and what is wrong, on one line
per problem. Added to kill mutation survivors (tests/mutation_survivors.md); expected
values come from the files written here and the documents below, not from the code."""

from __future__ import annotations

import copy

import pytest
import yaml

from k3s_infra.config import rules as config_rules
from k3s_infra.config import ConfigError, available_environments, load_environment, validate


@pytest.fixture
def dev(env_document) -> dict:
    return copy.deepcopy(env_document("dev"))


def _refusal(document: dict, source: str = "dev.yaml") -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        validate(document, source)
    return caught.value


def test_an_unknown_key_is_named_as_such(dev):
    dev["k3s"]["versoin"] = "v1.30.1+k3s1"
    assert _refusal(dev).problems == [("k3s.versoin", "unknown key")]


def test_a_missing_required_field_is_named_as_such(dev):
    del dev["agent_pools"][0]["max_size"]
    pool = dev["agent_pools"][0]["name"]
    assert _refusal(dev).problems == [(f"agent_pools[{pool}].max_size", "required field is missing")]


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


def test_each_problem_is_one_bounded_line_whatever_the_file_name_or_value(dev):
    dev["k3s"]["versoin"] = 1
    error = _refusal(dev, source="evil\nname.yaml")
    assert error.source == "evil\nname.yaml"  # kept as given for callers; escaped when shown
    assert "\n" not in str(error) and "evil\\x0aname.yaml" in str(error)
    long = ConfigError("dev.yaml", [("k3s.version", "x" * 450 + "\nnext")])
    assert "\n" not in str(long) and "x" * 450 in str(long)  # a 450-character problem is not cut
    cut = ConfigError("dev.yaml", [("k3s.version", "y" * 2000)])
    assert len(str(cut)) <= len("dev.yaml: ") + 500 + 1  # at most 500 characters and an ellipsis


def _family(tmp_path, parent: str, child: str) -> None:
    (tmp_path / "base.yaml").write_text(parent)
    (tmp_path / "child.yaml").write_text("extends: base.yaml\n" + child)


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


# --- S3 bucket names (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html)

@pytest.mark.parametrize("name", ["my.-bucket", "my-.bucket", "a..b"])
def test_a_period_next_to_a_dash_or_a_period_is_refused(name):
    with pytest.raises(ValueError, match=r"no '\.\.', '\.-' or '-\.'"):
        config_rules.bucket_name(name)


def test_a_bucket_name_refusal_says_the_rule_and_echoes_at_most_80_characters():
    with pytest.raises(ValueError) as caught:
        config_rules.bucket_name("B" * 100)
    message = str(caught.value)
    assert message.startswith(repr("B" * 80) + ":")
    assert "3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit" in message


def test_a_reserved_bucket_name_lists_what_s3_reserves():
    with pytest.raises(ValueError) as caught:
        config_rules.bucket_name("bucket--ol-s3")
    assert "xn--, sthree-, amzn-s3-demo-" in str(caught.value)
    assert "-s3alias, --ol-s3, .mrap, --x-s3, --table-s3" in str(caught.value)
