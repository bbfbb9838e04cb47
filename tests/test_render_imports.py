"""Rendering imports neither boto3 nor cfn-lint (nor checkov's world): a whole-process check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

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
