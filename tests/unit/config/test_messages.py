"""Messages a user can act on (k3s_infra/config/loading.py):
- a long ``extends`` chain reports the depth limit (loading.MAX_EXTENDS), not Python's
  RecursionError, and reads no more files than the limit;
- a rule across fields (k3s.cluster_cidr overlaps network.vpc_cidr) is blamed on the file that
  set the value it is about, names the file of the other value when that is another, and, when
  the value it is about is a default, is blamed on the file that set the other one;
- problems name the file the user gave, never a temporary copy (read_document's ``shown``);
- an unknown key names the closest field of its section (difflib), a hint is not a problem.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from k3s_infra.config import ConfigError, load_environment, read_document, validate
from k3s_infra.config.loading import MAX_EXTENDS


def _refusal(path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_environment(path=path)
    return caught.value


def test_a_chain_of_1200_extends_reports_the_depth_limit(tmp_path, env_document):
    (tmp_path / "f0.yaml").write_text(yaml.safe_dump(env_document("dev")))
    for index in range(1, 1200):
        (tmp_path / f"f{index}.yaml").write_text(f"extends: f{index - 1}.yaml\n")
    error = _refusal(tmp_path / "f1199.yaml")
    assert [path for path, _ in error.problems] == ["extends"]
    assert f"more than {MAX_EXTENDS} files deep" in str(error)
    assert "Recursion" not in str(error) and "\n" not in str(error)


def test_a_chain_within_the_limit_loads(tmp_path, env_document):
    (tmp_path / "f0.yaml").write_text(yaml.safe_dump(env_document("dev")))
    for index in range(1, MAX_EXTENDS):
        (tmp_path / f"f{index}.yaml").write_text(f"extends: f{index - 1}.yaml\n")
    assert load_environment(path=tmp_path / f"f{MAX_EXTENDS - 1}.yaml").name == "dev"


def _family(tmp_path, parent: dict, child: str) -> None:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(parent))
    (tmp_path / "child.yaml").write_text("extends: base.yaml\n" + child)


def test_an_overlap_with_a_default_range_is_blamed_on_the_file_that_set_the_vpc(tmp_path, env_document):
    """The parent sets k3s (its version) but not k3s.cluster_cidr: the default 10.42.0.0/16
    collides with the child's VPC, and the child is the file to change."""
    parent = copy.deepcopy(env_document("dev"))
    parent["k3s"] = {"version": parent.get("k3s", {}).get("version", "v1.33.5+k3s1")}
    _family(tmp_path, parent, "network:\n  vpc_cidr: 10.42.0.0/16\napi:\n  allowed_cidrs: [10.42.0.0/16]\n")
    error = _refusal(tmp_path / "child.yaml")
    assert error.source == str(tmp_path / "child.yaml")
    assert [path for path, _ in error.problems] == ["k3s.cluster_cidr"]
    assert "10.42.0.0/16 overlaps network.vpc_cidr 10.42.0.0/16" in str(error)


def test_an_overlap_names_the_file_of_each_value(tmp_path, env_document):
    parent = copy.deepcopy(env_document("dev"))
    parent.setdefault("k3s", {})["cluster_cidr"] = "10.0.0.0/16"
    _family(tmp_path, parent, "network:\n  vpc_cidr: 10.0.0.0/16\n")
    error = _refusal(tmp_path / "child.yaml")
    assert error.source == str(tmp_path / "base.yaml")  # the value the problem is about
    assert f"network.vpc_cidr is set in {tmp_path / 'child.yaml'}" in str(error)


def test_an_overlap_set_in_one_file_names_only_that_file(tmp_path, env_document):
    parent = copy.deepcopy(env_document("dev"))
    parent.setdefault("k3s", {})["cluster_cidr"] = "10.0.0.0/16"
    _family(tmp_path, parent, "name: other\n")
    error = _refusal(tmp_path / "child.yaml")
    assert error.source == str(tmp_path / "base.yaml") and "is set in" not in str(error)


def test_problems_name_the_file_shown_not_a_temporary_copy(tmp_path):
    temporary = tmp_path / ".dev.yaml.k2j3h4.yaml"
    temporary.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        read_document(temporary, shown="environments/dev.yaml")
    assert caught.value.source == "environments/dev.yaml" and "k2j3h4" not in str(caught.value)


# --- did you mean, and what a message counts -----------------------------------------

@pytest.mark.parametrize("where, typo, known", [
    ((), "extend", "extends"),                                   # the parent file key, read before validation
    (("agent_pools", 0), "max_szie", "max_size"),                # inside a list item
    (("network", "subnets", 0), "azz", "az"),                    # a list inside a section
    (("addons",), "longhorm", "longhorn"),                       # the add-ons section's own fields
    (("k3s", "etcd_snapshots"), "schedul", "schedule"),          # two levels down
])
def test_an_unknown_key_suggests_the_closest_field_of_its_section(env_document, where, typo, known):
    document = env_document("prod")
    node = document
    for step in where:
        node = node.setdefault(step, {}) if isinstance(step, str) else node[step]
    node[typo] = "x"
    with pytest.raises(ConfigError) as caught:
        validate(document, "prod.yaml")
    ((path, message),) = caught.value.problems
    assert path.endswith(typo) and message == f"unknown key; did you mean {known}?"


def test_an_unknown_key_like_no_field_gets_no_guess(env_document):
    document = env_document("dev")
    document["servers"]["colour"] = "blue"
    with pytest.raises(ConfigError) as caught:
        validate(document, "dev.yaml")
    assert caught.value.problems == [("servers.colour", "unknown key")]


def test_a_hint_is_a_line_of_its_own_and_not_a_problem():
    one = ConfigError("dev.yaml", [("network.vpc_id", "vpc-0abc does not exist")], hint="nothing was changed")
    assert str(one) == "dev.yaml: network.vpc_id: vpc-0abc does not exist\nnothing was changed"
    two = ConfigError("dev.yaml", [("a", "x"), ("b", "y")], hint="nothing was changed")
    assert str(two).splitlines() == ["dev.yaml: 2 problems", "  a: x", "  b: y", "nothing was changed"]
    assert two.problems == [("a", "x"), ("b", "y")] and two.hint == "nothing was changed"
