"""--env from a project with its own environments/ folder: the shipped examples still count.
An unknown name lists both folders and the closest name (difflib), errors name the file
actually read (the shipped dev.yaml, not a ./environments/dev.yaml that does not exist), and
--env <TAB> offers both folders' names."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from k3s_infra.cli import main, source_of
from k3s_infra.config import ENVIRONMENTS_DIR, available_environments

SHIPPED = available_environments(ENVIRONMENTS_DIR)  # dev, prod, staging


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with one environment of its own (as `k3s-infra init my-env` leaves it)."""
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "my-env.yaml").write_text((ENVIRONMENTS_DIR / "dev.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_an_unknown_name_lists_both_folders_and_the_closest(project, capsys):
    assert main(["render", "--env", "prodd"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: --env: unknown environment 'prodd' (did you mean prod?); environments: my-env in "
                   f"./environments; {', '.join(SHIPPED)} shipped with k3s-infra\n")
    assert not (project / "build").exists()


def test_no_guess_when_nothing_is_close(project, capsys):
    assert main(["render", "--env", "zzz"]) == 2
    assert "(did you mean" not in capsys.readouterr().err


def test_problems_name_the_file_read(project):
    def args(env):
        return argparse.Namespace(config=None, env=env)

    assert source_of(args("dev")) == str(ENVIRONMENTS_DIR / "dev.yaml")  # shipped: ./environments has none
    assert source_of(args("my-env")) == str(project / "environments" / "my-env.yaml")
    assert not (project / "environments" / "dev.yaml").exists()


def test_a_shipped_environment_renders_from_the_project(project, capsys):
    assert main(["render", "--env", "dev", "--out", str(project / "out")]) == 0
    assert (project / "out" / "root.yaml").is_file()


@pytest.mark.parametrize("typed, offered", [
    ("", ["dev", "my-env", "prod", "staging"]),
    ("d", ["dev"]),
    ("m", ["my-env"]),
])
def test_env_completes_the_names_of_both_folders(project, typed, offered):
    """argcomplete's protocol: COMP_LINE/COMP_POINT in, candidates out on file descriptor 8."""
    line = f"k3s-infra plan --env {typed}"
    env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
           "_ARGCOMPLETE_IFS": "\n"}
    result = subprocess.run(["sh", "-c", 'exec "$0" -m k3s_infra 8>&1 9>/dev/null', sys.executable], env=env,
                            cwd=project, timeout=60, capture_output=True, text=True)
    assert sorted(word.strip() for word in result.stdout.split("\n") if word.strip()) == offered, result
