"""`k3s-infra lint`: clean environments pass, any finding (error or warning) is reported by
file and resource and exits 1."""

from __future__ import annotations

import pytest
from troposphere import Ref
from troposphere.ec2 import SecurityGroupIngress

import stacks
from k3s_infra.cli import main


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
    assert "NoSuchGroup" in finding and " E" in finding and "choices]" in finding  # long lists counted
    assert "finding(s)" in lines[-1]


def test_a_warning_alone_fails_the_lint(monkeypatch, capsys):
    # An unused mapping is a cfn-lint warning (W7001), not an error: still exit 1.
    _patch_security(monkeypatch, lambda t: t.template.add_mapping("NobodyReadsMe", {"eu-west-1": {"Key": "value"}}))
    assert main(["lint", "--env", "dev", "--no-checkov"]) == 1
    out = capsys.readouterr().out
    finding = next(line for line in out.splitlines() if "Mappings.NobodyReadsMe" in line)
    assert "W7001" in finding and "warning" in finding.lower()
