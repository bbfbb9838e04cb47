"""roll_order.ensure at its edges (the cases tests/unit/deploy/test_roll_order.py leaves out):
a deployed root that cannot be read, a recording update that rolls back, and an ordered root
over CloudFormation's inline limit. The limit: CreateChangeSet's TemplateBody holds "a maximum
length of 51,200 bytes"; a larger template goes by TemplateURL, the location of a file in an
S3 bucket (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import boto3
import pytest
import yaml
from botocore.stub import ANY, Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy import DeployError, roll_order
from k3s_infra.deploy.package import Package
from k3s_infra.deploy.progress import RollOrderMissing
from k3s_infra.render import render
from tests.unit.deploy.test_roll_order import STACK_ID, _event, _executed, _ordered_update

TEMPLATE_BODY_LIMIT = 51_200  # bytes (API_CreateChangeSet.html, TemplateBody)


def _root(status: str = "UPDATE_COMPLETE") -> dict:
    """The root as DescribeStacks describes it (the fields ensure reads)."""
    return {"StackId": STACK_ID, "StackName": "k3s-dev", "StackStatus": status,
            "CreationTime": "2026-12-04T05:00:00Z", "Tags": [{"Key": "k3s-infra:cluster", "Value": "k3s-dev"}],
            "Parameters": [{"ParameterKey": "ImageIdX8664", "ParameterValue": "ami-0123456789abcdef0"}]}


def _clients(env):
    keys = {"region_name": env.region, "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    return boto3.client("cloudformation", **keys), boto3.client("s3", **keys)


def _ensure(env, rendering, cfn, s3, *, allow_quorum_loss: bool):
    pkg = Package(rendering, [], [], roots={"UPDATE": {"TemplateBody": rendering.root.body}})
    seen = []
    result = roll_order.ensure(SimpleNamespace(cloudformation=cfn, s3=s3, env=env), pkg, _root(), seen.append, 0,
                               allow_quorum_loss=allow_quorum_loss)
    return result, seen


def test_a_deployed_root_that_cannot_be_read_stops_the_update_unless_quorum_loss_is_allowed():
    """Unread, the root may lack the order: the update is refused as when recording fails."""
    env = load_environment("dev")
    rendering = render(env)
    cfn, s3 = _clients(env)
    for allow in (False, True):
        with Stubber(cfn) as stub:
            stub.add_client_error("get_template", "AccessDenied", "not authorized: cloudformation:GetTemplate", 403,
                                  expected_params={"StackName": STACK_ID, "TemplateStage": "Original"})
            if allow:
                updated, seen = _ensure(env, rendering, cfn, s3, allow_quorum_loss=True)
            else:
                with pytest.raises(DeployError, match="lacks the roll order.*AccessDenied.*--allow-quorum-loss"):
                    _ensure(env, rendering, cfn, s3, allow_quorum_loss=False)
            stub.assert_no_pending_responses()
    assert not updated
    (warning,) = seen
    assert warning.changed is False and "AccessDenied" in warning.problem


def test_a_recording_that_rolls_back_is_a_warning_and_the_stack_counts_as_updated():
    """The stack went through an update (its status is no longer the one described): ensure
    says so (True), so deploy reads the root again before its own change set."""
    env = load_environment("dev")
    rendering = render(env)
    cfn, s3 = _clients(env)
    events = [_event(4, "UPDATE_ROLLBACK_COMPLETE"), _event(3, "UPDATE_IN_PROGRESS")]
    with Stubber(cfn) as stub:
        stub.add_response("get_template", {"TemplateBody": rendering.create_root.body},
                          {"StackName": STACK_ID, "TemplateStage": "Original"})
        _ordered_update(stub, env, described={"Stacks": [_root()]}, parameters=ANY,
                        history=[_event(2, "UPDATE_COMPLETE")])
        _executed(stub, during=events, after=events, final={"Stacks": [_root("UPDATE_ROLLBACK_COMPLETE")]})
        updated, seen = _ensure(env, rendering, cfn, s3, allow_quorum_loss=True)
        stub.assert_no_pending_responses()
    assert updated is True
    assert seen[-1].changed is False and "UPDATE_ROLLBACK_COMPLETE" in seen[-1].problem


def _padded(rendering, extra: int) -> dict:
    """The create root (no roll order) with Metadata padding: ``extra`` bytes more pad it more."""
    deployed = yaml.safe_load(rendering.create_root.body)
    deployed["Metadata"] = {"Padding": "x" * extra}
    return deployed


@pytest.mark.parametrize("over", [0, 1])
def test_an_ordered_root_over_the_inline_limit_goes_through_the_artifact_bucket(over):
    env = load_environment("dev")
    rendering = render(env)
    cfn, s3 = _clients(env)
    # Pad the deployed root until the repaired root it becomes is the limit (+ over) bytes long.
    probe = _padded(rendering, 0)
    size = len(json.dumps(roll_order.ordered(probe, roll_order.lacking(probe, rendering)), separators=(",", ":")))
    deployed = _padded(rendering, TEMPLATE_BODY_LIMIT + over - size)
    sent, uploaded = {}, {}
    with Stubber(cfn) as stub, Stubber(s3) as s3_stub:
        stub.add_response("get_template", {"TemplateBody": json.dumps(deployed)},
                          {"StackName": STACK_ID, "TemplateStage": "Original"})
        if over:
            s3_stub.add_response("put_object", {"ETag": '"0123456789abcdef0123456789abcdef"'},
                                 {"Bucket": env.artifact_bucket, "Key": ANY, "Body": ANY,
                                  "ContentType": "application/json"})
        stub.add_response("describe_stacks", {"Stacks": [_root()]}, {"StackName": STACK_ID})
        stub.add_client_error("create_change_set", "Throttling", "Rate exceeded", 400)
        put, create = s3.put_object, cfn.create_change_set
        s3.put_object = lambda **kwargs: uploaded.update(kwargs) or put(**kwargs)
        cfn.create_change_set = lambda **kwargs: sent.update(kwargs) or create(**kwargs)
        updated, seen = _ensure(env, rendering, cfn, s3, allow_quorum_loss=True)
        stub.assert_no_pending_responses()
        s3_stub.assert_no_pending_responses()
    assert not updated and isinstance(seen[0], RollOrderMissing) and "Rate exceeded" in seen[-1].problem
    if not over:
        assert len(sent["TemplateBody"].encode()) == TEMPLATE_BODY_LIMIT and "TemplateURL" not in sent
        return
    body = uploaded["Body"]
    assert len(body) == TEMPLATE_BODY_LIMIT + 1 and "TemplateBody" not in sent
    assert json.loads(body)["Resources"]["Servers"]["DependsOn"] == ["ServerInit"]
    # the regional virtual-hosted URL of the object just put (model/naming.py template_url)
    assert sent["TemplateURL"] == f"https://{env.artifact_bucket}.s3.{env.region}.amazonaws.com/{uploaded['Key']}"
