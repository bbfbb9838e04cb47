"""Property-based tests of the config loader: a mutated environment file ends in
either a cfn-lint-clean render or a ConfigError naming a field, never anything else.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from k3s_infra.config import ConfigError, load_environment, read_document, validate
from k3s_infra.render import render, write


ENVIRONMENTS = Path(__file__).resolve().parents[2] / "environments"

BASES = {name: read_document(ENVIRONMENTS / f"{name}.yaml") for name in ("dev", "prod")}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12), st.sampled_from(["t3.large", "10.1.0.0/16", "0.0.0.0/0", "vpc-0123456789abcdef0",
                                           "subnet-0123456789abcdef0", "eu-west-1c", "v1.30.2+k3s1", "wireguard-native",
                                           "internet-facing", "", "-", "a" * 300]))

values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=6)


def paths(node, prefix=()):
    """Every (path, value) in a document, containers included."""
    yield prefix, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, prefix + (index,))


@st.composite
def mutated(draw):
    document = copy.deepcopy(BASES[draw(st.sampled_from(sorted(BASES)))])
    for _ in range(draw(st.integers(1, 3))):
        candidates = list(paths(document))
        path, node = draw(st.sampled_from(candidates))
        action = draw(st.sampled_from(["replace", "delete", "add_key", "duplicate"]))
        if not path:
            action = "add_key"
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif action == "add_key" and isinstance(node, dict):
            node[draw(st.text(min_size=1, max_size=8))] = draw(values)
        elif action == "duplicate" and isinstance(node, list) and node:
            node.append(copy.deepcopy(node[0]))
    return document


def check(document, linter, folder: Path):
    try:
        env = validate(document, "fuzz.yaml")
    except ConfigError as error:
        assert error.problems and all(isinstance(p, str) and m for p, m in error.problems)
        assert any(p for p, _ in error.problems) or "mapping" in str(error)
        return
    rendering = render(env)
    out = write(rendering, folder / env.name)
    findings = linter.lint_rendering(rendering, out)
    assert findings == [], findings


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(mutated())
def test_mutated_environments_render_clean_or_are_refused_by_field(linter, tmp_path_factory, document):
    check(document, linter, tmp_path_factory.mktemp("fuzz"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_arbitrary_text_is_refused_as_config_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("text") / "env.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_environment(path=path)
    except ConfigError as error:
        assert str(path) in str(error)
    else:  # pragma: no cover - random text is never a complete environment
        raise AssertionError("random text validated as an environment")


def test_yaml_round_trip_of_a_shipped_environment_is_still_valid(tmp_path):
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump(BASES["dev"]))
    assert load_environment(path=path).name == "dev"
