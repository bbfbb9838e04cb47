"""Shared fixtures: rendered environments (once per session) and one cfn-lint rule set."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from k3s_infra.config import ENVIRONMENTS_DIR, available_environments, load_environment
from k3s_infra.render import Rendering, render, write


class Rendered:
    """An environment rendered to disk, with its templates parsed back from the files."""

    def __init__(self, rendering: Rendering, folder: Path):
        self.rendering = rendering
        self.env = rendering.env
        self.folder = folder
        self.templates = {s.stack_id: yaml.safe_load((folder / s.file).read_text()) for s in rendering.stacks}

    @property
    def root(self) -> dict:
        return self.templates["Root"]

    def resources(self, stack_id: str, type_: str) -> dict[str, dict]:
        return {k: v for k, v in self.templates[stack_id]["Resources"].items() if v["Type"] == type_}


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, Rendered]:
    result = {}
    # Listed here, not at import: mutmut's forced-fail check must fail a test, not this conftest.
    for name in available_environments():
        rendering = render(load_environment(name))
        folder = write(rendering, tmp_path_factory.mktemp("build") / name)
        result[name] = Rendered(rendering, folder)
    return result


@pytest.fixture(scope="session")
def linter():
    from k3s_infra.lint import Linter

    return Linter()


@pytest.fixture
def env_document():
    """A loader of an environment file as a plain dict (parent merged), for mutation tests."""

    def _load(name: str = "dev") -> dict:
        from k3s_infra.config import read_document

        return read_document(ENVIRONMENTS_DIR / f"{name}.yaml")

    return _load
