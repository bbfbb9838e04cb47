"""Outcomes of the AWS commands without AWS: the library's plan and diff and pre-flight
replaced by fakes that end as a test asks (exit codes, JSON error documents)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError

from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli import diff as cli_diff
from k3s_infra.config import ConfigError, load_environment
from k3s_infra.deploy import DeployError, lifecycle, preflight, upgrade_checks
from k3s_infra.deploy.changeset import Change, ChangeSet
from k3s_infra.deploy.package import Package
from k3s_infra.render import render


@pytest.fixture(scope="module")
def rendering():
    return render(load_environment("dev"))


@pytest.fixture
def outcome(monkeypatch, rendering):
    """Make the command end as ``outcome(name)`` says, with no AWS behind it."""
    class Aws:
        def __init__(self, env, session=None):
            self.env = env

        def check_account(self):
            return self.env.account_id

    monkeypatch.setattr(cli_aws, "Aws", Aws)
    monkeypatch.setattr(cli_aws, "check_account", lambda aws: aws.check_account())
    monkeypatch.setattr(cli_aws, "boto3", SimpleNamespace(Session=lambda **kwargs: SimpleNamespace(profile_name=None)))
    monkeypatch.setattr(cli_diff, "render", lambda env: rendering)
    monkeypatch.setattr(upgrade_checks, "for_plan", lambda *args, **kwargs: None)  # tests/e2e/test_upgrade.py

    def arrange(name: str, failure: BaseException | None = None) -> None:
        """``failure``: raised by the library's plan and diff instead of the one ``name`` raises."""
        def raise_(exc):
            def fail(*args, **kwargs):
                raise exc
            return fail

        failure = {"AWS error": ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}},
                                            "CreateChangeSet"),
                   "deploy error": DeployError("stack k3s-dev is busy (UPDATE_IN_PROGRESS)"),
                   "Ctrl-C": KeyboardInterrupt()}.get(name, failure)
        changes = [Change("Root", "Modify", "Servers", "AWS::CloudFormation::Stack", "False")]
        empty = name != "changes"
        result = lifecycle.PlanResult(ChangeSet("k3s-dev", "cs", "UPDATE", [] if empty else changes, empty=empty),
                                      Package(rendering, [], []))
        monkeypatch.setattr(lifecycle, "plan", raise_(failure) if failure else lambda aws, **_: result)
        found = {"stack_name": "k3s-dev", "deployed": True, "has_changes": not empty, "stacks": []}
        monkeypatch.setattr(cli_diff, "diff", raise_(failure) if failure else lambda aws, rendered: found)
        if name == "pre-flight failure":
            monkeypatch.setattr(preflight, "gate", raise_(ConfigError("environments/dev.yaml", [
                ("network.vpc_id", "vpc-0a1b2c3d4e5f60718 does not exist in eu-west-1")], "nothing was changed")))
        else:
            monkeypatch.setattr(preflight, "gate", lambda *args, **kwargs: None)

    return arrange


