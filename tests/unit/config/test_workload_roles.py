"""``workload_roles`` (k3s_infra/config/workload_roles.py), loaded as every environment is:
bad entries are refused naming the field, also through the CLI (exit 2, the file named,
nothing written); a valid entry renders one role that trusts exactly that service account
and carries exactly the listed managed policies and inline statements.

Why each refusal: a role trusts one exact service account (IAM's StringEquals is literal,
StringLike would hand the role to every match: IAM User Guide, "Condition operators");
Kubernetes names are RFC 1123 labels / subdomains, lowercase
(https://kubernetes.io/docs/concepts/overview/working-with-objects/names/); managed policies
of another account or partition cannot be attached (IAM User Guide, "Managed policies and
inline policies"; ARN formats: "IAM identifiers"); a workload must not get IAM/STS or all
actions (privilege escalation, IAM User Guide "Security best practices: least privilege");
NotAction / Principal do not belong in an identity policy written by hand here.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from k3s_infra.config import ConfigError, validate
from k3s_infra.render import build_templates
from tests.support.iam_eval import action_matches
from tests.support.oracle_helpers import plain_document

ROOT = Path(__file__).resolve().parents[3]
DEV = ROOT / "environments" / "dev.yaml"
READ_ONLY = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"  # an AWS managed policy


def _document(*roles: dict) -> dict:
    """dev.yaml (read with PyYAML, extends merged) with these workload_roles."""
    document = copy.deepcopy(plain_document(DEV))
    document["workload_roles"] = list(roles)
    return document


def _problems(*roles: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        validate(_document(*roles), "env.yaml")
    return dict(caught.value.problems)


def _role(service_account: str = "payments/api", **fields) -> dict:
    return {"service_account": service_account, "policy_arns": [READ_ONLY], **fields}


def _statement(**fields) -> dict:
    return {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::payments/*", **fields}


@pytest.mark.parametrize("service_account, fragment", [
    ("payments/*", "wildcards are refused"),
    ("*/api", "wildcards are refused"),
    ("payments/ap?", "wildcards are refused"),
    ("Payments/api", ""),
    ("payments", ""),
    ("payments/api/extra", ""),
    ("payments_x/api", ""),
    ("-payments/api", ""),
    ("payments-/api", ""),  # a label ends with a letter or digit
    ("payments/api.", ""),
    ("payments/${aws:username}", ""),
    ("a" * 64 + "/api", ""),  # a namespace is at most 63 characters
    ("payments/" + "a" * 64, ""),  # so is each dot-separated part of a name
    ("", ""),
])
def test_a_service_account_that_is_not_one_exact_name_is_refused(service_account, fragment):
    problems = _problems(_role(service_account))
    assert fragment in problems["workload_roles[0].service_account"], problems


@pytest.mark.parametrize("service_account", ["payments/api", "kube-system/external-dns", "a/b",
                                             "payments/api.v2", "x" * 63 + "/" + "y" * 63])
def test_kubernetes_names_are_accepted(service_account):
    validate(_document(_role(service_account)), "env.yaml")


def test_duplicates_are_refused_naming_the_second():
    problems = _problems(_role(), _role("payments/worker"), _role())
    assert "listed twice" in problems["workload_roles[2].service_account"], problems


@pytest.mark.parametrize("service_account", ["kube-system/aws-node-termination-handler",
                                             "kube-system/cluster-autoscaler"])
def test_a_service_account_k3s_infra_gives_its_own_role_is_refused(service_account):
    """Even with the controller off (dev: no handler), its service account stays reserved."""
    problems = _problems(_role(service_account))
    assert "gives its own role" in problems["workload_roles[0].service_account"], problems


@pytest.mark.parametrize("arn", [
    "arn:aws:iam::999999999999:policy/other-account",
    "arn:aws-cn:iam::aws:policy/AmazonS3ReadOnlyAccess",
    "arn:aws-us-gov:iam::123456789012:policy/x",
])
def test_a_policy_of_another_account_or_partition_is_refused(arn):
    problems = _problems(_role(policy_arns=[arn]))
    assert arn in problems["workload_roles[0].policy_arns"], problems


@pytest.mark.parametrize("arn", ["arn:aws:iam::123456789012:role/not-a-policy", "AmazonS3ReadOnlyAccess",
                                 "arn:aws:iam::123456789012:policy/"])
def test_something_that_is_not_a_managed_policy_arn_is_refused(arn):
    problems = _problems(_role(policy_arns=[arn]))
    assert any(path.startswith("workload_roles[0].policy_arns") for path in problems), problems


# IAM actions that let a principal give itself or another more than its role (IAM User Guide,
# "Security best practices", and the Service Authorization Reference for IAM and STS).
ESCALATING = ("iam:PassRole", "iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy",
              "iam:UpdateAssumeRolePolicy", "iam:CreateAccessKey", "iam:CreatePolicyVersion", "sts:AssumeRole")
def _refusal_case(action: str):
    """Expected refused: the pattern matches an escalating action (IAM's action matching,
    tests/support/iam_eval.py)."""
    assert any(action_matches(action, a) for a in ESCALATING), action
    return pytest.param(action, id=action)


@pytest.mark.parametrize("action", [_refusal_case(a) for a in (
    "*", "iam:*", "IAM:*", "sts:*", "*:*", "i?m:*", "iam:PassRole", "iam:passrole", "sts:AssumeRole",
    "iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy",
    "iam:CreateAccessKey", "iam:CreatePolicyVersion",
    "iam:P*", "iam:Pass*", "sts:Assume*", "iam:?*", "iam:*Policy*", "iam:Create*Key")])
def test_all_actions_and_iam_or_sts_escalation_are_refused(action):
    for form in (action, [action], ["s3:GetObject", action]):
        problems = _problems(_role(policy_arns=[], statements=[_statement(Action=form)]))
        assert "workload_roles[0].statements[0].Action" in problems, (form, problems)


def test_ordinary_actions_and_their_wildcards_are_accepted():
    for action in ("s3:GetObject", "s3:Get*", "sqs:SendMessage", "dynamodb:*", "iam:GetRole", "sts:GetCallerIdentity"):
        validate(_document(_role(policy_arns=[], statements=[_statement(Action=[action])])), "env.yaml")


@pytest.mark.parametrize("extra, path", [
    ({"NotAction": ["s3:DeleteObject"]}, "NotAction"),
    ({"Principal": "*"}, "Principal"),
    ({"Principal": {"AWS": "arn:aws:iam::999999999999:root"}}, "Principal"),
    ({"NotResource": "arn:aws:s3:::payments/*"}, "NotResource"),
])
def test_not_action_not_resource_and_principal_are_refused(extra, path):
    problems = _problems(_role(policy_arns=[], statements=[_statement(**extra)]))
    assert f"workload_roles[0].statements[0].{path}" in problems, problems


@pytest.mark.parametrize("statement, path", [
    (_statement(Resource="arn:aws-cn:s3:::payments/*"), "workload_roles[0].statements[0].Resource"),
    (_statement(Resource="payments/*"), "workload_roles[0].statements[0].Resource"),
    (_statement(Effect="Maybe"), "workload_roles[0].statements[0].Effect"),
])
def test_bad_statements_are_refused_with_their_field(statement, path):
    problems = _problems(_role(policy_arns=[], statements=[statement]))
    assert path in problems, problems


def test_a_role_that_can_do_nothing_is_refused():
    problems = _problems({"service_account": "payments/api"})
    assert "workload_roles[0]" in problems, problems


def test_the_cli_refuses_a_wildcard_subject_with_exit_2(tmp_path):
    env_file = tmp_path / "env.yaml"
    env_file.write_text(yaml.safe_dump(_document(_role("payments/*"))))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "k3s_infra", "render", "--config", str(env_file), "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result
    assert str(env_file) in result.stderr and "workload_roles[0].service_account" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_a_valid_entry_renders_a_role_with_that_subject_its_policies_and_statements():
    statements = [_statement(Sid="ReadPayments"),
                  _statement(Effect="Deny", Action="s3:DeleteObject", Resource=["arn:aws:s3:::payments/*"])]
    policy_arns = [READ_ONLY, "arn:aws:iam::123456789012:policy/payments-api"]
    env = validate(_document(_role(policy_arns=policy_arns, statements=statements)), "env.yaml")
    identity = json.loads(json.dumps(build_templates(env)["Identity"].to_dict()))
    roles = [r["Properties"] for r in identity["Resources"].values() if r["Type"] == "AWS::IAM::Role"
             and "payments" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])]
    (role,) = roles
    text, _ = role["AssumeRolePolicyDocument"]["Fn::Sub"]
    (trust,) = json.loads(text)["Statement"]
    subjects = [v for k, v in trust["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert subjects == ["system:serviceaccount:payments:api"]
    assert role["ManagedPolicyArns"] == policy_arns
    (policy,) = role["Policies"]
    assert policy["PolicyDocument"] == {"Version": "2012-10-17", "Statement": statements}


def test_condition_keys_are_iams_names_but_credentials_in_a_statement_are_refused():
    """secretsmanager:SecretId is an IAM condition key (Secrets Manager's service authorization
    reference), not a secret; an access key ID pasted into a condition is one."""
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:payments-db-AbCdEf"
    named = _statement(Action=["secretsmanager:GetSecretValue"], Resource=arn,
                       Condition={"StringEquals": {"secretsmanager:SecretId": arn,
                                                   "secretsmanager:ResourceTag/team": "payments"}})
    env = validate(_document(_role(policy_arns=[], statements=[named])), "env.yaml")
    assert env.workload_roles[0].statements[0].Condition
    pasted = _statement(Condition={"StringEquals": {"aws:PrincipalTag/key": "AKIAIOSFODNN7EXAMPLE"}})
    problems = _problems(_role(policy_arns=[], statements=[pasted]))
    assert any(p.startswith("workload_roles[0].statements") for p in problems), problems
