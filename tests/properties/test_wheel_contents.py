"""The wheel pip and pipx users install carries what the CLI needs outside a clone: the
example environments, defaults.yaml, the JSON schema, the boot script, py.typed, the
licence, and every package of the source tree."""

from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # --no-build-isolation: the venv's setuptools, no download; the build dir stays out of the repo
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                             "--wheel-dir", str(out), str(ROOT)], capture_output=True, text=True, timeout=300,
                            cwd=out)
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = out.glob("k3s_infra-*.whl")
    return zipfile.ZipFile(path)


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
    """setup.cfg lists packages by hand (to map environments/): a new subpackage must be added there."""
    names = set(wheel.namelist())
    for init in [*ROOT.glob("k3s_infra/**/__init__.py"), *ROOT.glob("stacks/**/__init__.py")]:
        assert str(init.relative_to(ROOT)) in names, f"{init.parent.relative_to(ROOT)} missing from setup.cfg packages"


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
