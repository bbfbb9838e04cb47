"""An endpoint nobody answers on fails in seconds with one line naming it (deploy/aws.py:
a 5 s connect timeout, two attempts for the account check every command makes first), exit 1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from botocore.exceptions import ConnectTimeoutError

from k3s_infra.cli.aws import unreachable
from tests.support.oracle_helpers import REPO


def _closed_port() -> int:
    with socket.socket() as probe:  # bound, then closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_closed_port_fails_fast_naming_the_endpoint(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    env = {**os.environ, "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    env.pop("AWS_PROFILE", None)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "k3s_infra", "status", "--env", "dev"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 10, result.stderr
    assert result.returncode == 1, result
    assert result.stderr.splitlines() == [
        f"error: cannot reach {url}/: Connection refused; AWS_ENDPOINT_URL is {url}: is the emulator running? "
        "('k3s-infra emulator start')"]


def test_a_connect_timeout_says_how_long_it_waited(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    exc = ConnectTimeoutError(endpoint_url="https://cloudformation.eu-west-1.amazonaws.com/")
    assert unreachable(exc) == ("cannot reach https://cloudformation.eu-west-1.amazonaws.com/: no answer within 5 s; "
                                "check the network and the region")
