"""deploy refuses to make servers sign as the new OIDC issuer on a cluster deployed before it
(deploy/lifecycle.py check_issuer_upgrade): kube-apiserver accepts only the issuers its
--service-account-issuer names (the first signs), so during a one-at-a-time roll servers not yet
rolled would reject every token the rolled ones sign. First `accept`, then `sign`."""

from __future__ import annotations

import pytest

from k3s_infra.config import validate
from k3s_infra.deploy import Refused
from k3s_infra.deploy.lifecycle import check_issuer_upgrade

BEFORE = {"StackStatus": "UPDATE_COMPLETE", "Outputs": [{"OutputKey": "ApiDnsName", "OutputValue": "x"}]}
AFTER = {"StackStatus": "UPDATE_COMPLETE", "Outputs": [{"OutputKey": "IssuerUrl", "OutputValue": "https://d1"}]}


def _env(env_document, mode: str | None):
    document = env_document("dev")
    if mode:
        document.setdefault("k3s", {})["service_account_issuer"] = mode
    return validate(document, "dev.yaml")


def test_a_cluster_from_before_pod_iam_is_refused_signing_and_told_what_to_do(env_document):
    with pytest.raises(Refused, match="k3s.service_account_issuer: accept"):
        check_issuer_upgrade(_env(env_document, None), BEFORE)


@pytest.mark.parametrize("mode, root", [("accept", BEFORE), (None, AFTER), ("accept", AFTER), (None, None),
                                        (None, {"StackStatus": "REVIEW_IN_PROGRESS"}),
                                        (None, {"StackStatus": "ROLLBACK_COMPLETE", "Outputs": []})])
def test_accepting_first_a_cluster_with_an_issuer_and_a_new_one_go_ahead(env_document, mode, root):
    check_issuer_upgrade(_env(env_document, mode), root)
