"""Rendering imports neither boto3 nor cfn-lint (nor checkov's world): a whole-process check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
from k3s_infra.cli import main
assert main(["render", "--env", "prod", "--out", sys.argv[1]]) == 0
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"boto3", "botocore", "cfnlint", "moto"})
print("HEAVY:" + ",".join(heavy))
"""


def test_render_imports_no_aws_sdk_or_linter(tmp_path):
    result = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "out")], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "HEAVY:\n" in result.stdout + "\n" and (tmp_path / "out" / "root.yaml").exists()


def test_probe_would_see_a_heavy_import(tmp_path):
    """The probe is live: importing botocore first makes it report."""
    probe = "import botocore\n" + PROBE
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "out")], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert "HEAVY:botocore" in result.stdout


def test_build_py_imports_no_aws_sdk_or_linter(tmp_path):
    """The script users run, as its own process: -X importtime lists every module it imports."""
    result = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "build.py"), "--env", "prod",
                             "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert {"k3s_infra.render", "troposphere", "pydantic"} <= imported  # the listing is real
    assert not {m for m in imported if m.split(".")[0] in {"boto3", "botocore", "cfnlint", "checkov", "moto"}}
