"""What `k3s-infra drill` says (k3s_infra/cli/drill.py): every drill message in words, the
summary's rows, the exit codes its docstring and docs/commands.md promise, the JSON shape."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import yaml

from k3s_infra.cli import EXIT_CHANGES, EXIT_FAILED, EXIT_OK, main
from k3s_infra.cli import drill as cli_drill
from k3s_infra.config import environment_file, read_document
from k3s_infra.deploy import drill, snapshots, teardown
from k3s_infra.deploy import drill_progress as dp
from k3s_infra.deploy.drill_api import ApiCheck, Marker

AT = datetime(2026, 12, 4, 6, 0, tzinfo=timezone.utc)
MARKER = Marker(AT, "k3s-dev")
SAMPLES = [
    *(dp.DrillStep(step, "k3s-dev-drill") for step in cli_drill.STEPS),
    dp.MarkerWritten(MARKER), dp.FreshSnapshot("took on-demand-i-0abc-1796399999"),
    dp.SnapshotCopied("s3://real/etcd/a", "s3://drill/etcd/a", 3 * 1024 * 1024), dp.TokenSeeded("k3s-dev-drill/token"),
    dp.WaitingForApi(ApiCheck(ready=("i-1",), missing=("i-2",)), 65), dp.WaitingForApi(ApiCheck(error="refused"), 5),
    dp.DrillLeft("k3s-dev-drill", "Ctrl-C twice"),
]


def _subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in {direct} | _subclasses(direct)}


def test_every_drill_message_reads_as_text():
    assert {type(m) for m in SAMPLES} == _subclasses(dp.DrillMessage)  # a new message needs a sample here
    for message in SAMPLES:
        assert cli_drill.lines(message), message
    assert cli_drill.lines(dp.WaitingForApi(ApiCheck(ready=("i-1",), missing=("i-2",)), 65)) == [
        "  waiting: 1 of 2 servers Ready  (1m05s)"]
    assert "k3s-infra drill --cleanup" in cli_drill.lines(SAMPLES[-1])[0]


def _result(outcome="passed", **fields) -> drill.DrillResult:
    return drill.DrillResult(
        "k3s-dev", "k3s-dev-drill", outcome, snapshot=snapshots.Snapshot("s1", "etcd/dev/s1", 2048, AT),
        rto_seconds=312.4, data_age_seconds=125.0, marker=MARKER, marker_age_seconds=130.0,
        api=ApiCheck(ready=("i-1", "i-2", "i-3"), others=3, marker=MARKER, marker_found=True),
        steps={"deploy": 600.0, "restore": 300.0},
        cleanup=teardown.DestroyResult("k3s-dev-drill", "destroyed", "DELETE_COMPLETE"), **fields)


def test_a_passed_drill_reports_rto_rpo_and_the_deleted_stack():
    text = "\n".join(cli_drill.summary(_result()))
    assert text.startswith("drill of k3s-dev: PASSED")
    assert "recovery time  5m12s" in text and "data age       2m05s" in text
    assert "k3s-dev-drill deleted" in text


def test_exit_codes_follow_the_outcome_and_detailed_exitcode():
    missed = _result("missed", objectives=(drill.Objective("rto", 300.0, 312.4),))
    assert cli_drill.exit_code(_result(), False) == EXIT_OK
    assert cli_drill.exit_code(missed, False) == EXIT_FAILED
    assert cli_drill.exit_code(missed, True) == EXIT_CHANGES  # restored, an objective missed
    assert cli_drill.exit_code(_result("failed"), True) == EXIT_FAILED
    assert "objective rto  <= 5m00s: MISSED" in "\n".join(cli_drill.summary(missed))


def test_the_json_document_carries_rto_rpo_marker_and_cleanup():
    doc = cli_drill.as_json(_result())
    assert (doc["rto_seconds"], doc["rpo_seconds"], doc["outcome"]) == (312.4, 125.0, "passed")
    assert doc["marker"]["age_seconds"] == 130.0 and doc["snapshot"]["name"] == "s1"
    assert doc["nodes"] == {"expected": ["i-1", "i-2", "i-3"], "ready": ["i-1", "i-2", "i-3"],
                            "restored_from_snapshot": 3}
    assert doc["cleanup"] == {"outcome": "destroyed", "status": "DELETE_COMPLETE", "error": None}


def test_an_environment_without_run_command_is_refused_naming_the_file_and_field(tmp_path, capsys, monkeypatch):
    # The drill reads its restored cluster through Run Command: off, it could never check it.
    document = read_document(environment_file("dev"))
    document.pop("extends", None)
    document["node_access"] = {"session_manager": False, "run_command": False}
    path = tmp_path / "no-commands.yaml"
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setattr(drill, "run", lambda *a, **k: pytest.fail("refused before the drill starts"))
    assert main(["drill", "--config", str(path), "--yes"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "node_access.run_command" in err
