"""An order never recorded, on the session's moto server through the real CLI: the update
after the first create fails (faked: the recording raises nothing, it just reports a problem,
as deploy/roll_order.py does when CloudFormation refuses it), so the stack keeps the create
root without DependsOn. plan says so and changes nothing; the next deploy records the order
into the deployed root before its own update (a failed update rolls back to the deployed
root: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html).
The tests run in file order and each builds on the previous one."""

from __future__ import annotations

import json

import pytest
import yaml

from k3s_infra.deploy import roll_order
from k3s_infra.deploy.progress import RollOrderRecorded

STACK = "k3s-order"
POOL = {"name": "general", "instance_types": ["t3.small"], "min_size": 1, "desired": 1, "max_size": 3,
        "root_volume_gb": 30}


@pytest.fixture(scope="module")
def config(write_env):
    return str(write_env("order.yaml", deploy={"stack_name": STACK}, agent_pools=[POOL]))


@pytest.fixture(scope="module")
def grown(write_env):
    # deploy.tags stay: moto 5.2.5 re-creates nested stacks on a stack-tag update and rolls back; that the
    # recording keeps the stack's own tags is pinned in tests/unit/deploy/test_roll_order.py
    return str(write_env("order-grown.yaml", deploy={"stack_name": STACK},
                         agent_pools=[{**POOL, "desired": 2}]))


def deployed_order(aws) -> dict[str, list[str]]:
    body = aws.cloudformation.get_template(StackName=STACK, TemplateStage="Original")["TemplateBody"]
    doc = body if isinstance(body, dict) else yaml.safe_load(body)
    return {k: sorted([v["DependsOn"]] if isinstance(v["DependsOn"], str) else v["DependsOn"])
            for k, v in doc["Resources"].items() if "DependsOn" in v}


def test_a_create_whose_order_recording_failed_keeps_the_unordered_root(cli, config, aws, monkeypatch):
    def failed(aws, pkg, parameters, stack, on_progress, poll):
        on_progress(RollOrderRecorded(changed=False, problem="Rate exceeded"))

    monkeypatch.setattr(roll_order, "record", failed)
    result = cli("deploy", "--config", config, "--yes")
    assert result.code == 0, result
    assert "the roll order (servers first, one group at a time) is not recorded: Rate exceeded" in result.out
    assert "Servers" not in deployed_order(aws)  # the create root: joiners and pools start together


def test_plan_says_the_order_is_missing_and_leaves_the_stack(cli, grown, aws):
    before = aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    result = cli("plan", "--config", grown)
    assert result.code == 0, result
    assert "lacks the roll order (" in result.out and "Servers after ServerInit" in result.out, result
    after = aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    assert after.get("LastUpdatedTime") == before.get("LastUpdatedTime")


def test_deploy_records_the_order_before_its_update(cli, grown, aws):
    result = cli("deploy", "--config", grown, "--yes")
    assert result.code == 0, result
    out = result.out
    assert out.index("lacks the roll order") < out.index("recorded the roll order") < out.index(f"update {STACK}")
    order = deployed_order(aws)
    assert order["Servers"] == ["ServerInit"] and order["AgentPoolGeneral"] == ["Servers"], json.dumps(order)


def test_then_the_order_is_there_and_destroy_cleans_up(cli, grown):
    result = cli("plan", "--config", grown)
    assert result.code == 0 and "lacks the roll order" not in result.out, result
    assert cli("destroy", "--config", grown, "--yes").code == 0
