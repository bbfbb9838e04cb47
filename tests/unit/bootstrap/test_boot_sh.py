"""Functions of the boot script (k3s_infra/bootstrap/boot.sh) run for real, outside the boot
sandbox (tests/boot/): ``values_secret`` writes any value a chart must receive back
unchanged, whatever characters Secrets Manager generated.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from k3s_infra import bootstrap


def _function(name: str) -> str:
    """The text of one shell function of boot.sh (from ``name() {`` to its closing ``}``), as
    nodes get it (bootstrap.boot_script: what tests/mutation/test_boot_mutations.py swaps for a mutant)."""
    match = re.search(rf"^{name}\(\) \{{\n.*?^\}}\n", bootstrap.boot_script(), re.S | re.M)
    assert match, f"boot.sh has no function {name}"
    return match.group(0)


HOSTILE_VALUES = [
    'plain',
    'with "double" quotes',
    "with 'single' quotes",
    "back\\slash and \\n literal",
    "dollar $HOME ${PATH} $(id) `id`",
    "two\nlines",
    "trailing backslash\\",
    "# not a comment: neither {this} nor [that] & *alias !tag %",
    "tab\tinside",
    " leading and trailing spaces ",
    "",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_values_secret_writes_any_value_back_unchanged(tmp_path, value):
    """values_secret NAME KEY VALUE writes a Kubernetes Secret whose values.yaml the helm
    controller merges into the chart's values (HelmChart valuesSecrets,
    https://docs.k3s.io/helm#customizing-packaged-components-with-helmchartconfig). Whatever
    characters Secrets Manager generated, the chart must receive exactly that value."""
    script = "set -euo pipefail\n" + _function("values_secret") + 'values_secret "$1" "$2" "$3"\n'
    subprocess.run(["bash", "-c", script, "boot", "rancher-values", "bootstrapPassword", value],
                   env={"manifests": str(tmp_path), "PATH": "/usr/bin:/bin"}, check=True, timeout=30)
    secret = yaml.safe_load((tmp_path / "rancher-values.yaml").read_text())
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "rancher-values"
    assert yaml.safe_load(secret["stringData"]["values.yaml"]) == {"bootstrapPassword": value}
