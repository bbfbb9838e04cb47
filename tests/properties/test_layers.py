"""The layers hold: cli -> deploy -> render -> stacks -> components | bootstrap -> model ->
config, and no import circle inside a package. The contract is the [importlinter] section
of setup.cfg (docs/architecture.md draws it); import-linter reads the real import graph."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.oracle_helpers import REPO

LINT_IMPORTS = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                                      "sys.exit(lint_imports_command())", "--no-cache"]


def _lint_imports(tree: Path) -> subprocess.CompletedProcess:
    # The tree's own packages first on the path: the graph is built from the files in `tree`.
    return subprocess.run(LINT_IMPORTS, cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def copy_of_the_tree(tmp_path) -> Path:
    """The packages laid out as the wheel installs them: stacks/ as k3s_infra/stacks (setup.cfg
    package_dir). import-linter finds modules by walking the package's folder, so it would not
    see the mapped stacks in the repository's own layout."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "k3s_infra", tmp_path / "k3s_infra", ignore=ignore)
    shutil.copytree(REPO / "stacks", tmp_path / "k3s_infra" / "stacks", ignore=ignore)
    shutil.copy(REPO / "setup.cfg", tmp_path / "setup.cfg")
    return tmp_path


def test_the_import_contracts_are_kept(copy_of_the_tree):
    result = _lint_imports(copy_of_the_tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, upward", [
    ("k3s_infra/config/text.py", "from k3s_infra.model import naming"),  # config reaching up to the model
    ("k3s_infra/model/naming.py", "from k3s_infra import stacks"),  # the model reaching up to the stacks
    ("k3s_infra/deploy/status.py", "from k3s_infra.cli import output"),  # the library reaching the CLI
    ("k3s_infra/components/iam.py", "from k3s_infra import bootstrap"),  # siblings are independent
])
def test_an_upward_import_breaks_the_contract(copy_of_the_tree, module, upward):
    path = copy_of_the_tree / module
    path.write_text(path.read_text() + f"\n{upward}  # noqa\n")
    result = _lint_imports(copy_of_the_tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout


def test_an_import_circle_inside_a_package_breaks_the_contract(copy_of_the_tree):
    # deploy.groups <-> deploy.quorum: a circle inside one layer, which the layers alone allow.
    groups = copy_of_the_tree / "k3s_infra/deploy/groups.py"
    groups.write_text(groups.read_text() + "\nfrom k3s_infra.deploy import quorum  # noqa\n")
    result = _lint_imports(copy_of_the_tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no import circles inside a layer BROKEN" in result.stdout
