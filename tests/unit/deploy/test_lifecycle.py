"""The deploy library's lifecycle (k3s_infra/deploy/lifecycle.py) guards at its own level, not
only through the CLI: destroy refuses a termination-protected stack before it lifts the
protection of anything (CloudFormation would refuse too:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-protect-stacks.html).
"""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from k3s_infra.config import load_environment
from k3s_infra.deploy import DeployError, lifecycle, teardown
from k3s_infra.deploy.aws import Aws
from tests.support.isolated import in_child


@in_child  # mock_aws resets moto's backends: not those of this process's e2e server
@mock_aws
def test_library_destroy_refuses_a_termination_protected_stack(monkeypatch):
    """The library refuses, not only the CLI: CloudFormation itself would also refuse
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-protect-stacks.html),
    but destroy must say so before it lifts the protection of anything."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env = load_environment("dev")
    cfn = boto3.client("cloudformation", region_name=env.region)
    body = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}})
    cfn.create_stack(StackName=env.stack_name, TemplateBody=body, EnableTerminationProtection=True)
    assert cfn.describe_stacks(StackName=env.stack_name)["Stacks"][0]["EnableTerminationProtection"] is True
    calls = []
    monkeypatch.setattr(type(cfn), "update_termination_protection", lambda self, **kw: calls.append(kw),
                        raising=False)
    with pytest.raises(DeployError, match="termination protection"):
        teardown.destroy(Aws(env), confirm=lambda what: True, allow_protected=False, poll=0)
    assert calls == []  # protection left as it was
    assert cfn.describe_stacks(StackName=env.stack_name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


@pytest.mark.parametrize("answer, reported", [("pending", True), ("none", False), ("denied", False)])
def test_deploy_reports_a_restore_request_before_changing_anything(monkeypatch, answer, reported):
    """A deploy that replaces the first server starts a boot that may act on a pending request:
    it is shown first; a role that cannot read it deploys all the same."""
    from types import SimpleNamespace

    from botocore.stub import Stubber

    from k3s_infra.deploy import progress

    monkeypatch.setattr("time.time", lambda: 1_800_000_000.0)
    ssm = boto3.client("ssm", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x",
                       endpoint_url="https://ssm.invalid")
    name = "/k3s-infra/k3s-dev/restore-request"
    value = "snapshot=etcd-snapshot-x-1 replaces=i-0123456789abcdef0 expires=1800000720"
    seen = []
    with Stubber(ssm) as stub:
        if answer == "pending":
            stub.add_response("get_parameter", {"Parameter": {"Name": name, "Type": "String", "Value": value}},
                              {"Name": name})
        else:
            stub.add_client_error("get_parameter", "ParameterNotFound" if answer == "none" else "AccessDeniedException",
                                  expected_params={"Name": name})
        lifecycle._report_restore_request(SimpleNamespace(env=load_environment("dev"), ssm=ssm), seen.append)
        stub.assert_no_pending_responses()
    assert bool(seen) == reported
    if reported:
        (message,) = seen
        assert isinstance(message, progress.RestoreRequestPending)
        assert (message.pending.state, message.pending.expires_in, message.pending.value) == ("pending", 720, value)
