"""Add-on settings (k3s_infra/config/addons.py): bad settings are refused with their field
(pinned chart versions, https repositories, no secret value written in YAML, a user's own
secret named by its full Secrets Manager ARN in the cluster's region), and the cluster
autoscaler's chart must be pinned for the cluster's Kubernetes minor (the autoscaler supports
only its own minor: kubernetes/autoscaler, the chart's Chart.yaml history), else the file is
refused naming k3s.version, also through the CLI (exit 2, nothing written).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from k3s_infra.config import ConfigError, read_document, validate
from k3s_infra.model import addons

ROOT = Path(__file__).resolve().parents[3]

USER_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/grafana-admin-AbC123"


@pytest.mark.parametrize("settings, path, fragment", [
    ({"rancher": {"enabled": True, "values": {"hostname": "r.example.com", "bootstrapPassword": "hunter2"}}},
     "addons.rancher.values.bootstrapPassword", "never written in YAML"),
    ({"grafana": {"values": {"adminPassword": "admin"}}}, "addons.grafana.values.adminPassword", "Secrets Manager"),
    ({"rancher": {"enabled": True}}, "addons.rancher.values.hostname", "required when rancher is enabled"),
    ({"longhorn": {"enabled": True, "version": "latest"}}, "addons.longhorn.version", "pinned chart version"),
    ({"longhorn": {"enabled": "yes"}}, "addons.longhorn.enabled", "bool"),
    ({"longhorn": {"enabled": True, "chart": "other"}}, "addons.longhorn.chart", "unknown key"),
    ({"istio": {"enabled": True}}, "addons.istio", "unknown key"),
    ({"vault": {"enabled": True, "repo": "http://insecure.example.com"}}, "addons.vault.repo", "https://"),
])
def test_bad_addon_settings_are_refused_with_the_field(env_document, settings, path, fragment):
    document = env_document("dev")
    document["addons"] = settings
    with pytest.raises(ConfigError) as caught:
        validate(document, "dev.yaml")
    problems = dict(caught.value.problems)
    assert path in problems, caught.value.problems
    assert fragment in problems[path]


@pytest.mark.parametrize("arn, reason", [
    (USER_ARN.replace("eu-west-1", "us-east-1"), "cluster's region"),
    (USER_ARN.removesuffix("-AbC123"), "full Secrets Manager secret ARN"),
    ("arn:aws:ssm:eu-west-1:123456789012:parameter/x", "full Secrets Manager secret ARN"),
    # issue 24: an ARN of another partition than the region's (eu-west-1 is in aws)
    (USER_ARN.replace("arn:aws:", "arn:aws-evil:"), "not aws, the partition of eu-west-1"),
    (USER_ARN.replace("arn:aws:", "arn:aws-cn:"), "not aws, the partition of eu-west-1"),
])
def test_users_secret_arn_is_checked(env_document, arn, reason):
    from k3s_infra.config import ConfigError, validate

    document = env_document("dev")
    document["addons"] = {"grafana": {"enabled": True, "secret_values": {"adminPassword": arn}}}
    with pytest.raises(ConfigError) as caught:
        validate(document, "dev.yaml")
    ((path, message),) = caught.value.problems
    assert path == "addons.grafana.secret_values.adminPassword" and reason in message


def test_a_minor_without_a_pinned_chart_is_refused_naming_the_field(env_document):
    document = env_document("dev")
    document["k3s"]["version"] = "v1.99.0+k3s1"
    with pytest.raises(ConfigError) as error:
        validate(document, "dev.yaml")
    assert error.value.problems[0][0] == "k3s.version"
    assert "1.99" in str(error.value) and "addons.cluster_autoscaler.version" in str(error.value)
    document["addons"] = {"cluster_autoscaler": {"version": "9.99.0"}}
    env = validate(document, "dev.yaml")
    assert addons.version(env, "cluster_autoscaler") == "9.99.0"
    document["addons"] = {"cluster_autoscaler": {"enabled": False}}
    validate(document, "dev.yaml")


def test_cli_refuses_an_unpinned_minor_with_exit_2(tmp_path):
    document = read_document(ROOT / "environments" / "dev.yaml")
    document["k3s"]["version"] = "v1.99.0+k3s1"
    env_file = tmp_path / "env.yaml"
    env_file.write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(ROOT / "build.py"), "--config", str(env_file), "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert str(env_file) in result.stderr and "k3s.version" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
