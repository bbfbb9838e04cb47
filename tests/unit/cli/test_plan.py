"""k3s-infra plan's estimate (k3s_infra/cli/plan.py show): after the change table, how long
executing the change set should take; in --output json the "estimate" key (null when nothing
replaces nodes); then what the environment costs a month (offline prices: no AWS call; the "cost"
key). The library's plan is replaced by its result here: no AWS."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import yaml

from k3s_infra.cli import EXIT_CHANGES, plan
from k3s_infra.config import ENVIRONMENTS_DIR, load_environment
from k3s_infra.deploy import lifecycle
from k3s_infra.deploy.changeset import Change, ChangeSet
from k3s_infra.deploy.package import Package
from k3s_infra.render import render


@pytest.fixture(scope="module")
def rendering():
    return render(load_environment("dev"))


AWS = SimpleNamespace(env=load_environment("dev"))  # show reads only the environment from it


def planned(monkeypatch, rendering, kind: str, changes: list[Change]) -> None:
    result = lifecycle.PlanResult(ChangeSet("k3s-dev", "cs", kind, changes), Package(rendering, [], []))
    monkeypatch.setattr(lifecycle, "plan", lambda aws, **_: result)


def test_a_create_shows_its_estimate_after_the_change_table(monkeypatch, rendering, capsys):
    planned(monkeypatch, rendering, "CREATE", [Change("Root", "Add", "Security", "AWS::CloudFormation::Stack", "")])
    assert plan.show(AWS, detailed_exitcode=True) == EXIT_CHANGES
    out = capsys.readouterr().out
    assert out.index("create k3s-dev: 1 change\n") < out.index("create of k3s-dev: about")
    assert "critical path (*): " in out


def test_json_has_the_estimate_of_the_roll_or_null(monkeypatch, rendering, capsys):
    planned(monkeypatch, rendering, "UPDATE",
            [Change("AgentPoolGeneral", "Modify", "AgentLaunchTemplate", "AWS::EC2::LaunchTemplate", "True")])
    plan.show(AWS, as_json=True)
    doc = json.loads(capsys.readouterr().out)
    assert doc["estimate"]["kind"] == "roll" and [w["stack"] for w in doc["estimate"]["waves"]] == ["AgentPoolGeneral"]
    planned(monkeypatch, rendering, "UPDATE",
            [Change("AgentPoolGeneral", "Modify", "AgentGroup", "AWS::AutoScaling::AutoScalingGroup", "False")])
    plan.show(AWS, as_json=True)
    assert json.loads(capsys.readouterr().out)["estimate"] is None


def test_plan_says_what_the_environment_costs_a_month(monkeypatch, rendering, capsys):
    """The server line counts the file's servers.count (read here with PyYAML, extends merged by
    hand: dev.yaml sets it or defaults.yaml does); the text names the total and points at estimate."""
    files = [yaml.safe_load((ENVIRONMENTS_DIR / name).read_text()) for name in ("defaults.yaml", "dev.yaml")]
    servers = next(f["servers"]["count"] for f in reversed(files) if "count" in (f.get("servers") or {}))
    planned(monkeypatch, rendering, "CREATE", [Change("Root", "Add", "Security", "AWS::CloudFormation::Stack", "")])
    plan.show(AWS)
    out = capsys.readouterr().out
    assert "monthly cost of k3s-dev: about $" in out and "'k3s-infra estimate --cost' itemises it" in out
    plan.show(AWS, as_json=True)
    cost = json.loads(capsys.readouterr().out)["cost"]
    instances = [i for i in cost["items"] if i["group"] == "servers" and i["unit"] == "instance"]
    assert sum(i["count"] for i in instances) == servers
    assert cost["total_monthly_usd"] == pytest.approx(sum(i["monthly_usd"] or 0 for i in cost["items"]), abs=0.05)
