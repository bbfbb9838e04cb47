"""Typed YAML values get one clean line naming the field, never a traceback
(k3s_infra/config/yaml_load.py):
- PyYAML resolves ``2024-13-45`` as a timestamp and fails building it; ``!!bool maybe``,
  ``!!int abc``, ``!!float x``, ``!!timestamp x`` fail the same way; an integer of 5,000 digits
  passes Python's int-str conversion limit (4,300 digits by default, sys.get_int_max_str_digits).
- Values JSON cannot carry (sets, binary, ordered maps, pairs, .inf, .nan) are refused naming the
  field: add-on values become Helm values, which are JSON.
- Dates are kept as the text written, as Helm reads them: go-yaml keeps a timestamp decoded into
  ``interface{}`` as its string (gopkg.in/yaml.v2 decode.go ``d.scalar``, "for backward
  compatibility reasons we set it as a string"), so ``2024-01-05`` in add-on values reaches the
  chart as "2024-01-05".
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from k3s_infra.config import ConfigError, load_environment, validate
from tests.support.oracle_helpers import REPO

DEV = (REPO / "environments" / "dev.yaml").read_text()


def env_file(tmp_path, extra: str) -> object:
    path = tmp_path / "env.yaml"
    path.write_text(DEV.replace("name: dev\n", "") + extra)
    return path


def problem(tmp_path, extra: str) -> tuple[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_environment(path=env_file(tmp_path, extra))
    ((path, message),) = caught.value.problems
    assert "Traceback" not in message and "\n" not in message
    return path, message


TYPED = {
    # text after the environment file (which lost its name: line); field path; words of the message
    "impossible date as a name": ("name: 2024-13-45\n", "name", "is not valid"),
    "a date as a name": ("name: 2024-01-05\n", "name", "is not valid"),
    "bool maybe": ("name: dev\nprotected: !!bool maybe\n", "protected", "not a boolean"),
    "bad int": ("name: dev\nk3s: {etcd_snapshots: {retention: !!int three}}\n", "k3s.etcd_snapshots.retention",
                "not an integer"),
    "empty int": ("name: dev\nk3s: {etcd_snapshots: {retention: !!int ''}}\n", "k3s.etcd_snapshots.retention",
                  "not an integer"),
    "bad float": ("name: dev\naddons: {grafana: {values: {ratio: !!float lots}}}\n",
                  "addons.grafana.values.ratio", "not a number"),
    "bad timestamp": ("name: dev\naddons: {grafana: {values: {at: !!timestamp soon}}}\n",
                      "addons.grafana.values.at", "not a timestamp"),
    "5,000-digit integer": (f"name: dev\nk3s: {{etcd_snapshots: {{retention: {'7' * 5000}}}}}\n",
                            "k3s.etcd_snapshots.retention", "5,000 digits"),
    "5,000-digit integer in add-on values": (f"name: dev\naddons: {{grafana: {{values: {{n: {'1' * 5000}}}}}}}\n",
                                             "addons.grafana.values.n", "5,000 digits"),
    "integer beyond 64 bits": (f"name: dev\naddons: {{grafana: {{values: {{n: {2 ** 64}}}}}}}\n",
                               "addons.grafana.values.n", "64 bits"),
    "set": ("name: dev\naddons: {grafana: {values: {hosts: !!set {a, b}}}}\n", "addons.grafana.values.hosts", "set"),
    "binary": ("name: dev\naddons: {grafana: {values: {blob: !!binary aGVsbG8=}}}\n", "addons.grafana.values.blob",
               "binary"),
    "omap": ("name: dev\naddons: {grafana: {values: {o: !!omap [a: 1, b: 2]}}}\n", "addons.grafana.values.o",
             "ordered map"),
    "pairs": ("name: dev\naddons: {grafana: {values: {p: !!pairs [a: 1, a: 2]}}}\n", "addons.grafana.values.p",
              "pairs"),
    ".inf": ("name: dev\naddons: {grafana: {values: {limit: .inf}}}\n", "addons.grafana.values.limit", "inf"),
    "-.inf": ("name: dev\naddons: {grafana: {values: {floor: -.Inf}}}\n", "addons.grafana.values.floor", "inf"),
    ".nan": ("name: dev\naddons: {grafana: {values: {x: .NaN}}}\n", "addons.grafana.values.x", "nan"),
    "a key that is binary data": ("name: dev\naddons: {grafana: {values: {!!binary aGk=: 1}}}\n", "addons.grafana.values",
                             "a key is binary"),
}


@pytest.mark.parametrize("case", sorted(TYPED))
def test_typed_values_are_refused_with_one_line_naming_the_field(tmp_path, case):
    extra, field, words = TYPED[case]
    path, message = problem(tmp_path, extra)
    assert path.startswith(field), (path, message)
    assert words in message, message
    assert "invalid literal" not in message and "Exceeds the limit" not in message


def test_a_bad_scalar_names_its_line(tmp_path):
    _, message = problem(tmp_path, "name: dev\nprotected: !!bool perhaps\n")
    line = (DEV.replace("name: dev\n", "") + "name: dev\nprotected: !!bool perhaps\n").splitlines().index(
        "protected: !!bool perhaps") + 1
    assert f"(line {line})" in message


def test_dates_in_addon_values_reach_the_chart_as_the_text_written(tmp_path):
    from k3s_infra.model import addons

    env = load_environment(path=env_file(tmp_path, "name: dev\naddons: {grafana: {enabled: true, values: {"
                                                   "since: 2024-01-05, at: 2024-01-05T10:00:00Z, odd: 2024-13-45, "
                                                   "clock: 1:30}}}\n"))
    values = env.addons.grafana.values
    assert values == {"since": "2024-01-05", "at": "2024-01-05T10:00:00Z", "odd": "2024-13-45", "clock": "1:30"}
    chart = next(c for c in addons.charts(env) if c["metadata"]["name"] == "grafana")
    written = yaml.safe_load(chart["spec"]["valuesContent"])
    assert written["since"] == "2024-01-05" and written["clock"] == "1:30"  # strings, as Helm reads them


def test_values_built_in_python_are_held_to_the_same_rules(dev):
    import datetime

    for bad, words in ((datetime.date(2024, 1, 5), "date"), ({1, 2}, "set"), (b"x", "binary"),
                       (float("nan"), "nan"), (10 ** 30, "64 bits")):
        dev["addons"] = {"grafana": {"values": {"x": {"y": bad}}}}
        with pytest.raises(ConfigError) as caught:
            validate(dev, "dev.yaml")
        ((path, message),) = caught.value.problems
        assert path == "addons.grafana.values.x.y" and words in message, (path, message)


@pytest.mark.parametrize("extra, field", [
    ("name: 2024-13-45\n", "name"),
    (f"name: dev\nprotected: {'9' * 5000}\n", "protected"),
    ("name: dev\naddons: {grafana: {values: {s: !!set {a}}}}\n", "addons.grafana.values.s"),
])
def test_the_cli_exits_2_with_one_line_and_no_traceback(tmp_path, extra, field):
    path = env_file(tmp_path, extra)
    done = subprocess.run([sys.executable, "-m", "k3s_infra", "render", "--config", str(path), "--out",
                           str(tmp_path / "out")], check=False, cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: {path}: {field}") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
