"""A Graviton pool's nodes install the arm64 K3s binary: the user data names no
architecture, the boot picks the release asset for ``uname -m`` (aarch64 on Graviton
Linux) as k3s-io/k3s:install.sh does (setup_verify_arch: aarch64|arm64 -> arm64, asset
k3s-arm64, checksums sha256sum-arm64.txt)."""

from __future__ import annotations

from tests.support.boot_sandbox import OFFICIAL_RELEASES


def test_the_graviton_pool_of_prod_installs_the_arm64_binary(sandbox, user_data, rendered):
    prod = rendered["prod"]
    (arm,) = [p for p in prod.env.agent_pools if p.name == "arm"]
    assert all(t.split(".")[0].endswith(("g", "gn", "gd")) for t in arm.instance_types)  # Graviton types
    version = prod.env.k3s.version.replace("+", "%2B")
    run = sandbox.run(user_data("prod", "AgentPoolArm"), api_up_after=0, arch="aarch64")
    assert run.returncode == 0, run.stderr
    assert [u for u in run.urls if "/releases/" in u] == [
        f"{OFFICIAL_RELEASES}/{version}/sha256sum-arm64.txt", f"{OFFICIAL_RELEASES}/{version}/k3s-arm64"]
    assert run.installed and run.systemctl_calls[-1] == ["start", "k3s-agent"]
