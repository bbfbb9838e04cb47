"""Global flags: --version, -q, --region, --debug's redaction, shell completion kept out
of the render path, --output json of render and lint."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from k3s_infra.cli import main
from k3s_infra.cli.logs import MASK, RedactingFilter, redact

ROOT = Path(__file__).resolve().parents[3]


def test_version_is_the_installed_distributions(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"k3s-infra {metadata.version('k3s-infra')}"


def test_global_flags_work_before_and_after_the_command(tmp_path, capsys):
    assert main(["-q", "render", "--env", "dev", "--out", str(tmp_path / "a")]) == 0
    assert main(["render", "--env", "dev", "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert capsys.readouterr().out == ""  # quiet: nothing for people on stdout
    assert (tmp_path / "a" / "root.yaml").is_file() and (tmp_path / "b" / "root.yaml").is_file()
    assert main(["render", "--env", "dev", "--out", str(tmp_path / "c")]) == 0
    assert "rendered dev" in capsys.readouterr().out  # and the redirect ended with the command


def test_region_overrides_the_file_and_is_validated_again(tmp_path, capsys):
    # environments/dev.yaml: eu-west-1 with subnets in eu-west-1a/b; another region must refuse them
    assert main(["--region", "us-east-1", "render", "--env", "dev", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "network.subnets" in err and "outside region us-east-1" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_render_output_json_is_the_manifest(tmp_path, capsys):
    assert main(["render", "--env", "dev", "--out", str(tmp_path / "dev"), "--output", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    written = json.loads((tmp_path / "dev" / "manifest.json").read_text())
    assert doc["kind"] == "render" and doc["version"] == 1
    assert doc["manifest"] == written and doc["manifest"]["environment"] == "dev"
    assert doc["out"] == str((tmp_path / "dev").resolve())
    assert doc["bytes"]["root.yaml"] == (tmp_path / "dev" / "root.yaml").stat().st_size


def test_lint_output_json_lists_findings(capsys):
    assert main(["lint", "--env", "dev", "--no-checkov", "--output", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"kind": "lint", "version": 1, "environment": "dev", "findings": [], "checkov": False}


SECRET = "K10abcdef0123456789::server:s3cr3t-token"


@pytest.mark.parametrize("line", [
    # botocore's response body log (JSON protocol), a parsed response, a form-encoded request
    f"Response body: b'{{\"ARN\":\"arn:aws:secretsmanager:x\",\"SecretString\":\"{SECRET}\",\"VersionId\":\"1\"}}'",
    f"Response: {{'ARN': 'arn', 'SecretString': '{SECRET}', 'Name': 'n'}}",
    f"Action=PutSecretValue&SecretString={SECRET}&Version=1",
    f"{{'SecretBinary': b'{SECRET}'}}",
    f"headers={{'X-Amz-Security-Token': b'{SECRET}', 'Authorization': b'AWS4-HMAC-SHA256 Credential=x, Signature={SECRET}'}}",
    f"'SecretString': 'apiVersion: v1\\nusers:\\n- user:\\n    token: {SECRET}\\n'",
])
def test_redaction_masks_secrets_and_keeps_the_rest(line):
    masked = redact(line)
    assert SECRET not in masked and MASK in masked


def test_redaction_masks_access_keys_and_filters_records():
    record = logging.LogRecord("botocore.endpoint", logging.DEBUG, __file__, 1, "key %s body %s", (
        "AKIAIOSFODNN7EXAMPLE", f'{{"SecretString": "{SECRET}"}}'), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == f'key {MASK} body {{"SecretString": "{MASK}"}}'
    assert redact("StackName=k3s-dev&Action=DescribeStacks") == "StackName=k3s-dev&Action=DescribeStacks"


def test_completion_library_is_loaded_only_for_a_completing_shell(tmp_path):
    probe = ("import sys\nfrom k3s_infra.cli import main\n"
             "main(['render', '--env', 'dev', '--out', sys.argv[1]])\nprint('argcomplete' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "out")], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("False")


@pytest.mark.parametrize("line, wanted, unwanted", [
    ("k3s-infra st", "status", "render"),
    ("k3s-infra status --ou", "--output", "--env"),
])
def test_completion_offers_commands_and_flags(line, wanted, unwanted):
    """argcomplete's protocol: COMP_LINE/COMP_POINT in, candidates out on file descriptor 8."""
    import os

    env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
           "_ARGCOMPLETE_IFS": "\n"}
    result = subprocess.run(["sh", "-c", 'exec "$0" -m k3s_infra 8>&1 9>/dev/null', sys.executable], env=env,
                            cwd=ROOT, timeout=60, capture_output=True, text=True)
    offered = [word.strip() for word in result.stdout.split("\n")]
    assert wanted in offered and unwanted not in offered, result
