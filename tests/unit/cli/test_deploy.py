"""The end of k3s-infra deploy (k3s_infra/cli/deploy.py): the measured time per nested stack
as aligned text after the outputs, and the one JSON document of --output json."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from k3s_infra.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from k3s_infra.cli.deploy import report
from k3s_infra.deploy.lifecycle import DeployResult
from k3s_infra.deploy.timings import Measured, StackTime

T0 = datetime(2026, 1, 2, 3, 0, 0, tzinfo=timezone.utc)
MEASURED = Measured(T0, T0 + timedelta(seconds=430), (
    StackTime("ClusterData", T0 + timedelta(seconds=2), T0 + timedelta(seconds=150), "CREATE_COMPLETE"),
    StackTime("ServerInit", T0 + timedelta(seconds=151), T0 + timedelta(seconds=425), "CREATE_COMPLETE")))
DEPLOYED = DeployResult("k3s-dev", "deployed", "CREATE_COMPLETE", False, {"ApiDnsName": "api.example"}, MEASURED)


def test_text_ends_with_the_time_per_nested_stack(capsys):
    assert report(DEPLOYED) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    start = out.index("time per nested stack, from the stack events (total 7m10s); 'k3s-infra estimate' has the "
                      "model's:")
    header, *rows = out[start + 1:start + 4]
    assert header.split() == ["STACK", "START", "TOOK", "STATUS"]
    assert rows[0].split() == ["ClusterData", "0m02s", "2m28s", "CREATE_COMPLETE"]
    assert rows[1].split() == ["ServerInit", "2m31s", "4m34s", "CREATE_COMPLETE"]
    assert len({row.index("CREATE_COMPLETE") for row in rows}) == 1  # aligned


def test_without_events_there_is_no_time_table(capsys):
    assert report(DeployResult("k3s-dev", "deployed", "UPDATE_COMPLETE")) == EXIT_OK
    assert "time per nested stack" not in capsys.readouterr().out


def test_json_is_one_document_with_the_waves(capsys):
    assert report(DEPLOYED, as_json=True) == EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    assert (doc["kind"], doc["version"], doc["outcome"], doc["status"]) == ("deploy", 1, "deployed", "CREATE_COMPLETE")
    assert doc["outputs"] == {"ApiDnsName": "api.example"} and doc["total_seconds"] == 430
    assert doc["started"] == "2026-01-02T03:00:00+00:00"
    assert doc["waves"][1] == {"stack": "ServerInit", "started": "2026-01-02T03:02:31+00:00",
                               "ended": "2026-01-02T03:07:05+00:00", "start_seconds": 151, "seconds": 274,
                               "status": "CREATE_COMPLETE"}


def test_json_of_a_failed_deploy_still_is_a_document(capsys):
    assert report(DeployResult("k3s-dev", "failed", "ROLLBACK_COMPLETE"), as_json=True) == EXIT_FAILED
    doc = json.loads(capsys.readouterr().out)
    assert doc["outcome"] == "failed" and doc["waves"] == [] and doc["total_seconds"] is None


def test_json_needs_yes_a_question_would_mix_with_the_document(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    assert main(["deploy", "--env", "dev", "--output", "json"]) == EXIT_USAGE
    assert "pass --yes" in capsys.readouterr().err
