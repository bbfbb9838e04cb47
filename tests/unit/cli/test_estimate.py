"""k3s-infra estimate (k3s_infra/cli/estimate.py): the model's estimate as aligned text and as
one JSON document, without any AWS call; and which estimate plan shows for a change set."""

from __future__ import annotations

import json

import pytest

from k3s_infra.cli import estimate, main
from k3s_infra.config import load_environment
from k3s_infra.deploy.changeset import Change, ChangeSet
from k3s_infra.model import durations as d
from k3s_infra.model import timing
from k3s_infra.render import render


@pytest.fixture(scope="module")
def prod():
    rendering = render(load_environment("prod"))
    return rendering, timing.estimate_create(estimate.templates_of(rendering, creating=True))


def test_text_is_a_head_line_aligned_rows_and_the_critical_path(capsys, prod):
    _, model = prod
    assert main(["estimate", "--env", "prod"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"create of k3s-prod: about {estimate.clock(model.total)} (a model, not a measurement")
    header = next(line for line in out if "STACK" in line)
    rows = [line for line in out if any(line[5:].startswith(w.stack + " ") for w in model.waves)]
    assert len(rows) == len(model.waves)
    assert {row.index(estimate.clock(w.start)) for row, w in zip(rows, model.waves)} == {header.index("START")}
    assert {row[2] for row, w in zip(rows, model.waves) if w.critical} == {"*"}
    assert f"critical path (*): {' -> '.join(model.critical_path)}" in out
    assert any(line.startswith("  ServerInit boot: launch 0m45s") for line in out)
    assert out[-1].startswith("the API answers through its load balancer after about")
    assert "Traceback" not in capsys.readouterr().err


def test_roll_adds_the_rolling_update(capsys):
    assert main(["estimate", "--env", "dev", "--roll"]) == 0
    out = capsys.readouterr().out
    assert "rolling update of k3s-dev: about" in out and "batch of 1 node" in out
    assert "the API is down until about" in out  # one server: its replacement restores a snapshot


def test_sources_list_every_number_and_say_which_are_estimates(capsys):
    assert main(["estimate", "--env", "dev", "--sources"]) == 0
    out = capsys.readouterr().out
    for kind in d.RESOURCES:
        assert f"  {kind} " in out
    kms = next(line for line in out.splitlines() if line.startswith("  AWS::KMS::Key "))
    nlb = next(line for line in out.splitlines() if "AWS::ElasticLoadBalancingV2::LoadBalancer " in line)
    assert " stated " in kms and " estimate " in nlb and "120 s" in kms


def test_json_is_one_document_with_the_waves_and_the_numbers(capsys, prod):
    _, model = prod
    assert main(["estimate", "--env", "prod", "--roll", "--output", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["kind"], doc["version"], doc["environment"], doc["stack_name"]) == ("estimate", 1, "prod", "k3s-prod")
    create, roll = doc["estimates"]
    assert (create["kind"], roll["kind"]) == ("create", "roll")
    assert create["total_seconds"] == round(model.total) and create["critical_path"] == list(model.critical_path)
    first = next(w for w in create["waves"] if w["stack"] == "ServerInit")
    assert first["critical"] is True and first["phases"][0] == {"name": "launch", "start_seconds": first["phases"][0][
        "start_seconds"], "end_seconds": first["phases"][0]["start_seconds"] + 45}
    assert roll["api_ready_seconds"] is None  # three servers: the API stays up
    kms = next(a for a in doc["assumptions"] if a["what"] == "AWS::KMS::Key")
    assert kms == {"what": "AWS::KMS::Key", "value": 120, "unit": "s", "estimate": False,
                   "source": d.RESOURCES["AWS::KMS::Key"].source}


def change(stack, action, logical, kind):
    return Change(stack, action, logical, kind, "")


@pytest.mark.parametrize("kind, changes, expected", [
    ("CREATE", [change("Root", "Add", "Security", "AWS::CloudFormation::Stack")], ("create", None)),
    ("UPDATE", [change("AgentPoolGeneral", "Modify", "AgentLaunchTemplate", "AWS::EC2::LaunchTemplate"),
                change("AgentPoolGeneral", "Modify", "AgentGroup", "AWS::AutoScaling::AutoScalingGroup")],
     ("roll", ["AgentPoolGeneral"])),
    ("UPDATE", [change("AgentPoolGeneral", "Modify", "AgentGroup", "AWS::AutoScaling::AutoScalingGroup")], None),
])
def test_plan_estimates_a_create_or_the_roll_of_the_groups_whose_launch_template_changes(prod, kind, changes,
                                                                                          expected):
    rendering, _ = prod
    found = estimate.for_change_set(ChangeSet("k3s-prod", "cs", kind, changes), rendering)
    if expected is None:
        assert found is None
        return
    assert found.kind == expected[0]
    if expected[1]:
        assert [w.stack for w in found.waves] == expected[1]


def test_an_empty_change_set_has_no_estimate(prod):
    rendering, _ = prod
    assert estimate.for_change_set(ChangeSet("k3s-prod", "cs", "UPDATE", [], empty=True), rendering) is None
