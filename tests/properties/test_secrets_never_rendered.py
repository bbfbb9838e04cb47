"""Secrets by property, not by name: nothing an environment renders (templates, decoded user
data, the manifest, the CLI's output) carries a secret value or a way to obtain one at launch,
and every value the boot writes into a file survives that file's quoting rules.

Why dynamic references count: CloudFormation resolves ``{{resolve:secretsmanager:...}}``
and ``{{resolve:ssm-secure:...}}`` when it creates the resource, so the plain value would land
in the launch template's user data, readable by anyone with ec2:DescribeLaunchTemplateVersions
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/dynamic-references.html).
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys

import pytest
import yaml

from oracle_helpers import DEPLOYABLE, REPO, node_stack_ids, user_data_text, written_files

from k3s_infra import bootstrap

# Anything that is, or fetches at launch, a secret.
FORBIDDEN = {
    "dynamic reference": re.compile(r"\{\{resolve:(secretsmanager|ssm-secure|ssm):", re.I),
    # K3s full token: K10<sha256 of the CA>::<user>:<password> (docs.k3s.io/cli/token).
    "K3s token": re.compile(r"K10[0-9a-f]{64}::"),
    "PEM block": re.compile(r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----"),
    "AWS access key": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "kubeconfig credential": re.compile(r"(client-key-data|client-certificate-data|token):\s*[A-Za-z0-9+/=]{20,}"),
}


def _violations(where: str, text: str) -> list[str]:
    return [f"{where}: {what}" for what, pattern in FORBIDDEN.items() if pattern.search(text)]


def _base64_payloads(text: str) -> list[str]:
    """Decoded text of every long base64 run (a secret hidden in an encoded blob)."""
    found = []
    for run in re.findall(r"[A-Za-z0-9+/]{40,}={0,2}", text):
        try:
            found.append(base64.b64decode(run + "=" * (-len(run) % 4)).decode("utf-8", "ignore"))
        except ValueError:
            continue
    return found


@pytest.fixture(scope="module", params=DEPLOYABLE, ids=lambda p: p.stem)
def cli_render(request, tmp_path_factory):
    """``k3s-infra render`` of one environment file: (output folder, printed lines)."""
    out = tmp_path_factory.mktemp(request.param.stem) / "out"
    proc = subprocess.run([sys.executable, "-m", "k3s_infra", "render",
                           "--config", str(request.param), "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout + proc.stderr


def test_no_secret_or_secret_fetch_anywhere_in_a_rendering(cli_render):
    out, log = cli_render
    problems = _violations("CLI output", log)
    for path in sorted(out.iterdir()):
        text = path.read_text()
        problems += _violations(path.name, text)
        problems += [f"{path.name} (base64 inside)" + p[p.index(":"):]
                     for payload in _base64_payloads(text) for p in _violations("", payload)]
        if path.suffix != ".yaml":
            continue
        template = yaml.safe_load(text)
        for stack in node_stack_ids({path.name: template}):
            problems += _violations(f"{stack} user data", user_data_text(template))
            for file_path, content in written_files(template).items():
                problems += _violations(f"{stack}:{file_path}", content)
    assert problems == []


def test_every_secret_resource_is_generated_not_given(cli_render):
    out, _ = cli_render
    secrets = {}
    for path in out.glob("*.yaml"):
        for logical, resource in yaml.safe_load(path.read_text())["Resources"].items():
            if resource["Type"] == "AWS::SecretsManager::Secret":
                secrets[f"{path.name}:{logical}"] = resource["Properties"]
    assert len(secrets) >= 3  # server token, agent token, kubeconfig slot at least
    for where, props in secrets.items():
        assert "SecretString" not in props, where
        assert props["GenerateSecretString"]["PasswordLength"] >= 32, where


def test_boot_env_names_secrets_by_arn_only(cli_render):
    """boot.env is in user data: secret settings there are ARNs (Fn::Sub ${...}), never values."""
    out, _ = cli_render
    for path in out.glob("*.yaml"):
        template = yaml.safe_load(path.read_text())
        for stack in node_stack_ids({path.name: template}):
            boot_env = written_files(template)["/etc/k3s-infra/boot.env"]
            for line in boot_env.splitlines():
                key, _, value = line.partition("=")
                if "SECRET" in key:
                    for item in value.strip("'").split():
                        assert re.fullmatch(r"([a-z0-9-]+=[A-Za-z0-9]+=)?\$\{[A-Za-z0-9]+\}", item), (stack, line)


# --- the boot's values_secret, run for real --------------------------------------------

def _function(name: str) -> str:
    """The text of one shell function of boot.sh (from ``name() {`` to its closing ``}``), as
    nodes get it (bootstrap.boot_script: what tests/test_boot_mutations.py swaps for a mutant)."""
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
