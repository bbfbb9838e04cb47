"""Deployment with boto3: package children to S3, change sets, live stack events,
status, kubeconfig and destroy.

Only standard boto3 configuration is used (credential chain, ``AWS_PROFILE``,
``AWS_ENDPOINT_URL``); the region comes from the environment file. Rendering never
imports this package, so ``render`` does not pay for boto3.

Nothing here prints: functions return data (dataclasses, dicts, lists of problems) and
long operations report their steps to an ``on_progress`` callback (progress.py).
Failures are exceptions: the CLI (k3s_infra/cli) prints and picks the exit codes.
"""

from __future__ import annotations


class DeployError(Exception):
    """An AWS-side failure the user must see (exit code 1)."""


class AccountMismatch(Exception):
    """The caller's credentials belong to another account than the config's (exit code 2)."""


class Refused(Exception):
    """A request refused before anything changed, e.g. by the quorum guard (exit code 2)."""


class HandedOver(KeyboardInterrupt):
    """Ctrl-C once CloudFormation runs the operation: this process stops, CloudFormation goes
    on. ``operation``: CREATE | UPDATE | DELETE, or None when CloudFormation had finished (a
    deploy waiting for its nodes); ``status``: the root's last status seen. The CLI says how to
    follow or cancel it."""

    def __init__(self, stack_name: str, operation: str | None, status: str | None, region: str | None = None):
        super().__init__(stack_name, operation, status, region)
        self.stack_name, self.operation, self.status, self.region = stack_name, operation, status, region
