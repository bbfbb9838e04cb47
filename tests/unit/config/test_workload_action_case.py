"""Inline statements' IAM and STS actions are judged as IAM reads them: ignoring case.

IAM User Guide, "IAM JSON policy elements: Action": "The prefix and the action name are case
insensitive. For example, iam:ListAccessKeys is the same as IAM:listaccesskeys." So a read
(Get*/List*) is accepted however it is spelled, and a write or a role hand-over (PassRole,
AssumeRole) is refused however it is spelled. A wildcard is accepted only after a literal Get or
List: every action it can match is then a read; one that could match anything else is refused.
The matching itself is the IAM oracle's (tests/support/iam_eval.py action_matches).
"""

from __future__ import annotations

import pytest

from k3s_infra.config import validate
from tests.support.config_errors import paths, refused
from tests.support.iam_eval import action_matches

# Some real actions of the two services (Service Authorization Reference, IAM and STS).
ACTIONS = ["iam:GetRole", "iam:ListRoles", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies",
           "iam:PassRole", "iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy",
           "iam:UpdateAssumeRolePolicy", "iam:GenerateCredentialReport", "iam:TagRole",
           "sts:GetCallerIdentity", "sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:TagSession"]
READS = ["iam:getrole", "IAM:GETROLE", "iam:listroles", "Iam:ListAttachedRolePolicies", "sts:getcalleridentity",
         "iam:Get*", "iam:list*", "iam:Get*Role", "iam:get?ole", "STS:Get*"]
WRITES = ["iam:PassRole", "IAM:passrole", "iam:PASSROLE", "sts:AssumeRole", "STS:assumerole", "iam:*", "iam:?etRole",
          "iam:G*", "iam:*Role", "iam:CreateRole", "iam:generatecredentialreport"]


def _statement_roles(action: str) -> list[dict]:
    return [{"service_account": "payments/api", "statements": [
        {"Effect": "Allow", "Action": action, "Resource": "arn:aws:iam::123456789012:role/payments"}]}]


@pytest.mark.parametrize("action", READS)
def test_reads_are_accepted_in_any_case(dev, action):
    dev["account_id"] = "123456789012"
    dev["workload_roles"] = _statement_roles(action)
    assert validate(dev, "env.yaml").workload_roles[0].statements[0].Action == action


@pytest.mark.parametrize("action", WRITES)
def test_writes_and_open_wildcards_are_refused_in_any_case(dev, action):
    dev["workload_roles"] = _statement_roles(action)
    error = refused(dev)
    assert paths(error) == ["workload_roles[0].statements[0].Action"]
    assert "Get*/List* reads" in str(error)


@pytest.mark.parametrize("action", READS)
def test_every_action_an_accepted_pattern_matches_is_a_read(action):
    matched = [a for a in ACTIONS if action_matches(action, a)]
    assert matched, f"{action} matches none of the sample actions"
    assert all(a.split(":")[1].startswith(("Get", "List")) for a in matched), matched


def test_each_refused_wildcard_matches_a_write_today():
    # (iam:?etRole matches only GetRole today, but its shape does not fix the word Get: it is
    # refused with the others, as a new action could match it.)
    for action in ("iam:*", "iam:G*", "iam:*Role", "sts:*"):
        assert any(action_matches(action, a) and not a.split(":")[1].startswith(("Get", "List"))
                   for a in ACTIONS), action
