"""The IAM evaluator the decision tests use (tests/support/iam_eval.py), against outcomes the IAM
User Guide documents (policy evaluation logic, condition operators, multiple context keys and
values).
"""

from __future__ import annotations

import pytest

from tests.support.iam_eval import Request, allowed


def policy(*statements: dict) -> list[dict]:
    return [{"Version": "2012-10-17", "Statement": list(statements)}]


ALLOW_OBJECTS = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/etcd/*"}

CASES = [
    # (what, policy, request, allowed?)
    ("action names are case-insensitive", policy(ALLOW_OBJECTS),
     Request("S3:getobject", "arn:aws:s3:::b/etcd/x"), True),
    ("resources are case-sensitive", policy(ALLOW_OBJECTS), Request("s3:GetObject", "arn:aws:s3:::B/etcd/x"), False),
    ("brackets are not wildcards", policy({**ALLOW_OBJECTS, "Resource": "arn:aws:s3:::b/[ab]*"}),
     Request("s3:GetObject", "arn:aws:s3:::b/a1"), False),
    ("? is one character", policy({**ALLOW_OBJECTS, "Resource": "arn:aws:s3:::b/?"}),
     Request("s3:GetObject", "arn:aws:s3:::b/ab"), False),
    ("an explicit deny wins", policy(ALLOW_OBJECTS, {**ALLOW_OBJECTS, "Effect": "Deny"}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x"), False),
    ("nothing allowed is denied", policy(), Request("s3:GetObject", "arn:aws:s3:::b/etcd/x"), False),
    ("a missing key fails StringEquals", policy({**ALLOW_OBJECTS, "Condition": {"StringEquals": {"aws:k": "v"}}}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x"), False),
    ("a missing key passes ...IfExists", policy({**ALLOW_OBJECTS, "Condition": {"StringLikeIfExists": {"aws:k": "v*"}}}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x"), True),
    ("condition key names are case-insensitive",
     policy({**ALLOW_OBJECTS, "Condition": {"StringEquals": {"AWS:K": "v"}}}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x", {"aws:k": "v"}), True),
    ("condition values are case-sensitive", policy({**ALLOW_OBJECTS, "Condition": {"StringEquals": {"aws:k": "v"}}}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x", {"aws:k": "V"}), False),
    ("ForAnyValue fails without the key",
     policy({**ALLOW_OBJECTS, "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x"), False),
    ("ForAnyValue holds when one value matches",
     policy({**ALLOW_OBJECTS, "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x", {"aws:TagKeys": ["b", "a"]}), True),
    ("every key of a condition must hold",
     policy({**ALLOW_OBJECTS, "Condition": {"StringEquals": {"aws:k": "v", "aws:l": ["w", "x"]}}}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x", {"aws:k": "v", "aws:l": "y"}), False),
]


@pytest.mark.parametrize("what,documents,request_,expected", CASES, ids=[c[0] for c in CASES])
def test_the_evaluator_decides_as_iam_documents(what, documents, request_, expected):
    assert allowed(documents, request_) is expected


def test_constructs_it_does_not_model_are_refused_not_guessed():
    with pytest.raises(NotImplementedError):
        allowed(policy({**ALLOW_OBJECTS, "Condition": {"ArnLike": {"aws:SourceArn": "arn:*"}}}),
                Request("s3:GetObject", "arn:aws:s3:::b/etcd/x", {"aws:SourceArn": "arn:x"}))
