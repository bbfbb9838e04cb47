"""Nothing runs as root unless its checksum is known, and nothing comes from the internet: the
boot reads the K3s binary and the airgap images tarball of its architecture from the cluster's
artifact bucket (where the deployer staged them: deploy/artifacts.py), by the SHA-256 its node
stack pins (the key names it: <stack>/k3s/<sha256>/<release file name>), checks both before it
installs either, places the images where K3s imports them when it starts
(https://docs.k3s.io/installation/airgap, "Manually Deploy Images Method":
/var/lib/rancher/k3s/agent/images/k3s-airgap-images-<arch>.tar.zst), then installs the unit the
official installer would write and starts it with a bound. Asset names and unit: k3s-io/k3s
install.sh (setup_verify_arch, create_systemd_service_file)."""

from __future__ import annotations

import configparser
import hashlib

import pytest
import yaml

from k3s_infra import bootstrap
from k3s_infra.config import ConfigError, validate
from k3s_infra.model import roles
from tests.support.boot_sandbox import (
    JOIN_URL,
    PARAMETERS,
    SERVER_STARTS,
    boot_env,
    expand,
    genuine_k3s,
)
from tests.support.k3s_release import SANDBOX_IMAGES

IMAGES_DIR = "/var/lib/rancher/k3s/agent/images"  # the K3s docs' path, above
BINARY_SHA = hashlib.sha256(genuine_k3s().encode()).hexdigest()
IMAGES_SHA = hashlib.sha256(SANDBOX_IMAGES.encode()).hexdigest()


def _k3s_reads(run) -> list[tuple[str, str]]:
    """(bucket, key) of every S3 GetObject of a K3s file the boot made."""
    reads = [(c[c.index("--bucket") + 1], c[c.index("--key") + 1]) for c in run.aws_calls if "get-object" in c]
    return [(bucket, key) for bucket, key in reads if "/k3s/" in key]


def _outside(run) -> list[str]:
    """URLs the boot asked for beyond this instance, its metadata and the cluster's API."""
    return [u for u in run.urls if not u.startswith(("http://127.0.0.1", "https://127.0.0.1", JOIN_URL))]


@pytest.mark.parametrize("machine,arch,binary", [("x86_64", "amd64", "k3s"), ("aarch64", "arm64", "k3s-arm64")])
def test_the_node_installs_k3s_and_its_images_from_the_artifact_bucket_never_the_internet(
        sandbox, user_data, rendered, machine, arch, binary):
    env = rendered["prod"].env
    run = sandbox.run(user_data("prod", "Servers"), api_up_after=0, arch=machine)
    assert run.returncode == 0, run.stderr
    images = f"k3s-airgap-images-{arch}.tar.zst"
    # The bucket the deployer uploads to, keys from the digests the stack's parameters pin.
    assert _k3s_reads(run) == [(env.artifact_bucket, f"{env.stack_name}/k3s/{BINARY_SHA}/{binary}"),
                               (env.artifact_bucket, f"{env.stack_name}/k3s/{IMAGES_SHA}/{images}")]
    assert _outside(run) == []  # no release host, no mirror: nodes may have no way to the internet
    assert run.installed  # /usr/local/bin/k3s 0755, kubectl/crictl/ctr links
    placed = run.path(f"{IMAGES_DIR}/{images}")
    assert placed.read_text() == SANDBOX_IMAGES and placed.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in placed.parent.iterdir()) == [images]
    # Downloaded on disk beside the images' folder, never into /tmp (a tmpfs on Amazon Linux
    # 2023: a few hundred MB of RAM), and that folder gone once they are in place.
    outfiles = [call[-1] for call in run.aws_calls if "get-object" in call and "/k3s/" in " ".join(call)]
    assert outfiles and all(f.startswith(str(run.path(IMAGES_DIR + ".download"))) for f in outfiles), outfiles
    assert not run.path(IMAGES_DIR + ".download").exists()
    for digest in (BINARY_SHA, IMAGES_SHA):
        assert f"sha256: expected {digest}, actual {digest}" in run.stderr  # the boot log shows both
    # Both read and checked before K3s was enabled or started.
    last_read = max(i for i, call in enumerate(run.sequence) if "get-object" in call)
    assert last_read < run.position("systemctl", "enable", "k3s")
    assert run.systemctl_calls == SERVER_STARTS
    # The installed binary is what runs afterwards (readiness checks go through it).
    assert run.k3s_calls and run.k3s_calls[0][0] == "kubectl"


def test_a_tampered_binary_fails_the_boot_and_starts_nothing(sandbox, user_data):
    tampered = "#!/bin/sh\necho owned\n"
    run = sandbox.run(user_data("prod", "AgentPoolGeneral"), api_up_after=0, binary=tampered)
    assert run.returncode == 1
    actual = hashlib.sha256(tampered.encode()).hexdigest()
    assert f"expected {BINARY_SHA}, actual {actual}" in run.stderr and "error: checksum mismatch" in run.stderr
    assert not run.installed and not run.state["started"] and not run.path(IMAGES_DIR).exists()
    assert not any(call[:1] in (["start"], ["enable"]) for call in run.systemctl_calls)
    assert run.k3s_calls == []  # the tampered bytes never ran
    assert [s[3] for s in run.signals] == ["FAILURE"]
    assert not list(run.tmp.iterdir())  # the rejected download is removed


def test_tampered_images_are_refused_before_anything_is_installed(sandbox, user_data):
    run = sandbox.run(user_data("prod", "Servers"), api_up_after=0, images="not the release's images\n")
    assert run.returncode == 1
    actual = hashlib.sha256(b"not the release's images\n").hexdigest()
    assert f"expected {IMAGES_SHA}, actual {actual}" in run.stderr and "error: checksum mismatch" in run.stderr
    # The binary matched, yet it is not installed: nothing is, until both match.
    assert f"expected {BINARY_SHA}, actual {BINARY_SHA}" in run.stderr
    assert not run.installed and not run.path(IMAGES_DIR).exists() and not run.state["started"]
    assert [s[3] for s in run.signals] == ["FAILURE"]


def test_the_keys_follow_the_digests_the_node_stack_pins(sandbox, rendered):
    """Another deploy's digests (say, a K3s upgrade) are other keys: a node never takes a file by
    its name alone. Absent ones fail the boot (S3 answers AccessDenied without s3:ListBucket)."""
    env = rendered["dev"].env
    other = {**PARAMETERS, "K3sBinarySha256": "1" * 64, "K3sImagesSha256": "2" * 64}
    run = sandbox.run(expand(rendered["dev"].templates["AgentPoolGeneral"], other), api_up_after=0)
    assert run.returncode == 1
    assert _k3s_reads(run)[0] == (env.artifact_bucket, f"{env.stack_name}/k3s/{'1' * 64}/k3s")
    assert f"error: cannot read k3s of K3s {env.k3s.version} from s3://{env.artifact_bucket}/" in run.stderr
    assert not run.installed and [s[3] for s in run.signals] == ["FAILURE"]


@pytest.mark.parametrize("stack_id", ["ServerInit", "Servers", "AgentPoolGeneral"])
def test_the_user_data_names_no_release_url_and_pins_no_checksum_of_its_own(rendered, stack_id):
    """What a node reads comes from its stack's parameters; k3s.release_url and k3s.binary_sha256
    are the deployer's (deploy/artifacts.py), not the node's."""
    template = rendered["prod"].templates[stack_id]
    settings = boot_env(expand(template))
    assert (settings["K3S_BINARY_SHA256"], settings["K3S_IMAGES_SHA256"]) == (BINARY_SHA, IMAGES_SHA)
    assert not [key for key in settings if key in ("RELEASE_URL", "CHECKSUM_URL") or key.startswith("K3S_SHA256")]
    assert "github.com" not in yaml.safe_dump(template["Resources"])
    for name in ("K3sBinarySha256", "K3sImagesSha256"):  # only hex digits reach boot.env
        assert template["Parameters"][name]["AllowedPattern"] == "^[0-9a-f]{64}$"


@pytest.mark.parametrize("role,service,command", [("server-init", "k3s", "server"), ("server", "k3s", "server"),
                                                  ("agent", "k3s-agent", "agent")])
def test_the_unit_is_the_official_one_with_a_bounded_first_start(rendered, role, service, command):
    env = rendered["prod"].env
    pool = env.agent_pools[0] if role == "agent" else None
    entries = {e["path"]: bootstrap.unpacked(e) for e in bootstrap.files(env, roles.by_name(role), pool)}
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    text = entries[f"/etc/systemd/system/{service}.service"]
    unit.read_string(text)
    s = unit["Service"]
    assert (s["Type"], s["KillMode"], s["Delegate"], s["Restart"]) == ("notify", "process", "yes", "always")
    assert s["LimitNOFILE"] == "1048576" and s["TimeoutStartSec"] == "0"
    assert s["ExecStart"] == f"/usr/local/bin/k3s {command}"
    assert [line for line in text.splitlines() if line.startswith("ExecStartPre=")] == [
        "ExecStartPre=-/sbin/modprobe br_netfilter", "ExecStartPre=-/sbin/modprobe overlay"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    # The first start is bounded by a runtime drop-in (/run: gone after a reboot).
    drop_in = configparser.ConfigParser(interpolation=None)
    drop_in.read_string(entries[f"/run/systemd/system/{service}.service.d/10-first-start.conf"])
    assert drop_in["Service"]["TimeoutStartSec"] == "300s"


def test_the_old_installer_key_is_refused_with_what_replaces_it(env_document):
    document = env_document("dev")
    document["k3s"]["installer_url"] = "https://get.k3s.io"
    with pytest.raises(ConfigError) as error:
        validate(document, "dev.yaml")
    message = str(error.value)
    assert message.startswith("dev.yaml: k3s.installer_url:")
    assert "k3s.release_url" in message and "k3s.binary_sha256" in message


@pytest.mark.parametrize("bad", ["abc", "G" * 64, "A" * 64])
def test_a_pinned_checksum_must_be_a_sha256(env_document, bad):
    document = env_document("dev")
    document["k3s"]["binary_sha256"] = {"arm64": bad}
    with pytest.raises(ConfigError, match=r"k3s\.binary_sha256\.arm64"):
        validate(document, "dev.yaml")


def test_every_network_call_of_the_boot_has_a_time_limit(sandbox, user_data):
    """curl has no total time limit by default (https://curl.se/docs/manpage.html#-m): one
    stalled connection (a black-holed NLB) would outlast the group's signal timeout. Every curl
    of a joining server's boot (metadata, API probes) is bounded; its S3 reads carry the AWS CLI's
    bounds (test_boot_bounds.py checks every aws call)."""
    run = sandbox.run(user_data("prod", "Servers"), api_up_after=0)
    assert run.returncode == 0, run.stderr
    assert any(u.endswith("/ping") for u in run.urls) and len(_k3s_reads(run)) == 2
    unbounded = [call for call in run.curl_calls if "--max-time" not in call and "-m" not in call]
    assert unbounded == []
    reads = [c for c in run.raw_calls("aws") if "get-object" in c]
    assert reads and all("--cli-connect-timeout" in c and "--cli-read-timeout" in c for c in reads)
