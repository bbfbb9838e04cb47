"""Shared fixtures: rendered environments (once per session), the test environment with every
add-on on, one cfn-lint rule set and the checkov executable.

Test modules mirror the source (tests/unit/<package>/test_<module>.py), guarantees that span
many modules are in tests/properties/, helpers in tests/support/ (docs/contributing.md "Tests")."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

# Helpers' asserts (e.g. tests.support.addons.charts_of) explain themselves as a test's do.
pytest.register_assert_rewrite("tests.support")

from k3s_infra.config import ENVIRONMENTS_DIR, available_environments, load_environment  # noqa: E402
from k3s_infra.render import Rendering, render, write  # noqa: E402
from tests.support.published import publish  # noqa: E402
from tests.support.fixture_scope import shared  # noqa: E402
from tests.support.oracle_helpers import ALL_ADDONS  # noqa: E402


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
            publish(rendering.env)  # the add-ons' object a deploy uploads (deploy/package.py)
            self._done[name] = Rendered(rendering, write(rendering, self._factory.mktemp("build") / name))
        return self._done[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


@pytest.fixture(scope=shared("session"))
def rendered(tmp_path_factory) -> RenderedEnvironments:
    return RenderedEnvironments(tmp_path_factory)


@pytest.fixture(scope=shared("module"))
def everything(tmp_path_factory):
    """The all-add-ons test environment, rendered to disk and parsed back."""
    env = load_environment(path=ALL_ADDONS)
    rendering = render(env)
    publish(env)
    folder = write(rendering, tmp_path_factory.mktemp("addons") / env.name)
    templates = {s.stack_id: yaml.safe_load((folder / s.file).read_text()) for s in rendering.stacks}
    return env, rendering, folder, templates


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


@pytest.fixture(scope="module")
def executable():
    """The checkov executable (its own tool environment, `make checkov`)."""
    from k3s_infra.render import checkov

    found = checkov.find()
    if not found:
        if os.environ.get("CI"):
            pytest.fail("checkov is not installed: `make checkov` creates its tool environment")
        pytest.skip("checkov not installed (make checkov)")
    return found
