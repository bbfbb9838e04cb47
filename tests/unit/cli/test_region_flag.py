"""--region (issue 24): given, it is the region, or an error. An empty or blank value is
refused, never read as "no override" (the file's region would silently win), and a
malformed one gets the message the file's region field gets, naming the flag.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from k3s_infra import cli
from k3s_infra.config import ENVIRONMENTS_DIR


@pytest.mark.parametrize("region", ["", " "])
def test_the_real_cli_refuses_an_empty_region_in_one_line_and_writes_nothing(tmp_path, region):
    result = subprocess.run([sys.executable, "-m", "k3s_infra", "--region", region, "render", "--env", "dev",
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr == f"error: --region: {region!r} is not valid: expected an AWS region like eu-west-1\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("region", ["", " ", "eu-west-1 ", "EU-WEST-1", "eu_west_1", "\teu-west-1", "xx-west-9"])
def test_a_bad_region_flag_gets_the_words_of_the_files_region_field(tmp_path, capsys, region):
    out = tmp_path / "out"
    assert cli.main(["--region", region, "render", "--env", "dev", "--out", str(out)]) == 2
    from_flag = capsys.readouterr().err
    env_file = tmp_path / "env.yaml"
    text = (ENVIRONMENTS_DIR / "dev.yaml").read_text()
    env_file.write_text(text.replace("region: eu-west-1", f"region: {region!r}".replace("'", '"'), 1))
    assert cli.main(["render", "--config", str(env_file), "--out", str(out)]) == 2
    from_file = capsys.readouterr().err
    assert from_flag.startswith("error: --region: ") and from_file.startswith(f"error: {env_file}: region: ")
    assert from_flag.removeprefix("error: --region: ") == from_file.removeprefix(f"error: {env_file}: region: ")
    assert from_flag.count("\n") == 1 and not out.exists()


def test_the_flag_after_the_command_and_a_good_region_still_work(tmp_path, capsys):
    assert cli.main(["render", "--env", "dev", "--out", str(tmp_path / "a"), "--region", ""]) == 2
    assert capsys.readouterr().err.startswith("error: --region: '' is not valid")
    # A well-formed region is the override (and the subnets' zones are checked against it).
    assert cli.main(["render", "--env", "dev", "--out", str(tmp_path / "b"), "--region", "eu-west-1"]) == 0
    assert cli.main(["--region", "us-east-1", "render", "--env", "dev", "--out", str(tmp_path / "c")]) == 2
    assert "outside region us-east-1" in capsys.readouterr().err
