"""`k3s-infra lint`: clean environments pass, any finding (error or warning) is reported by
file and resource and exits 1."""

from __future__ import annotations

import json
import re

import pytest
from troposphere import Ref
from troposphere.ec2 import LaunchTemplate, LaunchTemplateData, SecurityGroupIngress

from k3s_infra import stacks
from k3s_infra.cli import main
from k3s_infra.cli.lint import concise
from k3s_infra.render import checkov
from tests.support.oracle_helpers import REPO


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_lint_passes_on_shipped_environments(env, capsys):
    assert main(["lint", "--env", env, "--no-checkov"]) == 0
    out = capsys.readouterr().out
    assert f"{env}: no findings" in out and "ms per template" in out


def _patch_security(monkeypatch, add) -> None:
    original = stacks.security.build

    def build(env):
        t = original(env)
        add(t)
        return t

    monkeypatch.setattr(stacks.security, "build", build)


def test_lint_reports_a_broken_template_and_exits_1(monkeypatch, capsys):
    _patch_security(monkeypatch, lambda t: t.add(SecurityGroupIngress(
        "DanglingRule", GroupId=Ref("NoSuchGroup"), IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="10.0.0.0/8")))
    assert main(["lint", "--env", "dev", "--no-checkov"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "security.yaml" in lines
    finding = next(line for line in lines if "Resources.DanglingRule" in line)
    assert "NoSuchGroup" in finding and " E" in finding and "allowed values (closest: " in finding  # counted
    assert "finding(s)" in lines[-1]


def test_a_warning_alone_fails_the_lint(monkeypatch, capsys):
    # An unused mapping is a cfn-lint warning (W7001), not an error: still exit 1.
    _patch_security(monkeypatch, lambda t: t.template.add_mapping("NobodyReadsMe", {"eu-west-1": {"Key": "value"}}))
    assert main(["lint", "--env", "dev", "--no-checkov"]) == 1
    out = capsys.readouterr().out
    finding = next(line for line in out.splitlines() if "Mappings.NobodyReadsMe" in line)
    assert "W7001" in finding and "warning" in finding.lower()


def _bad_instance_type(t) -> None:
    t.add(LaunchTemplate("TypoTemplate", LaunchTemplateData=LaunchTemplateData(InstanceType="m9.large")))


def test_an_allowed_values_message_is_a_count_and_the_closest_few_in_json(monkeypatch, capsys):
    # cfn-lint lists every instance type of the region (more than a thousand) in one message.
    _patch_security(monkeypatch, _bad_instance_type)
    assert main(["lint", "--env", "dev", "--no-checkov", "--output", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    (message,) = {f["message"] for f in doc["findings"] if f["resource"] == "Resources.TypoTemplate"}
    count, closest = re.fullmatch(r"'m9\.large' is not one of ([\d,]+) allowed values \(closest: (.*)\).*",
                                  message).groups()
    assert int(count.replace(",", "")) > 500 and len(message) < 200
    shown = re.findall(r"'([^']+)'", closest)
    assert len(shown) == 3 and all(name.endswith("large") for name in shown)


@pytest.mark.parametrize("message, expected", [
    # the value given, then the closest choices (difflib), not the first ones
    ("'t3.mediun' is not one of ['a1.large', 'c5.large', 't3.large', 't3.medium', 't3.micro', 'z1d.large']",
     "'t3.mediun' is not one of 6 allowed values (closest: 't3.medium', 't3.micro', 't3.large')"),
    # no value to compare: the first few
    ("Ref 'X' not in ['A', 'B', 'C', 'D', 'E', 'F', 'G']", "Ref 'X' not in 7 allowed values (e.g. 'A', 'B', 'C')"),
    # a short list stays as it is
    ("'x' is not one of ['a', 'b']", "'x' is not one of ['a', 'b']"),
])
def test_concise_allowed_values(message, expected):
    assert concise(message) == expected


def test_missing_checkov_names_what_a_pip_user_runs(monkeypatch, capsys):
    """Outside a clone there is no Makefile: the hint names pipx and the version the Makefile pins."""
    monkeypatch.setattr(checkov, "find", lambda: None)
    assert main(["lint", "--env", "dev"]) == 0
    pinned = re.search(r"^CHECKOV_VERSION \?= (\S+)$", (REPO / "Makefile").read_text(), re.M)[1]
    assert f"checkov   skipped (not installed: pipx install checkov=={pinned}, or make checkov in a clone)" \
           in capsys.readouterr().out.splitlines()
