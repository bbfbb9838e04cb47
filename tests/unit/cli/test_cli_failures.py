"""Adversarial pass of issue 24: a command that cannot reach AWS ends in one line (exit 1,
nothing written), and a bad flag value is refused by argparse (exit 2) before any AWS call."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _cli(*argv: str, cwd=None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "k3s_infra", *argv], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**os.environ, **env})


def test_init_from_an_unreachable_account_is_one_line_and_writes_nothing(tmp_path):
    target = tmp_path / "fa.yaml"
    result = _cli("init", "adv", "--out", str(target), "--from-account", "--region", "eu-west-1",
                  AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
                  AWS_MAX_ATTEMPTS="1")
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert "cannot reach http://127.0.0.1:9/: Connection refused" in result.stderr
    assert not target.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["nan", "-5", "0", "inf", "ten"])
def test_restore_refuses_a_timeout_that_is_no_positive_number_before_any_aws_call(value):
    result = _cli("restore", "--env", "dev", "--timeout", value, "--yes", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    assert result.returncode == 2, result
    assert "argument --timeout" in result.stderr and "cannot reach" not in result.stderr


def test_a_limit_met_at_render_names_the_file_and_the_field(env_document, tmp_path):
    """A limit only the rendering meets (user data over 16 KB) is the file's mistake: the error
    names the file given and k3s.tls_san, not 'environment <name>'."""
    import yaml

    document = env_document("dev")
    document["k3s"]["tls_san"] = [f"{'a' * 60}.x{i}.example.com" for i in range(100)]
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(document))
    result = _cli("render", "--config", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result
    assert result.stderr.startswith(f"error: {path}: k3s.tls_san: user data of server-init would be "), result.stderr
    assert not (tmp_path / "out").exists()
