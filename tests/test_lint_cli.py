"""`k3s-infra lint`: clean environments pass, a broken template is reported by file and resource."""

from __future__ import annotations

import pytest
from troposphere import Ref
from troposphere.ec2 import SecurityGroupIngress

import stacks
from k3s_infra.cli import main


def test_lint_passes_on_dev(capsys):
    assert main(["lint", "--env", "dev", "--no-checkov"]) == 0
    out = capsys.readouterr().out
    assert "dev: no findings" in out and "ms per template" in out


@pytest.fixture
def broken_security_stack(monkeypatch):
    original = stacks.security.build

    def build(env):
        t = original(env)
        t.add(SecurityGroupIngress("DanglingRule", GroupId=Ref("NoSuchGroup"), IpProtocol="tcp",
                                   FromPort=22, ToPort=22, CidrIp="10.0.0.0/8"))
        return t

    monkeypatch.setattr(stacks.security, "build", build)


def test_lint_reports_a_broken_template_and_exits_1(broken_security_stack, capsys):
    assert main(["lint", "--env", "dev", "--no-checkov"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "security.yaml" in lines
    finding = next(line for line in lines if "Resources.DanglingRule" in line)
    assert "NoSuchGroup" in finding and " E" in finding
    assert "finding(s)" in lines[-1]
