"""Functions of the node script run for real outside the boot sandbox: one bash process per
table of inputs, the functions as nodes get them (bootstrap.script.boot_script, comments out)."""

from __future__ import annotations

import re
import subprocess

from k3s_infra.bootstrap import script


def function(*names: str) -> str:
    """The text of functions of the node script (one line, or from ``name() {`` to its ``}``)."""
    text, found = script.boot_script(), []
    for name in names:
        match = re.search(rf"^{name}\(\) \{{ .* \}}\n", text, re.M) or \
            re.search(rf"^{name}\(\) \{{\n.*?^\}}\n", text, re.S | re.M)
        assert match, f"the node script has no function {name}"
        found.append(match.group(0))
    return "".join(found)


def bash(program: str, *args: str, env: dict | None = None) -> list[str]:
    """Output lines of one bash process running ``program`` under the script's own options."""
    done = subprocess.run(["bash", "-c", "set -euo pipefail\nshopt -s inherit_errexit\n" + program, "guards", *args],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", **(env or {})})
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()
