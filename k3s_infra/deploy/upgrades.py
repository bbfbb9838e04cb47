"""Checks of an update that would break a running cluster if it rolled as rendered."""

from __future__ import annotations

from k3s_infra.deploy import Refused
from k3s_infra.model import outputs as o


def check_issuer_upgrade(env, root: dict | None) -> None:
    """A cluster deployed before pod IAM has no issuer output. Its servers, rolled one at a time
    to sign as the new issuer, would meet servers that accept only K3s's: in-cluster clients
    holding a new token get 401 from those until the roll ends (kube-apiserver accepts only
    its --service-account-issuer values). So the first such deploy only adds the issuer as
    accepted (k3s.service_account_issuer: accept), the next one signs with it."""
    if root is None or env.k3s.service_account_issuer != "sign":
        return
    outputs = {output["OutputKey"] for output in root.get("Outputs", [])}
    # A stack never created (REVIEW_IN_PROGRESS) or rolled back has no outputs and no servers.
    if outputs and o.ISSUER_URL not in outputs:
        raise Refused(f"{env.stack_name} was deployed before pod IAM: deploy it once with "
                      "k3s.service_account_issuer: accept (every server then accepts the new issuer's tokens), "
                      "then remove that line and deploy again (they sign with it); docs/pod-iam.md")
