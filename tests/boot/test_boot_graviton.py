"""A Graviton pool's nodes install the arm64 K3s files: the boot picks the release's names for
``uname -m`` (aarch64 on Graviton Linux) as k3s-io/k3s:install.sh does (setup_verify_arch:
aarch64|arm64 -> arm64, binary k3s-arm64, images k3s-airgap-images-arm64.tar.zst), and reads
them from the artifact bucket by the digests its node stack gets: the root's arm64 ones."""

from __future__ import annotations

import hashlib

from tests.support.boot_sandbox import genuine_k3s
from tests.support.k3s_release import SANDBOX_IMAGES


def test_the_graviton_pool_of_prod_installs_the_arm64_binary(sandbox, user_data, rendered):
    prod = rendered["prod"]
    (arm,) = [p for p in prod.env.agent_pools if p.name == "arm"]
    assert all(t.split(".")[0].endswith(("g", "gn", "gd")) for t in arm.instance_types)  # Graviton types
    run = sandbox.run(user_data("prod", "AgentPoolArm"), api_up_after=0, arch="aarch64")
    assert run.returncode == 0, run.stderr
    prefix = f"{prod.env.stack_name}/k3s"
    binary = hashlib.sha256(genuine_k3s().encode()).hexdigest()
    images = hashlib.sha256(SANDBOX_IMAGES.encode()).hexdigest()
    assert [c[c.index("--key") + 1] for c in run.aws_calls if "get-object" in c] == [
        f"{prefix}/{binary}/k3s-arm64", f"{prefix}/{images}/k3s-airgap-images-arm64.tar.zst"]
    assert run.path("/var/lib/rancher/k3s/agent/images/k3s-airgap-images-arm64.tar.zst").is_file()
    assert run.installed and run.systemctl_calls[-1] == ["start", "k3s-agent"]
    # The root gives this stack its arm64 digests (deploy/artifacts.py resolves them per architecture).
    parameters = prod.root["Resources"]["AgentPoolArm"]["Properties"]["Parameters"]
    assert parameters["K3sBinarySha256"] == {"Ref": "K3sBinarySha256Arm64"}
    assert parameters["K3sImagesSha256"] == {"Ref": "K3sImagesSha256Arm64"}
