"""ConfigError (k3s_infra/config/errors.py) as the user reads it: ``<file>: <field>: <problem>``,
one bounded line per problem whatever the file name or value (control characters escaped,
long problems cut at 500 characters with an ellipsis).
"""

from __future__ import annotations

import pytest

from k3s_infra.config import ConfigError, validate


def refused(document: dict) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        validate(document, "env.yaml")
    return caught.value


def _refusal(document: dict, source: str = "dev.yaml") -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        validate(document, source)
    return caught.value


def test_error_message_names_file_path_and_problem(dev):
    dev["servers"]["count"] = 2
    assert str(refused(dev)) == "env.yaml: servers.count: must be odd for etcd quorum (1, 3, 5, ...), got 2"


def test_each_problem_is_one_bounded_line_whatever_the_file_name_or_value(dev):
    dev["k3s"]["versoin"] = 1
    error = _refusal(dev, source="evil\nname.yaml")
    assert error.source == "evil\nname.yaml"  # kept as given for callers; escaped when shown
    assert "\n" not in str(error) and "evil\\x0aname.yaml" in str(error)
    long = ConfigError("dev.yaml", [("k3s.version", "x" * 450 + "\nnext")])
    assert "\n" not in str(long) and "x" * 450 in str(long)  # a 450-character problem is not cut
    cut = ConfigError("dev.yaml", [("k3s.version", "y" * 2000)])
    assert len(str(cut)) <= len("dev.yaml: ") + 500 + 1  # at most 500 characters and an ellipsis
