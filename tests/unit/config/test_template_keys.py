"""Keys of a user's map that CloudFormation would read as a function are refused where the map
is written into a template: ``deploy.tags`` (the SSM parameters' ``Tags`` is a plain JSON map)
and a workload role's statement ``Condition`` (the inline policy is a JSON object in the role).

CloudFormation User Guide, "Intrinsic function reference": a map of one key ``Ref`` or
``Fn::<name>`` is a function ({"Ref": "AWS::AccountId"} is the account, not data), and
"Condition functions": ``Condition`` names a template condition. Keys are case-sensitive there,
so ``ref`` or ``fn-sub`` stay data. AWS tag keys never need these names, so a tag key is refused
outright, whatever else is in the map.
"""

from __future__ import annotations

import pytest

from k3s_infra.config import validate
from tests.support.config_errors import paths, refused

READ_ONLY = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"


@pytest.mark.parametrize("key", ["Ref", "Condition", "Fn::GetAtt", "Fn::ImportValue", "Fn::Base64", "Fn::Sub",
                                 "Fn::If"])
def test_a_tag_key_cloudformation_reads_as_a_function_is_refused(dev, key):
    dev.setdefault("deploy", {})["tags"] = {key: "AWS::AccountId"}
    error = refused(dev)
    assert paths(error) == ["deploy.tags"]
    assert key in str(error) and "intrinsic function" in str(error)


def test_the_same_words_in_other_spellings_stay_tag_keys(dev):
    # Not functions to CloudFormation: case differs, or 'Fn:' lacks its second colon.
    tags = {"ref": "a", "condition": "b", "Fn:Sub": "c", "team-Ref": "d", "RefCount": "e"}
    dev.setdefault("deploy", {})["tags"] = tags
    assert validate(dev, "env.yaml").deploy.tags == tags


def _roles(condition: dict) -> list[dict]:
    return [{"service_account": "payments/api", "policy_arns": [READ_ONLY],
             "statements": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::payments/*",
                             "Condition": condition}]}]


@pytest.mark.parametrize("condition", [
    {"StringEquals": {"Ref": "AWS::AccountId"}},          # the example of the adversarial pass
    {"Ref": {"aws:SourceVpc": "vpc-1"}},
    {"StringEquals": {"Fn::GetAtt": ["Role", "Arn"]}},
    {"Fn::Sub": {"x": "y"}},
    {"StringLike": {"Condition": "IsProd"}},
])
def test_a_condition_key_cloudformation_reads_as_a_function_is_refused(dev, condition):
    dev["workload_roles"] = _roles(condition)
    error = refused(dev)
    assert paths(error) == ["workload_roles[0].statements[0].Condition"]
    assert "intrinsic function" in str(error)


def test_an_ordinary_condition_is_kept(dev):
    condition = {"StringEquals": {"aws:RequestedRegion": "eu-west-1", "s3:prefix": ["ref", "Fn"]}}
    dev["workload_roles"] = _roles(condition)
    assert validate(dev, "env.yaml").workload_roles[0].statements[0].Condition == condition
