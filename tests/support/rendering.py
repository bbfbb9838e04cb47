"""Renderings made by the test itself: templates of an environment, component resources of a
StackTemplate built in the test, and the CLI run on a changed copy of environments/dev.yaml.
Used by several test modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from k3s_infra.components.template import StackTemplate
from k3s_infra.render import render
from tests.support.oracle_helpers import REPO


def rendered_templates(env) -> dict[str, dict]:
    return {s.stack_id: yaml.safe_load(s.body) for s in render(env).stacks}


def component_resources(template: StackTemplate) -> dict[str, dict]:
    return template.template.to_dict()["Resources"]


def render_changed_dev(tmp_path: Path, change) -> subprocess.CompletedProcess:
    """``k3s-infra render`` (its own process) of environments/dev.yaml after ``change(document)``."""
    document = yaml.safe_load((REPO / "environments" / "dev.yaml").read_text())
    change(document)
    env_file = tmp_path / "env.yaml"
    env_file.write_text(yaml.safe_dump(document))
    return subprocess.run([sys.executable, "-m", "k3s_infra", "render", "--config", str(env_file),
                           "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True, timeout=120)
