"""checkov: zero failed checks on every environment and on the one with every add-on on; every
skip is listed here, with its reason.
"""

from __future__ import annotations

import pytest

from k3s_infra.config import available_environments
from k3s_infra.render import checkov
from tests.support.oracle_helpers import REPO

# (stack, resource, check): the only checks that do not apply. Adding one is a review decision.
EXPECTED_SKIPS = {
    ("ApiEndpoint", "ApiLoadBalancer", "CKV_AWS_91"),   # NLB access logs need a TLS listener
    ("ApiEndpoint", "PublicApiLoadBalancer", "CKV_AWS_91"),  # the same, internet-facing door
    ("ClusterData", "SnapshotBucket", "CKV_AWS_18"),    # access logging -> CloudTrail data events
    ("NodeIam", "ServerRole", "CKV_AWS_111"),           # cloud controller creates resources at run time
    ("NodeIam", "FirstServerRole", "CKV_AWS_111"),      # the same controller, on the first server
    # The SSM Agent's registration, ssm:UpdateInstanceInformation on "*" as AWS's own
    # AmazonSSMManagedInstanceCore grants it (components/iam_actions.py SSM_AGENT_REGISTRATION);
    # on the server roles it shares the cloud controller's skip (node_access on by default).
    ("NodeIam", "AgentRole", "CKV_AWS_111"),
    # The OIDC issuer: two public documents for STS behind CloudFront (components/oidc_issuer.py)
    ("Identity", "IssuerBucket", "CKV_AWS_18"),         # access logging -> CloudTrail data events
    ("Identity", "IssuerBucket", "CKV_AWS_21"),         # versioning: republished at every first-server boot
    ("Identity", "IssuerDistribution", "CKV_AWS_68"),   # WAF: nothing to filter on two public documents
    ("Identity", "IssuerDistribution", "CKV_AWS_86"),   # access logs: the same documents for everyone
    ("Identity", "IssuerDistribution", "CKV_AWS_174"),  # TLS 1.2 minimum needs a custom domain + certificate
    ("Draining", "DrainQueue", "CKV_AWS_27"),           # SSE-SQS encryption, which checkov does not recognise
    ("Network", "FlowLogGroup", "CKV_AWS_158"),        # flow records: CloudWatch Logs' own encryption
}


@pytest.mark.parametrize("name", available_environments())
def test_checkov_reports_no_failed_check(rendered, executable, name):
    findings = checkov.scan(rendered[name].folder, executable)
    assert findings == [], "\n".join(f"{f.file} {f.resource} {f.rule}: {f.message}" for f in findings)


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
    from k3s_infra.config import load_environment
    from k3s_infra.render import render, write

    env = load_environment(path=REPO / "tests" / "environments" / "all-addons.yaml")
    folder = write(render(env), tmp_path / "all-addons")
    assert (folder / "draining.yaml").exists()
    assert checkov.scan(folder, executable) == []
