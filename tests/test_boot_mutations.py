"""Mutation check of boot.sh, which mutmut cannot mutate (it only mutates Python).

Each mutation below is a plausible regression of a safety property of the boot; the boot
sandbox tests named with it must fail when the nodes embed the mutated script, and pass
with the genuine one (the control run). Each run is a pytest subprocess with the
``boot_mutant`` plugin (tests/boot/boot_mutant.py) swapping the script the node stacks embed.
Slow (~1 min): part of ``make mutate``, skipped by ``make test`` unless K3S_INFRA_BOOT_MUTATIONS=1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from k3s_infra import bootstrap

ROOT = Path(__file__).resolve().parents[1]
BOOT = "tests/boot/"

pytestmark = pytest.mark.skipif(os.environ.get("K3S_INFRA_BOOT_MUTATIONS") != "1",
                                reason="slow: make mutate runs it (K3S_INFRA_BOOT_MUTATIONS=1)")

FAILURE_SIGNAL = BOOT + "test_boot_signals.py::test_readiness_never_reached_signals_failure_once_and_reports_unhealthy"
FIRST_SERVER = BOOT + "test_boot_server_init.py::test_first_server_initialises_the_cluster"
TAMPERED = BOOT + "test_boot_install.py::test_a_tampered_binary_fails_the_boot_and_starts_nothing"
IMDSV2 = BOOT + "test_boot_server_init.py::test_metadata_comes_from_imdsv2_with_a_session_token"

# (name, text in the shipped script, replacement, tests that must catch it)
MUTATIONS = [
    # A failed boot must tell CloudFormation, or the stack waits out the whole signal timeout.
    ("no FAILURE signal on exit", "    signal FAILURE\n", "", [FAILURE_SIGNAL]),
    # Without --no-should-respect-grace-period the Unhealthy report is ignored during the grace
    # period (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetInstanceHealth.html).
    ("grace period respected", " --no-should-respect-grace-period", "", [FAILURE_SIGNAL]),
    # Without --query the CLI prints the whole GetSecretValue response: the token file would hold JSON.
    ("secret read without --query", "--secret-id \"$1\" --query SecretString", "--secret-id \"$1\"",
     [FIRST_SERVER]),
    # The checksum comparison is what keeps an unverified binary from running as root.
    ("checksum never compared", 'if [ "$actual" != "$expected" ]; then', "if false; then", [TAMPERED]),
    # Token files must be root-only (0600): the umask is what makes the shell's redirections so.
    ("umask widened", "umask 077\n", "umask 022\n", [FIRST_SERVER]),
    # IMDSv2: every metadata read carries the session token (HttpTokens=required refuses others).
    ("IMDSv1 reads", '-H "X-aws-ec2-metadata-token: $imds_token" ', "", [IMDSV2]),
]


def _run_boot_tests(script: str, tests: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    mutant = tmp_path / "boot.sh"
    mutant.write_text(script, encoding="utf-8")
    env = dict(os.environ, K3S_INFRA_BOOT_MUTANT=str(mutant),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "tests" / "boot"), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "boot_mutant", "-p", "no:cacheprovider",
                           *tests], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_genuine_script_passes_every_test_the_mutations_use(tmp_path):
    tests = sorted({t for *_, selected in MUTATIONS for t in selected})
    done = _run_boot_tests(bootstrap.boot_script(), tests, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.mark.parametrize("name,original,mutated,tests", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_the_boot_sandbox_catches_the_mutation(tmp_path, name, original, mutated, tests):
    script = bootstrap.boot_script()
    assert script.count(original) == 1, f"{name}: the mutation no longer applies to boot.sh"
    done = _run_boot_tests(script.replace(original, mutated), tests, tmp_path)
    assert done.returncode == 1, f"{name} survived (pytest exit {done.returncode}):\n{done.stdout[-3000:]}"
