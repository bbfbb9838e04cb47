"""Shared fixtures: rendered environments (once per session) and one cfn-lint rule set."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from k3s_infra.config import ENVIRONMENTS_DIR, available_environments, load_environment
from k3s_infra.render import Rendering, render, write
from fixture_scope import shared


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


class RenderedEnvironments(Mapping):
    """Every shipped environment by name, each rendered on first use, once per session: a test
    of one environment pays for that one (mutation testing reruns such tests per mutant).
    Listed on creation, not at import: mutmut's forced-fail check must fail a test, not this conftest."""

    def __init__(self, tmp_path_factory):
        self._factory = tmp_path_factory
        self._names = available_environments()
        self._done: dict[str, Rendered] = {}

    def __getitem__(self, name: str) -> Rendered:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._done:
            rendering = render(load_environment(name))
            self._done[name] = Rendered(rendering, write(rendering, self._factory.mktemp("build") / name))
        return self._done[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@pytest.fixture(scope=shared("session"))
def rendered(tmp_path_factory) -> RenderedEnvironments:
    return RenderedEnvironments(tmp_path_factory)


@pytest.fixture(scope="session")
def linter():
    from k3s_infra.render.lint import Linter

    return Linter()


@pytest.fixture
def env_document():
    """A loader of an environment file as a plain dict (parent merged), for mutation tests."""

    def _load(name: str = "dev") -> dict:
        from k3s_infra.config import read_document

        return read_document(ENVIRONMENTS_DIR / f"{name}.yaml")

    return _load
