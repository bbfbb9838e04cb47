"""boto3 session and clients: standard configuration only.

Credentials come from boto3's default chain (``AWS_PROFILE`` included), the region
from the environment file, and the endpoint from ``AWS_ENDPOINT_URL`` (honoured by
botocore itself), so the same commands run against an emulator. Throttling and
transient errors are retried by botocore's ``standard`` retry mode (``adaptive``
through ``AWS_RETRY_MODE``).

An endpoint that cannot be reached fails in seconds, not after botocore's 60 s connect
timeout times eleven attempts with backoff: connections time out after CONNECT_TIMEOUT, and
the account check every command makes first (STS GetCallerIdentity) is retried PROBE_RETRIES
times. Later calls keep RETRIES, so throttling or a network blip in a long deploy is still
retried. Config options: https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html
(connect_timeout, default 60 s; retries.max_attempts: retries after the first call); standard
mode retries connection errors and timeouts as transient, with up to 20 s of backoff
(https://docs.aws.amazon.com/boto3/latest/guide/retries.html).
"""

from __future__ import annotations

import os
from functools import cached_property

import boto3
from botocore.config import Config

from k3s_infra.config import Environment
from k3s_infra.deploy import AccountMismatch

USER_AGENT = "k3s-infra"
CONNECT_TIMEOUT = 5  # seconds: an AWS endpoint answers a connection in well under one
RETRIES = 10
PROBE_RETRIES = 1    # the first call: one retry, at most a second of backoff before it


def client_config(retries: int = RETRIES) -> Config:
    mode = os.environ.get("AWS_RETRY_MODE", "standard")
    if mode not in ("standard", "adaptive"):
        mode = "standard"
    return Config(retries={"mode": mode, "max_attempts": retries}, connect_timeout=CONNECT_TIMEOUT,
                  user_agent_extra=USER_AGENT)


class Aws:
    """The clients one command needs, created lazily from one session."""

    def __init__(self, env: Environment, session: boto3.Session | None = None):
        self.env = env
        self.session = session or boto3.Session(region_name=env.region)
        self._config = client_config()
        self._account: str | None = None

    def client(self, service: str):
        return self.session.client(service, region_name=self.env.region, config=self._config)

    @cached_property
    def cloudformation(self):
        return self.client("cloudformation")

    @cached_property
    def s3(self):
        return self.client("s3")

    @cached_property
    def autoscaling(self):
        return self.client("autoscaling")

    @cached_property
    def secretsmanager(self):
        return self.client("secretsmanager")

    @cached_property
    def ssm(self):
        return self.client("ssm")

    @cached_property
    def ec2(self):
        return self.client("ec2")

    @cached_property
    def elbv2(self):
        return self.client("elbv2")

    @cached_property
    def sts(self):
        # only check_account's GetCallerIdentity, the first call of every command: it finds out
        # whether the endpoint answers at all (PROBE_RETRIES)
        return self.session.client("sts", region_name=self.env.region, config=client_config(PROBE_RETRIES))

    def check_account(self) -> str:
        """Refuse to touch an account other than the one the config names (asked once per Aws)."""
        if self._account is not None:
            return self._account
        account = self.sts.get_caller_identity()["Account"]
        if account != self.env.account_id:
            raise AccountMismatch(
                f"credentials are for account {account}, but {self.env.name} is configured for account "
                f"{self.env.account_id}; switch AWS_PROFILE or fix account_id")
        self._account = account
        return account


def check_account(aws: Aws) -> str:
    """The reusable account check every AWS command runs before acting (``command.run``
    calls it for every command); raises AccountMismatch (exit code 2)."""
    return aws.check_account()
