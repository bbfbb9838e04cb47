"""The IAM evaluator the decision tests use (tests/support/iam_eval.py), against outcomes the IAM
User Guide documents (policy evaluation logic, condition operators, multiple context keys and
values, policy variables).
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
    # ForAllValues: every value of the request must match; no values at all also holds.
    ("ForAllValues holds when every value matches",
     policy({**ALLOW_OBJECTS, "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x", {"aws:TagKeys": ["b", "a"]}), True),
    ("ForAllValues fails when one value is not listed",
     policy({**ALLOW_OBJECTS, "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x", {"aws:TagKeys": ["a", "c"]}), False),
    ("ForAllValues holds without the key",
     policy({**ALLOW_OBJECTS, "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x"), True),
    # ARN operators: part by part, wildcards inside a part only.
    ("ArnEquals compares ARNs", policy({**ALLOW_OBJECTS, "Condition": {"ArnEquals": {
        "ec2:SourceInstanceARN": "arn:aws:ec2:eu-west-1:111122223333:instance/i-1"}}}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x",
             {"ec2:SourceInstanceARN": "arn:aws:ec2:eu-west-1:111122223333:instance/i-1"}), True),
    ("ArnLike wildcards stay in their part", policy({**ALLOW_OBJECTS, "Condition": {"ArnLike": {
        "ec2:SourceInstanceARN": "arn:aws:ec2:*:instance/i-1"}}}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x",
             {"ec2:SourceInstanceARN": "arn:aws:ec2:eu-west-1:111122223333:instance/i-1"}), False),
    # Policy variables: replaced from the request, in condition values and in a Resource.
    ("a variable in a condition value is the request's value", policy({**ALLOW_OBJECTS, "Condition": {"ArnEquals": {
        "ec2:SourceInstanceARN": "arn:aws:ec2:eu-west-1:111122223333:instance/${ec2:InstanceID}"}}}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x", {
         "ec2:SourceInstanceARN": "arn:aws:ec2:eu-west-1:111122223333:instance/i-1", "ec2:InstanceID": "i-1"}), True),
    ("a variable holds only its own value", policy({**ALLOW_OBJECTS, "Condition": {"ArnEquals": {
        "ec2:SourceInstanceARN": "arn:aws:ec2:eu-west-1:111122223333:instance/${ec2:InstanceID}"}}}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x", {
         "ec2:SourceInstanceARN": "arn:aws:ec2:eu-west-1:111122223333:instance/i-1", "ec2:InstanceID": "i-2"}), False),
    ("a variable the request lacks matches nothing, not everything",
     policy({**ALLOW_OBJECTS, "Condition": {"StringLike": {"aws:k": "${aws:missing}*"}}}),
     Request("s3:GetObject", "arn:aws:s3:::b/etcd/x", {"aws:k": "v"}), False),
    ("a variable in the resource part of an ARN",
     policy({**ALLOW_OBJECTS, "Resource": "arn:aws:s3:::b/${aws:username}/*"}),
     Request("s3:GetObject", "arn:aws:s3:::b/alice/x", {"aws:username": "alice"}), True),
    ("${*} is a literal asterisk", policy({**ALLOW_OBJECTS, "Resource": "arn:aws:s3:::b/${*}"}),
     Request("s3:GetObject", "arn:aws:s3:::b/x"), False),
    ("variables are literal text before the 2012-10-17 language",
     [{"Version": "2008-10-17", "Statement": [{**ALLOW_OBJECTS, "Resource": "arn:aws:s3:::b/${aws:username}"}]}],
     Request("s3:GetObject", "arn:aws:s3:::b/${aws:username}", {"aws:username": "alice"}), True),
]


@pytest.mark.parametrize("what,documents,request_,expected", CASES, ids=[c[0] for c in CASES])
def test_the_evaluator_decides_as_iam_documents(what, documents, request_, expected):
    assert allowed(documents, request_) is expected


def test_constructs_it_does_not_model_are_refused_not_guessed():
    with pytest.raises(NotImplementedError):
        allowed(policy({**ALLOW_OBJECTS, "Condition": {"NumericLessThan": {"s3:max-keys": "10"}}}),
                Request("s3:GetObject", "arn:aws:s3:::b/etcd/x", {"s3:max-keys": "5"}))
    with pytest.raises(NotImplementedError):  # default values of variables
        allowed(policy({**ALLOW_OBJECTS, "Resource": "arn:aws:s3:::b/${aws:username, 'x'}"}),
                Request("s3:GetObject", "arn:aws:s3:::b/x"))


def test_a_variable_before_the_fifth_colon_is_refused_as_iam_refuses_it():
    with pytest.raises(ValueError, match="fifth colon"):
        allowed(policy({**ALLOW_OBJECTS, "Resource": "${ec2:SourceInstanceARN}"}),
                Request("s3:GetObject", "arn:aws:s3:::b/x", {"ec2:SourceInstanceARN": "arn:aws:s3:::b/x"}))
