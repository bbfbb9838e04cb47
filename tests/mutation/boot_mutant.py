"""pytest plugin for tests/mutation/test_boot_mutations.py: node stacks embed the boot script read
from $K3S_INFRA_BOOT_MUTANT instead of the package's boot.sh, so the boot sandbox runs a
deliberately broken script. Loaded only with ``-p tests.mutation.boot_mutant`` by that test."""

from __future__ import annotations

import os
from pathlib import Path

from k3s_infra import bootstrap


def pytest_configure(config):
    text = Path(os.environ["K3S_INFRA_BOOT_MUTANT"]).read_text(encoding="utf-8")
    # bootstrap.files() looks boot_script up at call time: every render from here on embeds the mutant.
    bootstrap.boot_script = lambda: text
