"""Refusals of environment documents, read back: the ConfigError and its field paths."""

from __future__ import annotations

import pytest

from k3s_infra.config import ConfigError, validate


def refused(document: dict) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        validate(document, "env.yaml")
    return caught.value


def paths(error: ConfigError) -> list[str]:
    return [path for path, _ in error.problems]
