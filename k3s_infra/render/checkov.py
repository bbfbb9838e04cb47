"""checkov security policy checks on rendered templates.

checkov pins an old boto3, so it lives in its own tool environment
(``make checkov`` creates ``.venv-checkov``) and runs as a subprocess; it is
never a dependency of the deployer. Found through ``K3S_INFRA_CHECKOV``, the
project's tool environment, or PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from k3s_infra.render.lint import Finding

PROJECT_TOOL = Path(__file__).resolve().parents[2] / ".venv-checkov" / "bin" / "checkov"


class CheckovError(RuntimeError):
    """checkov could not be run or its report could not be read."""


def find() -> str | None:
    explicit = os.environ.get("K3S_INFRA_CHECKOV")
    if explicit:
        return explicit
    if PROJECT_TOOL.exists():
        return str(PROJECT_TOOL)
    return shutil.which("checkov")


def scan(folder: Path, executable: str) -> list[Finding]:
    """Failed checks of every template in ``folder`` (skips declared in Metadata are honoured)."""
    result = subprocess.run(
        [executable, "--directory", str(folder), "--framework", "cloudformation", "--skip-download",
         "--quiet", "--output", "json"], capture_output=True, text=True, timeout=300)
    try:
        report = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        raise CheckovError(f"checkov gave no report (exit {result.returncode}): {result.stderr.strip()[-400:]}") \
            from None
    reports = report if isinstance(report, list) else [report]
    findings = []
    for part in reports:
        for check in part.get("results", {}).get("failed_checks", []):
            resource = check.get("resource", "")
            findings.append(Finding(
                file=Path(check.get("file_path", "")).name, rule=check["check_id"], severity="error",
                resource=f"Resources.{resource.rsplit('.', 1)[-1]}" if resource else "",
                message=check.get("check_name", ""), line=(check.get("file_line_range") or [0])[0]))
    return findings
