"""k3s-infra plan's estimate (k3s_infra/cli/plan.py show): after the change table, how long
executing the change set should take; in --output json the "estimate" key (null when nothing
replaces nodes). The library's plan is replaced by its result here: no AWS."""

from __future__ import annotations

import json

import pytest

from k3s_infra.cli import EXIT_CHANGES, plan
from k3s_infra.config import load_environment
from k3s_infra.deploy import lifecycle
from k3s_infra.deploy.changeset import Change, ChangeSet
from k3s_infra.deploy.package import Package
from k3s_infra.render import render


@pytest.fixture(scope="module")
def rendering():
    return render(load_environment("dev"))


def planned(monkeypatch, rendering, kind: str, changes: list[Change]) -> None:
    result = lifecycle.PlanResult(ChangeSet("k3s-dev", "cs", kind, changes), Package(rendering, [], []))
    monkeypatch.setattr(lifecycle, "plan", lambda aws, **_: result)


def test_a_create_shows_its_estimate_after_the_change_table(monkeypatch, rendering, capsys):
    planned(monkeypatch, rendering, "CREATE", [Change("Root", "Add", "Security", "AWS::CloudFormation::Stack", "")])
    assert plan.show(None, detailed_exitcode=True) == EXIT_CHANGES
    out = capsys.readouterr().out
    assert out.index("create k3s-dev: 1 changes") < out.index("create of k3s-dev: about")
    assert "critical path (*): " in out


def test_json_has_the_estimate_of_the_roll_or_null(monkeypatch, rendering, capsys):
    planned(monkeypatch, rendering, "UPDATE",
            [Change("AgentPoolGeneral", "Modify", "AgentLaunchTemplate", "AWS::EC2::LaunchTemplate", "True")])
    plan.show(None, as_json=True)
    doc = json.loads(capsys.readouterr().out)
    assert doc["estimate"]["kind"] == "roll" and [w["stack"] for w in doc["estimate"]["waves"]] == ["AgentPoolGeneral"]
    planned(monkeypatch, rendering, "UPDATE",
            [Change("AgentPoolGeneral", "Modify", "AgentGroup", "AWS::AutoScaling::AutoScalingGroup", "False")])
    plan.show(None, as_json=True)
    assert json.loads(capsys.readouterr().out)["estimate"] is None
