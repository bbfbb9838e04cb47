"""`python build.py`: output layout, determinism, atomic writes and refusals of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


def build(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "build.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_render_twice_gives_byte_identical_output(tmp_path, env):
    first, second = build("--env", env, "--out", str(tmp_path / "a")), build("--env", env, "--out", str(tmp_path / "b"))
    assert first.returncode == second.returncode == 0, first.stderr
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    files = {"root.yaml", manifest["create_root"], "manifest.json", *(c["file"] for c in manifest["children"])}
    assert manifest["create_root"] == "root-create.yaml"  # the root of a first create (stacks/root.py)
    assert set(tree(tmp_path / "a")) == files
    assert len(manifest["children"]) >= 6


def test_default_output_folder_and_json_format(tmp_path):
    result = build("--env", "dev", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    root = json.loads((tmp_path / "build" / "dev" / "root.json").read_text())
    assert all(r["Properties"]["TemplateURL"].endswith(".json") for r in root["Resources"].values())


def test_rerender_replaces_the_folder_without_leftovers(tmp_path):
    out = tmp_path / "out"
    assert build("--env", "prod", "--out", str(out)).returncode == 0
    assert build("--env", "dev", "--out", str(out)).returncode == 0
    assert not (out / "agent-pool-spot-batch.yaml").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folders left


def test_unknown_environment_lists_the_existing_ones(tmp_path):
    result = build("--env", "qa", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "unknown environment 'qa'" in result.stderr and "dev, prod" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


BROKEN = {
    "unknown key deep": ("servers:\n  count: 1\n  colour: blue\n", "servers.colour"),
    "unknown key in a pool": ("agent_pools:\n  - {name: general, instance_types: [t3.small], min_size: 1, desired: 1,"
                              " max_size: 2, gpu: true}\n", "agent_pools[general].gpu"),
    "wrong type": ("servers:\n  count: three\n", "servers.count"),
    "broken yaml": ("servers: [1, 2\n", "invalid YAML: line"),
    "not a mapping": ("- a\n- b\n", "must be a mapping"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_environment_files_are_refused_cleanly(tmp_path, case):
    override, expected = BROKEN[case]
    env_file = tmp_path / "env.yaml"
    # extends: defaults.yaml is found in the project's environments folder.
    base = (ROOT / "environments" / "dev.yaml").read_text()
    document = yaml.safe_load(base)
    if case in ("broken yaml", "not a mapping"):
        env_file.write_text(override)
    else:
        document.update(yaml.safe_load(override))
        env_file.write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    result = build("--config", str(env_file), "--out", str(out))
    assert result.returncode == 2
    assert str(env_file) in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_refusal_leaves_an_existing_build_untouched(tmp_path):
    out = tmp_path / "out"
    assert build("--env", "dev", "--out", str(out)).returncode == 0
    before = tree(out)
    env_file = tmp_path / "env.yaml"
    env_file.write_text("name: dev\n")
    assert build("--config", str(env_file), "--out", str(out)).returncode == 2
    assert tree(out) == before


def test_schema_command_exports_json_schema(tmp_path):
    result = subprocess.run([sys.executable, "-m", "k3s_infra", "schema"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["properties"]["servers"]["$ref"].endswith("Servers")
