"""Deploys that must fail, and commands that must refuse, on the session's moto server."""

from __future__ import annotations

import re

STACK = "k3s-broken"


def test_failing_resource_is_named_and_exit_is_nonzero(cli, write_env, aws):
    # A VPC that does not exist: the security groups cannot be created, as on real AWS
    # (pre-flight would refuse it before CloudFormation; skipped to see CloudFormation fail).
    path = str(write_env("broken.yaml", deploy={"stack_name": STACK},
                         network={**_network(write_env), "vpc_id": "vpc-0deadbeef0000000"}))
    result = cli("deploy", "--config", path, "--yes", "--skip-preflight")
    assert result.code == 1, result
    failure = next(line for line in result.out.splitlines() if line.startswith("error: "))
    # the cause is named: nested stack / logical ID (a real resource, not the stack wrappers)
    match = re.match(r"error: (\w+)/(\w+) \((AWS::[\w:]+)\) CREATE_FAILED: ", failure)
    assert match, result
    assert match.group(3) != "AWS::CloudFormation::Stack" and match.group(1) != "Root"
    assert "vpc-0deadbeef0000000" in failure
    assert "ROLLBACK_COMPLETE" in result.out and "rolled back" in result.out
    # a rolled-back stack cannot be updated: deploy says what to do, destroy cleans up
    again = cli("deploy", "--config", path, "--yes", "--skip-preflight")
    assert again.code == 1 and "destroy" in again.err, again
    gone = cli("destroy", "--config", path, "--yes")
    assert gone.code == 0, gone
    live = [s for s in aws.cloudformation.list_stacks()["StackSummaries"]
            if s["StackName"].startswith(STACK) and s["StackStatus"] != "DELETE_COMPLETE"]
    assert live == []


def _network(write_env):
    import yaml

    return yaml.safe_load(write_env("probe.yaml").read_text())["network"]


def test_destroy_of_protected_environment_is_refused(cli, write_env, aws):
    path = str(write_env("guarded.yaml", protected=True, deploy={"stack_name": "k3s-guarded"}))
    result = cli("destroy", "--config", path, "--yes")
    assert result.code == 2, result
    assert "protected" in result.err and "--allow-protected" in result.err


def test_wrong_account_is_refused_before_anything_changes(cli, write_env, aws):
    path = str(write_env("elsewhere.yaml", deploy={"stack_name": "k3s-elsewhere"}))
    text = open(path).read().replace("123456789012", "210987654321")
    open(path, "w").write(text)
    result = cli("deploy", "--config", path, "--yes")
    assert result.code == 2, result
    assert "210987654321" in result.err and "123456789012" in result.err
    stacks = [s["StackName"] for s in aws.cloudformation.list_stacks()["StackSummaries"]]
    assert "k3s-elsewhere" not in stacks


def test_deploy_without_yes_and_without_terminal_refuses(cli, write_env, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    path = str(write_env("noninteractive.yaml", deploy={"stack_name": "k3s-noninteractive"}))
    result = cli("deploy", "--config", path)
    assert result.code == 2 and "--yes" in result.err, result
