"""Fields that land in the templates (names, the artifact bucket, SSM parameter names, IAM
subjects and ARNs) refuse a value shaped like a credential, naming the field, never quoting the
value: anyone who can read a stack's template or parameters reads them. The same check as tags,
labels and the stack name (k3s_infra/config/types.py ``no_secret``, shapes in secret_shapes.py;
formats cited in test_secret_scan.py and test_error_redaction.py).
"""

from __future__ import annotations

import pytest

from k3s_infra.config import validate
from k3s_infra.config.secret_shapes import HIDDEN
from tests.support.config_errors import paths, refused

KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example access key ID
RANDOM_40 = "q7RvX2mKp9LwT4sZb8NcY3hJf6GdV1eUa5kPx0Wr"  # 40 random letters and digits: a secret key's size
SLACK = "xoxb-1234567890123456789"  # a Slack bot token's prefix and digits; fits a name's 24 characters
SLACK_LONG = "xoxb-1234567890-abcdefghijklmn"
GITHUB = "ghp_R2d2C3po4Bb8Yoda5Luke6Leia7Han8Chewb"
ACCOUNT = "123456789012"


def _roles(**fields) -> list[dict]:
    return [{"service_account": "payments/api", "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
             **fields}]


CASES = {
    "name": (lambda d: d.update(name=SLACK), "name", SLACK),
    "pool name": (lambda d: d["agent_pools"][0].update(name=SLACK), f"agent_pools[{HIDDEN}].name", SLACK),
    "artifact bucket": (lambda d: d["deploy"].update(artifact_bucket=SLACK_LONG), "deploy.artifact_bucket",
                        SLACK_LONG),
    "access key in an image parameter": (lambda d: d.update(nodes={"ami_parameter": {"x86_64": f"/team/{KEY_ID}"}}),
                                         "nodes.ami_parameter.x86_64", KEY_ID),
    "random 40 in an image parameter": (lambda d: d.update(nodes={"ami_parameter": {"arm64": f"/team/{RANDOM_40}"}}),
                                        "nodes.ami_parameter.arm64", RANDOM_40),
    "GitHub token as an image parameter": (lambda d: d.update(nodes={"ami_parameter": {"x86_64": f"/{GITHUB}"}}),
                                           "nodes.ami_parameter.x86_64", GITHUB),
    "service account": (lambda d: d.update(workload_roles=_roles(service_account=f"payments/{SLACK_LONG}")),
                        "workload_roles[0].service_account", SLACK_LONG),
    "policy ARN": (lambda d: d.update(workload_roles=_roles(policy_arns=[f"arn:aws:iam::{ACCOUNT}:policy/{KEY_ID}"])),
                   "workload_roles[0].policy_arns[0]", KEY_ID),
    "secret ARN": (lambda d: d.update(addons={"grafana": {"secret_values": {
        "adminPassword": f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:{KEY_ID}-AbC123"}}}),
        "addons.grafana.secret_values.adminPassword", KEY_ID),
}


@pytest.mark.parametrize("case", CASES)
def test_a_credential_in_a_template_field_is_refused_unquoted(dev, case):
    change, path, secret = CASES[case]
    change(dev)
    error = refused(dev)
    assert paths(error) == [path]
    assert "looks like" in str(error) and "not shown" in str(error)
    assert secret not in str(error) and secret[:12] not in str(error)


def test_ordinary_values_of_those_fields_are_kept(dev):
    secret_arn = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:k3s/grafana-admin-AbC123"
    dev["deploy"]["artifact_bucket"] = "team-artifacts-eu-west-1"
    dev["nodes"] = {"ami_parameter": {"x86_64": "/team/images/AmazonLinux2023/x86_64/latest"}}
    dev["workload_roles"] = _roles(service_account="payments/api-reader",
                                   policy_arns=[f"arn:aws:iam::{ACCOUNT}:policy/PaymentsReadOnly"])
    dev["addons"] = {"grafana": {"secret_values": {"adminPassword": secret_arn}}}
    env = validate(dev, "env.yaml")
    assert env.nodes.ami_parameter.x86_64 == "/team/images/AmazonLinux2023/x86_64/latest"
    assert env.addons.grafana.secret_values == {"adminPassword": secret_arn}
    assert env.workload_roles[0].service_account == "payments/api-reader"
