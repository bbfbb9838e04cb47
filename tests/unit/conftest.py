"""Fixtures several unit test modules share: one shipped environment at a time (``r``), the
node stacks' templates of dev, prod and the all-add-ons environment (``templates``), and
dev/prod with draining switched the other way (``switched``)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml

from k3s_infra.config import available_environments, load_environment, validate
from k3s_infra.render import build_templates, render, write
from tests.support.fixture_scope import shared
from tests.support.oracle_helpers import ALL_ADDONS


@pytest.fixture(params=available_environments())
def r(request, rendered):
    return rendered[request.param]


@pytest.fixture(scope=shared("module"), params=["dev", "prod", "all-addons"])
def templates(request, rendered) -> tuple:
    if request.param == "all-addons":
        env = load_environment(path=ALL_ADDONS)
        return env, {stack_id: json.loads(json.dumps(t.to_dict())) for stack_id, t in build_templates(env).items()}
    return rendered[request.param].env, rendered[request.param].templates


def rendered_env(env) -> tuple[dict[str, dict], object, Path]:
    rendering = render(env)
    folder = write(rendering, Path(tempfile.mkdtemp(prefix="k3s-drain-")) / env.name)
    return {s.stack_id: yaml.safe_load((folder / s.file).read_text()) for s in rendering.stacks}, rendering, folder


@pytest.fixture(scope=shared("module"))
def switched(env_document_module):
    """dev with draining forced on, prod with it forced off (each renders, lints)."""
    dev = env_document_module("dev")
    dev["addons"] = {"node_termination_handler": {"enabled": True}}
    prod = env_document_module("prod")
    prod["addons"] = {"node_termination_handler": {"enabled": False}}
    return {"dev-on": rendered_env(validate(dev, "dev.yaml")), "prod-off": rendered_env(validate(prod, "prod.yaml"))}


@pytest.fixture(scope="module")
def env_document_module():
    from k3s_infra.config import ENVIRONMENTS_DIR, read_document

    return lambda name: read_document(ENVIRONMENTS_DIR / f"{name}.yaml")
