"""The wheel pip and pipx users install carries what the CLI needs outside a clone: the
example environments, defaults.yaml, the JSON schema, the boot script, py.typed, the
licence, and every package of the source tree."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _fresh_clone(into: Path) -> Path:
    """The source tree without what .gitignore keeps out of a clone: setuptools packs whatever an
    earlier build left in build/lib into the next wheel (https://github.com/pypa/setuptools/issues/1871),
    so a build in the working tree could ship a package setup.cfg no longer lists."""
    ignored = [line.strip().rstrip("/") for line in (ROOT / ".gitignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    shutil.copytree(ROOT, into, ignore=shutil.ignore_patterns(".git", *ignored))
    return into


@pytest.fixture(scope="module")
def wheel_path(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = _fresh_clone(out / "src")
    # --no-build-isolation: the venv's setuptools, no download
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                             "--wheel-dir", str(out), str(source)], capture_output=True, text=True, timeout=300,
                            cwd=out)
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = out.glob("k3s_infra-*.whl")
    return path


@pytest.fixture(scope="module")
def wheel(wheel_path) -> zipfile.ZipFile:
    return zipfile.ZipFile(wheel_path)


def test_wheel_ships_environments_defaults_schema_and_boot_script(wheel):
    names = set(wheel.namelist())
    shipped = {f"k3s_infra/environments/{p.name}" for p in (ROOT / "environments").iterdir()
               if p.suffix in (".yaml", ".json")}
    assert {"k3s_infra/environments/defaults.yaml", "k3s_infra/environments/schema.json",
            "k3s_infra/environments/dev.yaml"} <= shipped <= names
    assert {"k3s_infra/py.typed", "k3s_infra/bootstrap/boot.sh"} <= names
    # the files are the repository's, not copies that could drift
    for name in shipped:
        assert wheel.read(name) == (ROOT / "environments" / Path(name).name).read_bytes()


def test_wheel_holds_every_package_of_the_tree(wheel):
    """setup.cfg lists packages by hand (to map environments/ and stacks/): a new subpackage must be added there."""
    names = set(wheel.namelist())
    for init in ROOT.glob("k3s_infra/**/__init__.py"):
        assert str(init.relative_to(ROOT)) in names, f"{init.parent.relative_to(ROOT)} missing from setup.cfg packages"
    for init in ROOT.glob("stacks/**/__init__.py"):
        assert f"k3s_infra/{init.relative_to(ROOT)}" in names, f"{init.parent.relative_to(ROOT)} missing"


def test_wheel_installs_no_top_level_package_but_k3s_infra(wheel):
    """A wheel's top-level folders land in site-packages as they are: a `stacks` there would shadow,
    or be shadowed by, any other distribution's `stacks` (the repository's stacks/ ships as k3s_infra.stacks)."""
    top = {name.split("/")[0] for name in wheel.namelist()}
    (dist_info,) = [t for t in top if t.endswith(".dist-info")]
    assert top == {"k3s_infra", dist_info}
    assert wheel.read(f"{dist_info}/top_level.txt").decode().split() == ["k3s_infra"]
    assert {f"k3s_infra/stacks/{p.name}" for p in (ROOT / "stacks").glob("*.py")} <= set(wheel.namelist())


def test_installed_wheel_renders_what_the_clone_renders(wheel_path, tmp_path):
    """Installed outside the clone (no editable mapping, no repository on the path), the wheel's
    k3s_infra.stacks renders prod byte for byte as the working tree does."""
    site = tmp_path / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
                              "--target", str(site), str(wheel_path)], capture_output=True, text=True, timeout=120)
    assert install.returncode == 0, install.stderr[-3000:]
    render = [sys.executable, "-m", "k3s_infra", "render", "--env", "prod", "--out"]
    # PYTHONPATH first on sys.path: the installed copy, found before this venv's editable install
    installed = subprocess.run([*render, str(tmp_path / "installed")], cwd=tmp_path, capture_output=True, text=True,
                               timeout=120, env={**os.environ, "PYTHONPATH": str(site)})
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert subprocess.run([sys.executable, "-c", "import k3s_infra.stacks as s; print(s.__file__)"], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(site)}
                          ).stdout.startswith(str(site))
    clone = subprocess.run([*render, str(tmp_path / "clone")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert clone.returncode == 0, clone.stderr[-3000:]
    files = sorted(p.name for p in (tmp_path / "clone").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "installed").iterdir()) and "root.yaml" in files
    for name in files:
        assert (tmp_path / "installed" / name).read_bytes() == (tmp_path / "clone" / name).read_bytes(), name


def test_wheel_metadata_licence_and_single_sourced_version(wheel):
    import k3s_infra

    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    text = wheel.read(metadata).decode()
    assert f"Version: {k3s_infra.__version__}\n" in text
    assert "License: Apache-2.0" in text and "Classifier: License :: OSI Approved :: Apache Software License" in text
    assert "Classifier: Typing :: Typed" in text
    licence = [n for n in wheel.namelist() if n.endswith("/LICENSE")]
    assert licence and b"Apache License" in wheel.read(licence[0]) and b"Version 2.0" in wheel.read(licence[0])
    entry_points = wheel.read(metadata.replace("METADATA", "entry_points.txt")).decode()
    assert "k3s-infra = k3s_infra.cli:entry" in entry_points


def test_setup_cfg_reads_the_version_from_the_package():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["metadata"]["version"].strip() == "attr: k3s_infra.__version__"
