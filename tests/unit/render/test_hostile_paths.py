"""render's output folder against a forged or damaged manifest.json (issue 24, item 8).

A re-render replaces the previous render's files and removes its leftovers, as its
manifest lists them. The manifest is only trusted as far as render could have written
it: plain template file names (``render.is_template_file``), regular files that the
manifest lists, never the environment file. Anything else makes the command refuse with
one line naming the folder or file, and the folder, its neighbours and the files any
link points at stay byte for byte as they were.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from k3s_infra.config import ENVIRONMENTS_DIR, available_environments, load_environment
from k3s_infra.render import MANIFEST, is_template_file, render, write
from k3s_infra.render.safe_output import MANIFEST_LIMIT, OutputError
from tests.support.oracle_helpers import ALL_ADDONS

DEV = ENVIRONMENTS_DIR / "dev.yaml"


@pytest.fixture(scope="module")
def dev():
    return render(load_environment("dev"))


@pytest.fixture
def site(tmp_path) -> Path:
    """An output folder with a user's file in it, and a file beside the folder."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "victim.txt").write_text("mine\n")
    (out / "environment.yaml").write_text("name: mine\n")
    (tmp_path / "victim.txt").write_text("outside\n")
    return out


def snapshot(folder: Path) -> dict[str, object]:
    """Every entry under ``folder``: file bytes, link targets, kinds."""
    found: dict[str, object] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = ("link", os.readlink(path))
        elif path.is_file():
            found[key] = path.read_bytes()
        else:
            found[key] = ("kind", path.lstat().st_mode >> 12)
    return found


def manifest(root: object = "root.yaml", *files: object, **extra: object) -> str:
    return json.dumps({"environment": "dev", "root": root, "children": [{"file": f} for f in files], **extra})


def refused(rendering, out: Path, *reasons: str, **options) -> str:
    before = snapshot(out.parent)
    with pytest.raises(OutputError) as caught:
        write(rendering, out, **options)
    message = str(caught.value)
    assert all(reason in message for reason in reasons), message
    assert "\n" not in message
    assert snapshot(out.parent) == before  # nothing written, replaced or removed
    return message


# --- the names a manifest may list ------------------------------------------------

@pytest.mark.parametrize("name", [
    "../victim.txt", "/etc/hostname", "sub/dir/file.yaml", "..", ".", ".git", ".hidden.yaml", "",
    "victim.txt", "environment.yaml", "manifest.json", "dev.yaml", "root.yml", "agent-pool-.yaml",
    "root.yaml\n", "root.yaml\x00", "a\nb", "Root.yaml", "agent-pool-x/../../victim.txt", 5, None, ["root.yaml"],
])
def test_a_manifest_naming_anything_but_a_template_file_is_no_previous_render(dev, site, name):
    (site / "a\nb").write_text("mine\n")
    (site / "root.yaml\n").write_text("mine\n")
    (site / MANIFEST).write_text(manifest("root.yaml", "security.yaml", name))
    message = refused(dev, site, "no previous render", "not a file name render writes")
    assert str(site) in message


@pytest.mark.parametrize("name", [
    "victim.txt", "environment.yaml", "a\nb",
])
def test_a_forged_root_entry_is_refused_too(dev, site, name):
    (site / "a\nb").write_text("mine\n")
    (site / MANIFEST).write_text(manifest(name))
    refused(dev, site, "no previous render")


@pytest.mark.parametrize("body, reason", [
    ("not json", "is not JSON"),
    (b"\xff\xfe{}", "is not JSON"),
    ("[]", "not a render manifest"),
    ('"root.yaml"', "not a render manifest"),
    ("null", "not a render manifest"),
    ('{"root": "root.yaml", "children": []}', "not a render manifest"),  # no environment
    ('{"environment": "dev", "root": "root.yaml"}', "no list of children"),
    ('{"environment": "dev", "root": "root.yaml", "children": {"file": "victim.txt"}}', "no list of children"),
    ('{"environment": "dev", "root": "root.yaml", "children": ["victim.txt"]}', "no list of children"),
    ("[" * 100_000 + "]" * 100_000, "is not JSON"),  # deeper than the JSON parser recurses
    (manifest("root.yaml", pad="x" * (MANIFEST_LIMIT + 1)), "larger than 1024 KiB"),
])
def test_a_manifest_that_is_not_one_render_wrote_is_refused(dev, site, body, reason):
    (site / MANIFEST).write_bytes(body if isinstance(body, bytes) else body.encode())
    refused(dev, site, "no previous render", reason)


def test_a_manifest_that_is_a_symlink_or_a_folder_is_not_read(dev, site, tmp_path):
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(manifest("root.yaml", "victim.txt"))
    (site / MANIFEST).symlink_to(elsewhere)
    refused(dev, site, "no previous render", "is a symbolic link")
    (site / MANIFEST).unlink()
    (site / MANIFEST).mkdir()
    refused(dev, site, "no previous render")


# --- the files a re-render replaces or removes ------------------------------------------

def test_listed_files_that_are_symlinks_or_folders_are_neither_replaced_nor_removed(dev, site, tmp_path):
    outside = tmp_path / "victim.txt"
    (site / MANIFEST).write_text(manifest("root.yaml", "network.yaml"))
    (site / "root.yaml").symlink_to(outside)  # a name the new render writes
    refused(dev, site, "root.yaml", "not a regular file")
    (site / "root.yaml").unlink()
    (site / "network.yaml").symlink_to(outside)  # a leftover (dev has no network stack)
    refused(dev, site, "network.yaml", "not a regular file")
    (site / "network.yaml").unlink()
    (site / "network.yaml").mkdir()
    refused(dev, site, "network.yaml", "not a regular file")
    (site / "network.yaml").rmdir()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(site / "network.yaml"))
        refused(dev, site, "network.yaml", "not a regular file")
    assert outside.read_text() == "outside\n"


def test_a_template_named_file_the_manifest_does_not_list_is_not_overwritten(dev, site):
    (site / MANIFEST).write_text(manifest("root.yaml"))
    (site / "root.yaml").write_text("old render\n")
    (site / "security.yaml").write_text("my own notes\n")
    refused(dev, site, "security.yaml", "not listed in manifest.json", "refusing to overwrite")


def test_a_manifest_listing_the_environment_file_cannot_remove_or_replace_it(dev, site):
    env_file = site / "network.yaml"  # a leftover name for dev, which has no network stack
    env_file.write_text(DEV.read_text())
    (site / MANIFEST).write_text(manifest("root.yaml", "network.yaml"))
    refused(dev, site, "network.yaml", "environment file itself", protected=(env_file,))
    env_file.rename(site / "root.yaml")  # a name the new render writes
    refused(dev, site, "root.yaml", "environment file itself", protected=(site / "root.yaml",))


def test_the_cli_protects_the_environment_file_it_read(tmp_path):
    """--config out/root.yaml --out out: the manifest (forged or not) lists root.yaml."""
    out = tmp_path / "out"
    out.mkdir()
    env_file = out / "root.yaml"
    env_file.write_text(DEV.read_text())
    (out / MANIFEST).write_text(manifest("root.yaml"))
    before = snapshot(tmp_path)
    result = subprocess.run([sys.executable, "-m", "k3s_infra", "render", "--config", str(env_file),
                             "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {env_file}: is the environment file itself")
    assert snapshot(tmp_path) == before


def test_a_fifo_manifest_does_not_block_the_cli(tmp_path):
    # In a subprocess: a regression would block on the FIFO, and the timeout ends it.
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / MANIFEST)
    result = subprocess.run([sys.executable, "-m", "k3s_infra", "render", "--env", "dev", "--out", str(out)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "no previous render" in result.stderr and "not a regular file" in result.stderr


# --- what still works ------------------------------------------------------------

def test_a_rerender_replaces_its_files_and_removes_its_leftovers_only(dev, tmp_path):
    out = tmp_path / "out"
    write(render(load_environment("prod")), out)
    assert (out / "agent-pool-spot-batch.yaml").is_file()
    (out / "draft.yaml").write_text("mine\n")
    (out / "environment.yaml").write_text("name: mine\n")
    write(dev, out)
    names = {p.name for p in out.iterdir()}
    assert names == {s.file for s in dev.stacks} | {MANIFEST, "environment.yaml", "draft.yaml"}
    assert all((out / s.file).read_text() == s.body for s in dev.stacks)
    assert json.loads((out / MANIFEST).read_text()) == dev.manifest()
    write(dev, out)  # and again over itself
    assert {p.name for p in out.iterdir()} == names
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging folder left


def test_a_rerender_stopped_half_way_leaves_a_folder_the_next_render_accepts(dev, tmp_path, monkeypatch):
    """The manifest in place while files move lists the old and the new files: whatever
    moved before the stop is vouched for (else the next render would refuse it as foreign)."""
    site = tmp_path / "out"
    write(render(load_environment("prod", overrides={"agent_pools": [
        {"name": "other", "instance_types": ["t3.small"], "min_size": 0, "desired": 0, "max_size": 1}]})), site)
    real, moves = os.replace, []

    def stop_before_the_final_manifest(source, target):
        moves.append(Path(target).name)
        if Path(target).name == MANIFEST and len(moves) > 1:
            raise KeyboardInterrupt
        real(source, target)

    monkeypatch.setattr(os, "replace", stop_before_the_final_manifest)
    with pytest.raises(KeyboardInterrupt):
        write(dev, site)
    assert "agent-pool-general.yaml" in moves  # a new name moved in, the old manifest does not list it
    monkeypatch.setattr(os, "replace", real)
    write(dev, site)
    assert json.loads((site / MANIFEST).read_text()) == dev.manifest()
    assert not (site / "agent-pool-other.yaml").exists()
    assert {p.name for p in site.iterdir()} == {s.file for s in dev.stacks} | {MANIFEST}


def test_a_forged_manifest_cannot_name_a_file_of_yours_into_deletion(dev, tmp_path):
    """Adversarial pass of issue 24: the manifest lists agent-pool-notes.yaml with a digest its
    bytes do not have (or none): render never wrote it, so it is left alone; a file whose bytes are
    what the manifest recorded (a real leftover) is removed."""
    import hashlib

    out = tmp_path / "out"
    write(dev, out)
    (out / "agent-pool-notes.yaml").write_text("my notes\n")
    (out / "agent-pool-old.yaml").write_text("an old pool's template\n")
    data = json.loads((out / MANIFEST).read_text())
    data["children"] += [{"file": "agent-pool-notes.yaml", "sha256": "0" * 64},
                         {"file": "agent-pool-unhashed.yaml"},
                         {"file": "agent-pool-old.yaml",
                          "sha256": hashlib.sha256(b"an old pool's template\n").hexdigest()}]
    (out / "agent-pool-unhashed.yaml").write_text("mine too\n")
    (out / MANIFEST).write_text(json.dumps(data))
    write(dev, out)
    assert (out / "agent-pool-notes.yaml").read_text() == "my notes\n"
    assert (out / "agent-pool-unhashed.yaml").read_text() == "mine too\n"
    assert not (out / "agent-pool-old.yaml").exists()


def test_every_file_a_render_writes_is_a_template_file_name(dev):
    """is_template_file is the whitelist a manifest is judged by: it must know every stack
    (write refuses to write a name it does not know, so a new stack fails here first)."""
    for rendering in [dev, render(load_environment(path=ALL_ADDONS), "json"),
                      *(render(load_environment(name)) for name in available_environments() if name != "dev")]:
        assert all(is_template_file(stack.file) for stack in rendering.stacks)
    assert not is_template_file(MANIFEST) and not is_template_file("environment.yaml")
