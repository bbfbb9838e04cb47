"""`snapshots create` when the environment file turns off what it needs (docs/operations.md
"Taking a snapshot now"): the file's mistake, so exit 2 naming the file and the field, before
any AWS call, as `drill` and `shell` do (docs/commands.md, exit codes)."""

from __future__ import annotations

import pytest
import yaml

from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli import main
from k3s_infra.config.loading import environment_file, read_document

ROWS = [  # what the file sets -> the fields named
    ({"node_access": {"session_manager": False, "run_command": False}}, ["node_access.run_command"]),
    ({"k3s": {"etcd_snapshots": {"enabled": False}}}, ["k3s.etcd_snapshots.enabled"]),
    ({"node_access": {"session_manager": False, "run_command": False}, "k3s": {"etcd_snapshots": {"enabled": False}}},
     ["k3s.etcd_snapshots.enabled", "node_access.run_command"]),
]


@pytest.mark.parametrize("settings, fields", ROWS)
def test_what_the_file_turns_off_is_refused_before_any_aws_call(monkeypatch, capsys, tmp_path, settings, fields):
    monkeypatch.setattr(cli_aws, "Aws", lambda *a, **kw: pytest.fail("no AWS call for the file's mistake"))
    document = read_document(environment_file("dev"))
    for key, value in settings.items():
        document[key] = {**(document.get(key) or {}), **value}
    path = tmp_path / "off.yaml"
    path.write_text(yaml.safe_dump(document))
    assert main(["snapshots", "create", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and all(field in err for field in fields), err
