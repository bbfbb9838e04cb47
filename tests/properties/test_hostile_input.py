"""Hostile and careless input to the CLI: output paths it must not write over, files it
must not read (or quote), and every way a run can fail. Each case asserts the exit
code, that the message names the file or field, that nothing was written and that
no user file was removed. A few cases run the real CLI in a subprocess; the rest
call ``cli.main`` in-process to keep the suite fast.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from k3s_infra import cli
from k3s_infra.config import ENVIRONMENTS_DIR


DEV = ENVIRONMENTS_DIR / "dev.yaml"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "k3s_infra", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def main(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(err: str) -> str:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


# --- item 1: --out never deletes what it did not write --------------------------

@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A user's project folder: notes, an environment file and its folder."""
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("buy milk\n")
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "dev.yaml").write_text(DEV.read_text())
    (tmp_path / "dev.yaml").write_text(DEV.read_text())
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("out, reason", [
    ("notes", "not empty and holds no previous render"),
    ("environments", "not empty and holds no previous render"),
    (".", "current folder"),
    ("..", "current folder or one above it"),
    ("dev.yaml", "is the environment file itself"),
    ("notes/todo.txt", "exists and is not a folder"),
    ("missing/out", "does not exist"),
])
def test_render_refuses_to_write_over_what_it_did_not_write(project, capsys, out, reason):
    before = snapshot(project)
    code, _, err = main(capsys, "render", "--config", "dev.yaml", "--out", out)
    assert code == 2
    assert reason in one_line_error(err) and out in err
    assert snapshot(project) == before  # nothing removed, nothing written
    assert sorted(p.name for p in project.iterdir()) == ["dev.yaml", "environments", "notes"]


def test_render_into_a_previous_render_replaces_only_its_files(project, capsys):
    assert main(capsys, "render", "--config", "dev.yaml", "--out", "out")[0] == 0
    (project / "out" / "README.txt").write_text("mine\n")
    yaml_files = {p.name for p in (project / "out").glob("*.yaml")}
    code, _, err = main(capsys, "render", "--config", "dev.yaml", "--out", "out", "--format", "json")
    assert code == 0, err
    names = {p.name for p in (project / "out").iterdir()}
    assert (project / "out" / "README.txt").read_text() == "mine\n"  # a user file stays
    assert not names & yaml_files  # the previous render's files are gone...
    assert {n.replace(".yaml", ".json") for n in yaml_files} <= names  # ...replaced by the new ones
    assert sorted(p.name for p in project.iterdir()) == ["dev.yaml", "environments", "notes", "out"]


def test_render_into_an_empty_folder(project, capsys):
    (project / "empty").mkdir()
    assert main(capsys, "render", "--config", "dev.yaml", "--out", "empty")[0] == 0
    assert (project / "empty" / "manifest.json").is_file()


def test_a_forged_manifest_does_not_make_render_remove_other_files(project, capsys):
    (project / "out").mkdir()
    (project / "out" / "manifest.json").write_text(
        '{"environment": "x", "root": "../dev.yaml", "children": [{"file": "/etc/passwd"}]}')
    code, _, err = main(capsys, "render", "--config", "dev.yaml", "--out", "out")
    assert code == 2 and "no previous render" in err
    assert (project / "dev.yaml").is_file()


@pytest.mark.parametrize("command", ["graph", "schema"])
def test_file_outputs_refuse_folders_the_config_and_foreign_files(project, capsys, command):
    env_args = ["--config", "dev.yaml"] if command == "graph" else []
    before = snapshot(project)
    for out, reason in [("notes", "not a regular file"), ("notes/todo.txt", "not an output of this command"),
                        ("missing/x.txt", "does not exist"),
                        ("dev.yaml", "environment file itself" if command == "graph" else "not an output")]:
        code, _, err = main(capsys, command, *env_args, "--out", out)
        assert code == 2 and reason in one_line_error(err) and out in err, (out, err)
    assert snapshot(project) == before
    # A new file, then the command's own previous output, are fine.
    assert main(capsys, command, *env_args, "--out", "doc.txt")[0] == 0
    assert main(capsys, command, *env_args, "--out", "doc.txt")[0] == 0
    assert sorted(p.name for p in project.iterdir()) == ["dev.yaml", "doc.txt", "environments", "notes"]


# --- item 5: robust reading -------------------------------------------------------

BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))


@pytest.mark.parametrize("content, reason", [
    ("name: dev\nname: prod\n".encode(), "duplicate key 'name'"),
    ("name: dév\n".encode("utf-16"), "UTF-16"),
    (b"name: d\xe9v\n", "not UTF-8"),
    (b"name: " + b"x" * (1024 * 1024 + 10), "larger than 1024 KiB"),
    (BILLION_LAUGHS.encode(), "expands to more than"),
    (("name: " + "[" * 200 + "]" * 200 + "\n").encode(), "nesting is deeper than"),
    (b"a: &a [*a]\n", "recursive YAML"),
    (b"name: dev\x00\n", "NUL"),
    (b'name: "dev\\x1b[2J"\n', "control character"),
])
def test_unreadable_environment_files_fail_fast_with_one_line(tmp_path, capsys, content, reason):
    env_file = tmp_path / "env.yaml"
    env_file.write_bytes(content)
    started = time.perf_counter()
    code, _, err = main(capsys, "render", "--config", str(env_file), "--out", str(tmp_path / "out"))
    assert time.perf_counter() - started < 5
    assert code == 2 and reason in one_line_error(err) and str(env_file) in err
    assert "\x1b" not in err
    assert not (tmp_path / "out").exists()


def test_device_and_fifo_are_refused_without_reading(tmp_path, capsys):
    fifo = tmp_path / "env.yaml"
    os.mkfifo(fifo)
    for path in ("/dev/zero", str(fifo), str(tmp_path)):
        code, _, err = main(capsys, "render", "--config", path, "--out", str(tmp_path / "out"))
        assert code == 2 and path in one_line_error(err)
        assert "regular file" in err or "folder" in err


@pytest.mark.parametrize("parent", ["/etc/passwd", "../../etc/passwd", "sub/defaults.yaml", "/dev/zero"])
def test_extends_stays_in_the_environments_folders(tmp_path, capsys, parent):
    env_file = tmp_path / "env.yaml"
    env_file.write_text(DEV.read_text().replace("extends: defaults.yaml", f"extends: {parent}"))
    code, _, err = main(capsys, "render", "--config", str(env_file), "--out", str(tmp_path / "out"))
    assert code == 2 and "extends" in one_line_error(err) and "without a path" in err
    assert "root:" not in err  # nothing of the named file is read or quoted


def test_a_non_environment_file_is_not_quoted(tmp_path, capsys):
    secret = tmp_path / "shadow.yaml"
    secret.write_text("root: $6$saltsalt$hashhashhash\ndaemon: '*'\n")
    code, _, err = main(capsys, "render", "--config", str(secret))
    assert code == 2 and "not an environment file" in one_line_error(err)
    assert "hashhash" not in err and "daemon" not in err


def test_huge_values_are_cut_and_control_characters_refused_unechoed(tmp_path, capsys):
    env_file = tmp_path / "env.yaml"
    env_file.write_text(DEV.read_text().replace("name: dev", "name: '" + "x" * 500_000 + "'"))
    code, _, err = main(capsys, "render", "--config", str(env_file))
    assert code == 2 and "name:" in one_line_error(err) and "…" in err and len(err) < 1000
    env_file.write_text(DEV.read_text().replace("name: dev", "name: 'dev\u202e\u0007'"))
    code, _, err = main(capsys, "render", "--config", str(env_file))
    assert code == 2 and "contains a control character" in one_line_error(err)
    assert "\u202e" not in err and "\a" not in err


def test_a_parents_mistake_is_blamed_on_the_parent(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text((ENVIRONMENTS_DIR / "defaults.yaml").read_text() + "servers: {count: 2}\n")
    child = tmp_path / "child.yaml"
    child.write_text(DEV.read_text().replace("extends: defaults.yaml", "extends: base.yaml")
                     .replace("servers:\n  count: 1\n", "servers:\n"))
    code, _, err = main(capsys, "render", "--config", str(child))
    assert code == 2 and "servers.count" in one_line_error(err)
    assert err.startswith(f"error: {tmp_path / 'base.yaml'}: ")


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "dev/../dev", ".hidden"])
def test_env_names_are_names_not_paths(capsys, name):
    code, _, err = main(capsys, "render", "--env", name)
    assert code == 2 and "without a path" in one_line_error(err)


# --- item 7: every crash is one line --------------------------------------------

def test_closed_stdout_is_one_line_not_a_traceback():
    # graph writes to stdout; the reader closes the pipe at once.
    process = subprocess.Popen([sys.executable, "-m", "k3s_infra", "schema"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1
    assert "Traceback" not in err and "output closed" in err


def test_disk_full_is_one_line(tmp_path, capsys, monkeypatch):
    import errno

    from k3s_infra.render import safe_output

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "x"))

    monkeypatch.setattr(safe_output.os, "replace", full)
    code, _, err = main(capsys, "schema", "--out", str(tmp_path / "schema.json"))
    assert code == 1 and "No space left on device" in one_line_error(err)
    assert list(tmp_path.iterdir()) == []  # the staging file is gone too


def test_disk_full_while_rendering_leaves_no_folder_and_no_staging(tmp_path, capsys, monkeypatch):
    import errno

    real = Path.write_text

    def full(self, *args, **kwargs):
        if self.name == "manifest.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    code, _, err = main(capsys, "render", "--env", "dev", "--out", str(tmp_path / "out"))
    assert code == 1 and "No space left on device" in one_line_error(err)
    assert list(tmp_path.iterdir()) == []


def test_lint_without_cfn_lint_says_how_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "cfnlint", None)  # import cfnlint -> ImportError
    monkeypatch.setitem(sys.modules, "cfnlint.config", None)
    monkeypatch.setitem(sys.modules, "cfnlint.runner", None)
    code, _, err = main(capsys, "lint", "--env", "dev", "--no-checkov")
    assert code == 2 and "pip install 'k3s-infra[lint]'" in one_line_error(err)


def test_the_real_cli_refuses_a_project_folder(project):
    before = snapshot(project)
    result = run_cli("render", "--config", "dev.yaml", "--out", str(project), cwd=project)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and str(project) in result.stderr
    assert snapshot(project) == before
