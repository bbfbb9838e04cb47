"""The boto3 session and clients (deploy/aws.py): standard configuration only, botocore's
retry modes (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html:
``standard`` and ``adaptive``; docs/operations.md "Deploying": `AWS_RETRY_MODE=adaptive` switches, up to
10 attempts a call), and the account check every AWS command runs first."""

from __future__ import annotations

from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy import AccountMismatch
from k3s_infra.deploy.aws import Aws, check_account, client_config

DEV = load_environment("dev")


@pytest.mark.parametrize("asked, used", [(None, "standard"), ("standard", "standard"), ("adaptive", "adaptive"),
                                         ("legacy", "standard"), ("bogus", "standard")])
def test_throttling_is_retried_in_the_mode_asked_for_up_to_ten_attempts(monkeypatch, asked, used):
    if asked is None:
        monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    else:
        monkeypatch.setenv("AWS_RETRY_MODE", asked)
    assert client_config().retries == {"mode": used, "max_attempts": 10}


def test_connections_time_out_in_seconds_and_the_first_call_is_retried_once():
    """botocore waits 60 s for a connection by default and standard mode retries connection
    errors as transient (https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html,
    https://docs.aws.amazon.com/boto3/latest/guide/retries.html): ten retries of them is minutes.
    A client's config holds total_max_attempts: the first call and its retries."""
    assert client_config().connect_timeout == 5
    aws = Aws(DEV, session=boto3.Session(aws_access_key_id="x", aws_secret_access_key="x"))
    assert aws.sts.meta.config.retries["total_max_attempts"] == 2 and aws.sts.meta.config.connect_timeout == 5
    assert aws.cloudformation.meta.config.retries["total_max_attempts"] == 11
    assert aws.cloudformation.meta.config.connect_timeout == 5


def test_the_session_given_is_the_one_used_and_the_default_one_takes_the_files_region():
    given = SimpleNamespace()
    assert Aws(DEV, session=given).session is given
    assert Aws(DEV).session.region_name == DEV.region


def _sts(account: str):
    client = boto3.client("sts", region_name=DEV.region, aws_access_key_id="x", aws_secret_access_key="x",
                          endpoint_url="https://sts.invalid")
    stub = Stubber(client)
    stub.add_response("get_caller_identity", {"UserId": "AIDAEXAMPLE", "Account": account,
                                              "Arn": f"arn:aws:iam::{account}:user/ci"}, {})
    return client, stub


def test_the_account_is_asked_once_and_returned_every_time():
    aws = Aws(DEV, session=SimpleNamespace())
    aws.__dict__["sts"], stub = _sts(DEV.account_id)
    with stub:  # one queued answer: a second GetCallerIdentity would fail the test
        assert check_account(aws) == DEV.account_id
        assert check_account(aws) == DEV.account_id
        stub.assert_no_pending_responses()


def test_another_account_is_refused_naming_both():
    aws = Aws(DEV, session=SimpleNamespace())
    aws.__dict__["sts"], stub = _sts("999999999999")
    with stub, pytest.raises(AccountMismatch, match=f"999999999999.*{DEV.account_id}"):
        check_account(aws)
