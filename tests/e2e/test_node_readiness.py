"""A resize waits for its new nodes (issue 21.7), through the real CLI on the session's moto
server: CloudFormation completes a size-only update without waiting for any node, so deploy
ends only once the new instance tagged itself k3s-infra:ready=true (boot.sh's last step; the
stand-in of tests/support/node_boot.py plays it), and fails naming a node that never does.
Seen with moto 5.2.5: updating a nested stack deletes and re-creates it, so every instance of
the resized pool is new here; that instances from before the deploy keep counting as they are
is pinned against the Stubber (tests/unit/deploy/test_readiness.py).
The tests run in file order and each builds on the previous one."""

from __future__ import annotations

import threading
import time

import pytest

from k3s_infra.deploy import readiness
from tests.support import node_boot
from tests.support.emulated_account import REGION

STACK = "k3s-ready"
POOL = {"name": "general", "instance_types": ["t3.small"], "min_size": 1, "desired": 1, "max_size": 3,
        "root_volume_gb": 30}


@pytest.fixture(scope="module")
def configs(write_env):
    def sized(desired: int) -> str:
        return str(write_env(f"ready-{desired}.yaml", deploy={"stack_name": STACK},
                             agent_pools=[{**POOL, "desired": desired}]))
    return {n: sized(n) for n in (1, 2, 3)}


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(readiness, "POLL_SECONDS", 0.2)
    monkeypatch.setattr(readiness, "TIMEOUT_SECONDS", 30.0)
    return monkeypatch


def pool_instances(aws) -> dict[str, dict[str, str]]:
    """Live instances of this stack's agent pool -> their tags."""
    pages = aws.ec2.get_paginator("describe_instances").paginate(Filters=[
        {"Name": "tag:k3s-infra:pool", "Values": ["general"]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]}])
    found = {}
    for instance in (i for page in pages for r in page["Reservations"] for i in r["Instances"]):
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        if STACK in tags.get("aws:autoscaling:groupName", ""):
            found[instance["InstanceId"]] = tags
    return found


def not_ready(aws) -> list[str]:
    return [i for i, tags in pool_instances(aws).items() if tags.get("k3s-infra:ready") != "true"]


def test_the_first_deploy_ends_with_its_nodes_ready(cli, configs, aws):
    result = cli("deploy", "--config", configs[1], "--yes")
    assert result.code == 0, result
    assert "nodes ready:" in result.out and not_ready(aws) == [], result


def test_a_resize_ends_only_once_the_new_node_reports_ready(cli, configs, aws, quick):
    before = set(pool_instances(aws))
    tagged: list[str] = []

    def boot_finishes_later():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = [i for i in not_ready(aws) if i not in before]
            if len(new) == 2:  # the resized pool, re-created by moto (see above)
                time.sleep(1.5)  # the deploy polls every 0.2 s meanwhile
                node_boot.finish_boot(aws.ec2, new)
                tagged.extend(new)
                return
            time.sleep(0.1)

    booting = threading.Thread(target=boot_finishes_later, daemon=True)
    with node_boot.silent():
        booting.start()
        result = cli("deploy", "--config", configs[2], "--yes")
    booting.join(timeout=70)
    assert result.code == 0, result
    assert len(tagged) == 2 and set(pool_instances(aws)) == set(tagged), result
    assert f"waiting for AgentPoolGeneral: 0/2 nodes ready, not yet: {', '.join(tagged)}" in result.out, result
    assert f"nodes ready: 2 new ({', '.join(tagged)})" in result.out, result


def test_a_new_node_that_never_reports_ready_fails_the_deploy_naming_it(cli, configs, aws, quick):
    quick.setattr(readiness, "TIMEOUT_SECONDS", 3.0)
    before = set(pool_instances(aws))
    with node_boot.silent():
        result = cli("deploy", "--config", configs[3], "--yes")
    new = set(pool_instances(aws)) - before
    assert result.code == 1, result
    assert len(new) == 3 and "AgentPoolGeneral" in result.err and "0 of 3 ready" in result.err, result
    for instance in new:
        assert (f"{instance} (AgentPoolGeneral): aws ec2 get-console-output --instance-id {instance} "
                f"--region {REGION} --latest --output text") in result.err, result
    assert not any(f"--instance-id {old}" in result.err for old in before), result  # they reported ready
    # CloudFormation itself was satisfied: only the node is missing.
    assert aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    node_boot.finish_boot(aws.ec2, sorted(new))


def test_destroy(cli, configs, aws):
    result = cli("destroy", "--config", configs[3], "--yes")
    assert result.code == 0, result
