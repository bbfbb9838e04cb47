"""k3s-infra init and the paths it is given (issue 24): a refusal is one line naming the
user's path (never an internal temporary file), exit 2, and leaves the disk exactly as
it was: no folder, no temporary file, nothing replaced. Only a regular file (or nothing)
may be replaced, and a FIFO, socket, device, folder or symlink is never opened.

Most cases call ``cli.main`` in-process (init imports boto3: a subprocess costs about a
second); the cases where a regression could block or hang run the real CLI.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from k3s_infra import cli


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """The user's project folder (the working directory), a user file in it, and the
    system temporary folder moved inside tmp_path so leftovers there show too."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine\n")
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    monkeypatch.setenv("TMPDIR", str(system_tmp))
    monkeypatch.chdir(work)
    return work


def snapshot(folder: Path) -> dict[str, object]:
    found: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        mode = path.lstat().st_mode
        found[str(path.relative_to(folder))] = path.read_bytes() if stat.S_ISREG(mode) else stat.S_IFMT(mode)
    return found


def init(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(["init", *args])
    return code, capsys.readouterr().err


def one_line(err: str) -> str:
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def no_temporary_name(err: str, name: str) -> None:
    assert f".{name}." not in err and "k3s-infra-init." not in err, err


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "k3s_infra", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=30, env={**os.environ, "TMPDIR": str(cwd.parent / "system-tmp")})


# --- c, e: every refusal leaves the disk unchanged and names only the user's path --------

@pytest.mark.parametrize("args, reason", [
    (["../x"], "init NAME: '../x' is not valid"),  # the path would escape environments/
    (["Bad_Name"], "init NAME: 'Bad_Name' is not valid"),
    (["/etc/x"], "init NAME: '/etc/x' is not valid"),
    (["x\nregion: us-east-1"], "init NAME: 'x\\nregion: us-east-1' is not valid"),  # not YAML injected
    (["Bad_Name", "--out", "missing/deep/ok.yaml"], "init NAME: 'Bad_Name' is not valid"),
    (["ok", "--out", "../x/y.yaml", "--region", ""], "--region: '' is not valid"),
    (["ok", "--out", "notes.txt/ok.yaml"], "notes.txt/ok.yaml: Not a directory"),
    (["ok", "--out", "notes.txt/deep/ok.yaml"], "notes.txt/deep/ok.yaml: Not a directory"),
    (["ok", "--out", "notes.txt"], "exists; pass --force to replace it"),
    (["ok", "--out", "defaults.yaml"], "defaults.yaml holds the settings environments extend"),
    (["ok", "--out", "ok\n#.yaml"], "--out 'ok\\n#.yaml': the path contains a control character"),
    (["ok", "--region", ""], "--region: '' is not valid: expected an AWS region like eu-west-1"),
    (["ok", "--region", " "], "--region: ' ' is not valid"),
    (["ok", "--region", "EU-WEST-1"], "--region: 'EU-WEST-1' is not valid"),
])
def test_a_refusal_creates_nothing_and_names_the_users_path(home, capsys, args, reason):
    before = snapshot(home.parent)
    code, err = init(capsys, *args)
    assert code == 2 and reason in one_line(err)
    no_temporary_name(err, Path(args[args.index("--out") + 1] if "--out" in args else args[0]).name)
    assert snapshot(home.parent) == before  # no environments/, no folder, no temporary file


def test_a_problem_reading_the_trial_file_names_the_target(home, capsys, monkeypatch):
    """The text is validated in a temporary file beside the target: a problem reported
    against that file (as an unreadable or unparsable one would be) names the target."""
    from k3s_infra.cli import init as command
    from k3s_infra.config import ConfigError

    def unreadable(path):
        raise ConfigError(str(path), [("", "invalid YAML: line 3")])

    monkeypatch.setattr(command, "read_document", unreadable)
    before = snapshot(home.parent)
    code, err = init(capsys, "trial", "--out", "trial.yaml")
    assert code == 2 and one_line(err) == "error: trial.yaml: invalid YAML: line 3\n"
    assert snapshot(home.parent) == before


@pytest.mark.parametrize("args, shown", [
    (["trial"], "environments/trial.yaml"),
    (["trial", "--out", "a/b/trial.yaml"], "a/b/trial.yaml"),
])
def test_a_failed_write_names_the_target_and_leaves_no_folder(home, capsys, monkeypatch, args, shown):
    """Disk full at the final rename (the OSError names the temporary source, as the real
    one does): the message names the user's path, the folders made for it are gone."""
    def full(source, target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(source), None, str(target))

    before = snapshot(home.parent)
    monkeypatch.setattr(os, "replace", full)
    code, err = init(capsys, *args)
    assert code == 1 and one_line(err) == f"error: {shown}: No space left on device\n"
    assert snapshot(home.parent) == before


# --- b: only a regular file is replaced; nothing else is opened ------------------------

def test_force_refuses_a_folder_a_socket_and_symlinks(home, capsys, tmp_path):
    (home / "folder.yaml").mkdir()
    outside = tmp_path / "outside.yaml"
    outside.write_text("name: outside\n")
    (home / "link.yaml").symlink_to(outside)
    (home / "devnull.yaml").symlink_to(os.devnull)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("socket.yaml")
        before = snapshot(home.parent)
        for target in ("folder.yaml", "link.yaml", "devnull.yaml", "socket.yaml"):
            code, err = init(capsys, "trial", "--out", target, "--force")
            assert code == 2 and f"error: {target}: exists and is not a regular file" in one_line(err), err
            no_temporary_name(err, target)
        assert snapshot(home.parent) == before
    assert outside.read_text() == "name: outside\n"


@pytest.mark.parametrize("device", ["/dev/null", "/dev/stdout"])
def test_force_refuses_devices_without_touching_them(home, capsys, monkeypatch, device):
    """Guarded: should the check regress, nothing may be written next to or over the real
    device (this runs as root in some sandboxes)."""
    def never(*_args, **_kwargs):
        raise AssertionError("init tried to write")

    monkeypatch.setattr(os, "replace", never)
    monkeypatch.setattr(tempfile, "mkstemp", never)
    code, err = init(capsys, "trial", "--out", device, "--force")
    assert code == 2 and f"error: {device}: exists and is not a regular file" in one_line(err)


def test_the_real_cli_refuses_a_fifo_without_blocking_and_a_folder(home):
    os.mkfifo(home / "pipe.yaml")
    (home / "folder.yaml").mkdir()
    before = snapshot(home.parent)
    for target in ("pipe.yaml", "folder.yaml"):
        result = run_cli("init", "trial", "--out", target, "--force", cwd=home)
        assert result.returncode == 2, result.stderr
        assert one_line(result.stderr) == (f"error: {target}: exists and is not a regular file; "
                                           "name a new file for the environment\n")
    assert snapshot(home.parent) == before
    assert stat.S_ISFIFO((home / "pipe.yaml").lstat().st_mode)


# --- what still works -----------------------------------------------------------------

def test_force_replaces_a_regular_file_and_missing_folders_are_made(home, capsys):
    (home / "mine.yaml").write_text("name: mine\n")
    assert cli.main(["init", "mine", "--out", "mine.yaml", "--force"]) == 0
    assert yaml.safe_load((home / "mine.yaml").read_text())["name"] == "mine"
    assert cli.main(["init", "trial", "--region", "eu-central-1"]) == 0
    assert yaml.safe_load((home / "environments" / "trial.yaml").read_text())["region"] == "eu-central-1"
    assert cli.main(["init", "other", "--out", "../x/y/other.yaml"]) == 0  # as before: --out's folders are made
    assert yaml.safe_load((home.parent / "x" / "y" / "other.yaml").read_text())["name"] == "other"
    assert sorted(p.name for p in home.iterdir()) == ["environments", "mine.yaml", "notes.txt"]
    assert sorted(p.name for p in (home / "environments").iterdir()) == ["trial.yaml"]
    assert list((home.parent / "system-tmp").iterdir()) == []
    assert [p.name for p in (home.parent / "x" / "y").iterdir()] == ["other.yaml"]  # no temporary file left
