"""checkov: zero failed checks on every environment; every skip is listed here, with its reason."""

from __future__ import annotations

import os

import pytest

from k3s_infra.render import checkov
from k3s_infra.config import available_environments

# (stack, resource, check): the only checks that do not apply. Adding one is a review decision.
EXPECTED_SKIPS = {
    ("ApiEndpoint", "ApiLoadBalancer", "CKV_AWS_91"),   # NLB access logs need a TLS listener
    ("ApiEndpoint", "PublicApiLoadBalancer", "CKV_AWS_91"),  # the same, internet-facing door
    ("ClusterData", "SnapshotBucket", "CKV_AWS_18"),    # access logging -> CloudTrail data events
    ("NodeIam", "ServerRole", "CKV_AWS_111"),           # cloud controller creates resources at run time
    ("Draining", "DrainQueue", "CKV_AWS_27"),           # SSE-SQS encryption, which checkov does not recognise
    ("Network", "FlowLogGroup", "CKV_AWS_158"),        # flow records: CloudWatch Logs' own encryption
}


@pytest.fixture(scope="module")
def executable():
    found = checkov.find()
    if not found:
        if os.environ.get("CI"):
            pytest.fail("checkov is not installed: `make checkov` creates its tool environment")
        pytest.skip("checkov not installed (make checkov)")
    return found


@pytest.mark.parametrize("name", available_environments())
def test_checkov_reports_no_failed_check(rendered, executable, name):
    findings = checkov.scan(rendered[name].folder, executable)
    assert findings == [], "\n".join(f"{f.file} {f.resource} {f.rule}: {f.message}" for f in findings)


def test_checkov_finds_a_world_readable_bucket(tmp_path, executable):
    """The scan is live: an unencrypted bucket without a public access block fails."""
    (tmp_path / "bad.yaml").write_text("Resources:\n  Open:\n    Type: AWS::S3::Bucket\n")
    rules = {f.rule for f in checkov.scan(tmp_path, executable)}
    assert "CKV_AWS_53" in rules or "CKV_AWS_18" in rules


@pytest.mark.parametrize("name", available_environments())
def test_skips_are_few_deliberate_and_explained(rendered, name):
    skips = set()
    for stack_id, template in rendered[name].templates.items():
        for logical, resource in template["Resources"].items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert len(skip["comment"]) > 30, skip  # a reason, not a shrug
                skips.add((stack_id, logical, skip["id"]))
    templates = rendered[name].templates
    assert skips == {skip for skip in EXPECTED_SKIPS
                     if skip[0] in templates and skip[1] in templates[skip[0]]["Resources"]}


def test_checkov_on_the_all_addons_environment(tmp_path, executable):
    """Every add-on and the draining resources on: still zero failed checks."""
    from pathlib import Path

    from k3s_infra.config import load_environment
    from k3s_infra.render import render, write

    env = load_environment(path=Path(__file__).resolve().parent / "environments" / "all-addons.yaml")
    folder = write(render(env), tmp_path / "all-addons")
    assert (folder / "draining.yaml").exists()
    assert checkov.scan(folder, executable) == []
