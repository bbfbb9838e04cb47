"""pytest plugin for tests/mutation/test_boot_mutations.py: the node script's part named by
$K3S_INFRA_BOOT_MUTANT_PART (boot_lib.sh, boot.sh: the core every node's user data carries;
first_server.sh, watch.sh: the servers' bundle) reads from the file $K3S_INFRA_BOOT_MUTANT
instead of the package's, so every node stack rendered from here on (its user data, its bundle
and the bundle's pinned SHA-256) carries a deliberately broken script, which the boot sandbox
then runs. Loaded only with ``-p tests.mutation.boot_mutant`` by that test."""

from __future__ import annotations

import os
from pathlib import Path

from k3s_infra.bootstrap import script


def pytest_configure(config):
    name = os.environ["K3S_INFRA_BOOT_MUTANT_PART"]
    text = Path(os.environ["K3S_INFRA_BOOT_MUTANT"]).read_text(encoding="utf-8")
    assert name in (*script.CORE, *script.EXTRAS), name
    genuine = script.part
    # script.boot_script() and bundle.files() look script.part up at call time (nothing is
    # rendered yet, so no cache holds the genuine part): the mutant replaces it everywhere.
    script.part = lambda part: text if part == name else genuine(part)
