"""k3s-infra emulator start | env | stop without starting moto: the missing extra, a moto of
another version, a taken port, one already running, a stale record. Each refusal is one line,
no traceback, and nothing starts. (A real start, its seeded VPC and stop:
tests/e2e/test_emulator_command.py.)"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

EXTRA = "pip install 'k3s-infra[emulator]'"  # issue 26: the line a user without the extra needs


def _cli(tmp_path, *argv: str, block_moto: bool = False, moto_version: str | None = None,
         **env: str) -> subprocess.CompletedProcess:
    """The CLI in its own process, its cache folder in ``tmp_path``; ``block_moto``: moto cannot
    be imported (the extra is missing); ``moto_version``: moto reports that version."""
    setup = "import sys\n"
    if block_moto:
        setup += "sys.modules['moto'] = None\n"
    if moto_version:
        setup += f"import moto\nmoto.__version__ = {moto_version!r}\n"
    code = setup + f"from k3s_infra.cli import entry\nentry({list(argv)!r})\n"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "K3S_INFRA_"))}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**environment, "XDG_CACHE_HOME": str(tmp_path / "cache"), **env})


def _record(tmp_path):
    return tmp_path / "cache" / "k3s-infra" / "emulator.json"


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize("action", ["start", "serve"])
def test_without_the_extra_one_line_names_it_and_nothing_starts(tmp_path, action):
    result = _cli(tmp_path, "emulator", action, block_moto=True)
    assert result.returncode == 2, result
    line = _one_line(result)
    assert line.startswith("error: the emulator needs moto[server] 5.2.5") and EXTRA in line
    assert result.stdout == "" and not (tmp_path / "cache").exists()


def test_a_moto_of_another_version_is_refused_naming_the_extra(tmp_path):
    result = _cli(tmp_path, "emulator", "start", moto_version="5.3.0")
    assert result.returncode == 2, result
    line = _one_line(result)
    assert "written for moto 5.2.5, found 5.3.0" in line and EXTRA in line


def test_env_and_stop_need_no_moto_and_say_when_none_runs(tmp_path):
    env = _cli(tmp_path, "emulator", "env", block_moto=True)
    assert env.returncode == 1 and env.stdout == "", env
    assert "no emulator is running" in _one_line(env) and "k3s-infra emulator start" in env.stderr
    stop = _cli(tmp_path, "emulator", "stop", block_moto=True)
    assert stop.returncode == 0 and stop.stdout == "no emulator is running\n", stop


def test_a_taken_port_is_refused_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _cli(tmp_path, "emulator", "start", "--port", str(port))
        from_environment = _cli(tmp_path, "emulator", "start", K3S_INFRA_EMULATOR_PORT=str(port))
    for refused in (result, from_environment):
        assert refused.returncode == 2, refused
        assert f"port {port} on 127.0.0.1 is taken" in _one_line(refused) and "--port" in refused.stderr
    assert not _record(tmp_path).exists() and not (tmp_path / "cache" / "k3s-infra" / "emulator.log").exists()


@pytest.mark.parametrize("value", ["65536", "-1", "http"])
def test_a_port_that_is_no_port_number_is_refused(tmp_path, value):
    result = _cli(tmp_path, "emulator", "start", "--port", value)
    assert result.returncode == 2 and "argument --port" in result.stderr, result
    environment = _cli(tmp_path, "emulator", "start", K3S_INFRA_EMULATOR_PORT=value)
    assert environment.returncode == 2, environment
    assert _one_line(environment).startswith("error: K3S_INFRA_EMULATOR_PORT: ")


@pytest.fixture
def running(tmp_path):
    """A process that looks like a running emulator (its arguments say `emulator serve`),
    recorded as the emulator would record itself."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "emulator", "serve"])
    record = _record(tmp_path)
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"pid": process.pid, "port": 5999, "region": "eu-north-1", "network": {}}))
    yield process
    process.kill()
    process.wait()


def test_a_second_start_is_refused_naming_the_running_one(tmp_path, running):
    result = _cli(tmp_path, "emulator", "start", "--port", "0")
    assert result.returncode == 2, result
    line = _one_line(result)
    assert f"already running on http://127.0.0.1:5999 (pid {running.pid})" in line
    assert "k3s-infra emulator stop" in line and running.poll() is None


def test_env_prints_the_exports_of_the_running_one(tmp_path, running):
    result = _cli(tmp_path, "emulator", "env", block_moto=True)
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == [
        "export AWS_ENDPOINT_URL=http://127.0.0.1:5999", "export AWS_ACCESS_KEY_ID=testing",
        "export AWS_SECRET_ACCESS_KEY=testing", "export AWS_REGION=eu-north-1", "export AWS_DEFAULT_REGION=eu-north-1",
        "unset AWS_PROFILE AWS_SESSION_TOKEN"]
    probe = 'echo "$AWS_ENDPOINT_URL $AWS_REGION ${AWS_PROFILE-unset}"'
    shell = subprocess.run(["/bin/sh", "-c", result.stdout + probe], capture_output=True, text=True,
                           env={"AWS_PROFILE": "work", "PATH": "/usr/bin:/bin"})
    assert shell.stdout == "http://127.0.0.1:5999 eu-north-1 unset\n"


def test_stop_ends_the_recorded_process_and_forgets_it(tmp_path, running):
    result = _cli(tmp_path, "emulator", "stop", block_moto=True)
    assert result.returncode == 0, result
    assert result.stdout.startswith(f"stopped the emulator on http://127.0.0.1:5999 (pid {running.pid})")
    assert running.wait(timeout=5) == -signal.SIGTERM and not _record(tmp_path).exists()


def test_a_record_whose_process_is_gone_or_another_program_is_stale(tmp_path):
    """A pid reused by another program is never signalled: only an `emulator serve` counts."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for pid in (other.pid, 2 ** 22 + 1):  # another program; no process at all
            record = _record(tmp_path)
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(json.dumps({"pid": pid, "port": 5999, "region": "eu-west-1", "network": {}}))
            result = _cli(tmp_path, "emulator", "stop", block_moto=True)
            assert result.returncode == 0 and result.stdout == "no emulator is running\n", result
            assert not record.exists()
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
