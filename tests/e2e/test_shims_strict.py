"""The moto shims are as strict as the AWS behaviour each one mirrors (see its docstring)."""

from __future__ import annotations

import json
import string
from types import SimpleNamespace

import pytest

from tests.support import moto_shims


@pytest.mark.parametrize("length", [8, 32, 64])
def test_generated_secret_honours_length_and_exclude_punctuation(length):
    for _ in range(20):
        value = moto_shims.generated_secret_string({"PasswordLength": length, "ExcludePunctuation": True})
        assert len(value) == length
        assert set(value) <= set(string.ascii_letters + string.digits)


def test_generated_secret_includes_punctuation_by_default_as_aws_does():
    # RequireEachIncludedType defaults to true: every generated value has a punctuation mark.
    values = [moto_shims.generated_secret_string({}) for _ in range(10)]
    assert all(len(v) == 32 for v in values)
    assert all(set(v) & set(string.punctuation) for v in values)


def test_generated_secret_never_contains_excluded_characters():
    excluded = "\"'\\$`"
    for _ in range(50):
        value = moto_shims.generated_secret_string({"PasswordLength": 64, "ExcludeCharacters": excluded,
                                                    "ExcludePunctuation": "false"})
        assert not set(value) & set(excluded)


def test_generated_secret_fills_the_template_key():
    value = moto_shims.generated_secret_string(
        {"SecretStringTemplate": '{"username": "admin"}', "GenerateStringKey": "password", "PasswordLength": 20})
    document = json.loads(value)
    assert document["username"] == "admin" and len(document["password"]) == 20


class _Undeletable:
    logical_resource_id = "SnapshotBucket"


class _ResourceMap:
    """A moto resource map whose delete fails on one resource, as moto's does (it raises the
    last error after its retry passes and leaves the resource in _parsed_resources)."""

    def __init__(self):
        self._parsed_resources = {"SnapshotBucket": _Undeletable(), "Gone": None}
        self._resource_json_map = {"SnapshotBucket": {"Type": "AWS::S3::Bucket"}, "Gone": {"Type": "AWS::SQS::Queue"}}

    def delete(self):
        raise RuntimeError("The bucket you tried to delete is not empty")


def _stack(resource_map):
    return SimpleNamespace(name="k3s-x", stack_id="arn:stack/k3s-x", events=[], status="CREATE_IN_PROGRESS",
                           resource_map=resource_map)


def _events(stack):
    return [(e.logical_resource_id, e.resource_status, e.resource_status_reason) for e in stack.events]


def test_rollback_that_cannot_delete_ends_rollback_failed():
    stack = _stack(_ResourceMap())
    moto_shims._roll_back(stack, ["ApiTargetGroup"])
    assert stack.status == "ROLLBACK_FAILED"
    events = _events(stack)
    assert ("SnapshotBucket", "DELETE_FAILED", "The bucket you tried to delete is not empty") in events
    assert events[-1][:2] == ("k3s-x", "ROLLBACK_FAILED") and "[SnapshotBucket]" in events[-1][2]
    assert not any(e[0] == "Gone" for e in events)


def test_rollback_that_deletes_everything_completes():
    resource_map = SimpleNamespace(delete=lambda: None, _parsed_resources={}, _resource_json_map={"A": {}})
    stack = _stack(resource_map)
    moto_shims._roll_back(stack, ["ApiTargetGroup"])
    assert stack.status == "ROLLBACK_COMPLETE" and _events(stack)[-1][1] == "ROLLBACK_COMPLETE"


def test_a_nested_stack_stuck_in_rollback_fails_its_parents_rollback():
    resource_map = SimpleNamespace(delete=lambda: None, _parsed_resources={}, _resource_json_map={})
    stack = _stack(resource_map)
    moto_shims._roll_back(stack, ["ClusterData"], stuck=("ClusterData",))
    assert stack.status == "ROLLBACK_FAILED" and "[ClusterData]" in _events(stack)[-1][2]
