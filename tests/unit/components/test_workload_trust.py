"""Who can assume the roles of service accounts (components/workload_iam.py, as the Identity
stack renders them): a table of documented outcomes, each decided by evaluating the rendered
trust policies (their ``Fn::Sub`` resolved with a made-up provider ARN and issuer host) with
tests/support/iam_eval.py, the way STS decides AssumeRoleWithWebIdentity.

What the outcomes rest on (AWS documentation):
- STS looks up the IAM OIDC provider whose URL is the token's ``iss`` and accepts the token
  only if its ``aud`` is one of the provider's client IDs; the role's trust policy then sees
  the principal ``{"Federated": <provider ARN>}`` (IAM User Guide, "OIDC federation" and
  "Create an OpenID Connect (OIDC) identity provider in IAM"; STS API Reference,
  AssumeRoleWithWebIdentity).
- The condition keys are the provider URL without ``https://`` followed by ``:sub`` and
  ``:aud`` (IAM User Guide, "IAM and AWS STS condition context keys", "Available keys for AWS
  OIDC federation"; "Create a role for OpenID Connect federation"). A principal is matched
  exactly, never with wildcards (IAM JSON policy elements: Principal). ``StringEquals``
  compares case-sensitively and literally: a ``*`` in a token's ``sub`` is just a character
  (IAM JSON policy elements: Condition operators).
- A service account token's ``sub`` is ``system:serviceaccount:<namespace>:<name>``
  (Kubernetes, "Managing Service Accounts"); the pod identity webhook requests the audience
  ``sts.amazonaws.com`` (aws/amazon-eks-pod-identity-webhook README), and the API server's
  own audience (K3s: https://kubernetes.default.svc.cluster.local) must never get a role
  (EKS User Guide, "Assign IAM roles to Kubernetes service accounts": the trust policy's
  ``aud`` condition).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from k3s_infra.config import validate
from k3s_infra.render import build_templates

from tests.support.iam_eval import WEB_IDENTITY, OidcProvider, Request, WebIdentityToken, trusted, web_identity
from tests.support.iam_policies import (
    AUTOSCALER_SERVICE_ACCOUNT,
    NTH_SERVICE_ACCOUNT,
    STS_AUDIENCE,
    Cluster,
    as_list,
    example_provider,
    subject,
)
from tests.support.oracle_helpers import ALL_ADDONS, REPO as ROOT, plain_document

KUBE_API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"  # K3s's default API audience
# Two people's roles in one namespace and one name again in another namespace.
WORKLOAD_ROLES = [
    {"service_account": "payments/api", "policy_arns": ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]},
    {"service_account": "payments/worker", "statements": [
        {"Sid": "Queue", "Effect": "Allow", "Action": ["sqs:SendMessage"],
         "Resource": "arn:aws:sqs:eu-west-1:123456789012:payments"}]},
    {"service_account": "billing/api", "policy_arns": ["arn:aws:iam::123456789012:policy/billing-api"]},
]
# Service accounts no role is for: the namespace's default, the webhook's own.
BYSTANDERS = ["payments/default", "kube-system/default", "kube-system/pod-identity-webhook", "default/api"]


def _templates(env) -> dict[str, dict]:
    return {k: json.loads(json.dumps(t.to_dict())) for k, t in build_templates(env).items()}


@pytest.fixture(scope="module", params=["dev", "prod", "all-addons", "workload-roles"])
def case(request, rendered):
    """(cluster, {service account: the role meant for it}) with the role found by what it
    may do: the handler's drains the queue, the autoscaler's scales, a person's carries the
    policies its workload_roles entry lists."""
    if request.param in ("dev", "prod"):
        cluster = Cluster(rendered[request.param].env, rendered[request.param].templates)
        entries = plain_document(ROOT / "environments" / f"{request.param}.yaml").get("workload_roles", [])
    else:
        document = plain_document(ALL_ADDONS)
        if request.param == "workload-roles":
            document["workload_roles"] = WORKLOAD_ROLES
        entries = document.get("workload_roles", [])
        env = validate(document, "env.yaml")
        cluster = Cluster(env, _templates(env))
    meant = {}
    for logical, role in cluster.workload.items():
        text = json.dumps(role["policies"])
        arns = role["properties"].get("ManagedPolicyArns", [])
        if "sqs:ReceiveMessage" in text:
            meant[NTH_SERVICE_ACCOUNT] = logical
        elif "autoscaling:SetDesiredCapacity" in text:
            meant[AUTOSCALER_SERVICE_ACCOUNT] = logical
        else:
            statements = role["policies"][0]["Statement"] if role["policies"] else []
            (entry,) = [e for e in entries if e.get("policy_arns", []) == arns
                        and e.get("statements", []) == statements]
            meant[entry["service_account"]] = logical
    expected = {e["service_account"] for e in entries}
    expected |= {NTH_SERVICE_ACCOUNT} if cluster.env.draining else set()
    expected |= {AUTOSCALER_SERVICE_ACCOUNT} if cluster.env.autoscaling else set()
    assert set(meant) == expected and len(set(meant.values())) == len(meant)
    return cluster, meant


def _other_issuer() -> OidcProvider:
    return example_provider("123456789012", host="d222222abcdef8.cloudfront.net")


def _token(provider: OidcProvider, sub: str, aud: str = STS_AUDIENCE) -> WebIdentityToken:
    return WebIdentityToken(iss=provider.url, sub=sub, aud=aud)


def _with_client(provider: OidcProvider, client_id: str) -> OidcProvider:
    return replace(provider, client_ids=(*provider.client_ids, client_id))


# (what, token and the providers STS knows, given the service account and the cluster's
# provider, allowed?) — every row is for every role of the case.
TABLE = [
    ("its own service account, STS audience",
     lambda sa, p: (_token(p, subject(sa)), [p]), True),
    ("another service account of the same namespace",
     lambda sa, p: (_token(p, subject(sa.split("/")[0] + "/other")), [p]), False),
    ("the same name in another namespace",
     lambda sa, p: (_token(p, subject("elsewhere/" + sa.split("/")[1])), [p]), False),
    ("the API server's audience: STS refuses the token",
     lambda sa, p: (_token(p, subject(sa), KUBE_API_AUDIENCE), [p]), False),
    ("the API server's audience even where the provider listed it: the trust refuses",
     lambda sa, p: (_token(p, subject(sa), KUBE_API_AUDIENCE), [_with_client(p, KUBE_API_AUDIENCE)]), False),
    ("another cluster's issuer, same service account",
     lambda sa, p: (_token(_other_issuer(), subject(sa)), [p, _other_issuer()]), False),
    ("an issuer IAM has no provider for",
     lambda sa, p: (_token(_other_issuer(), subject(sa)), [p]), False),
    ("a wildcard-looking subject is only text",
     lambda sa, p: (_token(p, subject(sa.split("/")[0] + "/*")), [p]), False),
    ("a subject of every service account",
     lambda sa, p: (_token(p, "system:serviceaccount:*"), [p]), False),
    ("the namespace in another case",
     lambda sa, p: (_token(p, subject(sa.upper())), [p]), False),
    ("the service account's subject with a suffix",
     lambda sa, p: (_token(p, subject(sa) + "-x"), [p]), False),
]


@pytest.mark.parametrize("what, build, allow", TABLE, ids=[row[0] for row in TABLE])
def test_documented_outcomes(case, what, build, allow):
    cluster, meant = case
    for service_account, logical in meant.items():
        token, providers = build(service_account, cluster.provider)
        request = web_identity(token, providers, f"arn:aws:iam::{cluster.env.account_id}:role/x")
        admitted = {k for k, role in cluster.workload.items()
                    if request is not None and trusted(role["trust"], request)}
        assert admitted == ({logical} if allow else set()), (what, service_account)


def test_each_role_trusts_exactly_one_subject_and_no_two_roles_the_same(case):
    cluster, meant = case
    candidates = [*meant, *BYSTANDERS, NTH_SERVICE_ACCOUNT, AUTOSCALER_SERVICE_ACCOUNT,
                  *(e["service_account"] for e in WORKLOAD_ROLES)]
    admits = {logical: set() for logical in cluster.workload}
    for service_account in candidates:
        request = web_identity(_token(cluster.provider, subject(service_account)), [cluster.provider], "arn")
        for logical, role in cluster.workload.items():
            if trusted(role["trust"], request):
                admits[logical].add(service_account)
    assert {logical: {sa} for sa, logical in meant.items()} == admits
    if NTH_SERVICE_ACCOUNT in meant:  # the handler's role: its service account and nothing else
        assert admits[meant[NTH_SERVICE_ACCOUNT]] == {NTH_SERVICE_ACCOUNT}


def test_trust_is_web_identity_from_this_clusters_provider_only(case):
    """One Allow statement: the provider as a Federated principal, the web identity action, and
    StringEquals on exactly <issuer host>:sub and <issuer host>:aud; no other way in (not
    sts:AssumeRole, not another principal)."""
    cluster, meant = case
    host = cluster.provider.url.removeprefix("https://")
    for service_account, logical in meant.items():
        trust = cluster.workload[logical]["trust"]
        assert trust["Version"] == "2012-10-17"
        (statement,) = as_list(trust["Statement"])
        assert statement["Effect"] == "Allow" and statement["Principal"] == {"Federated": cluster.provider.arn}
        assert as_list(statement["Action"]) == [WEB_IDENTITY]
        assert statement["Condition"] == {"StringEquals": {f"{host}:sub": subject(service_account),
                                                           f"{host}:aud": STS_AUDIENCE}}
        principal = ("Federated", cluster.provider.arn)
        assume = Request("sts:AssumeRole", "arn", principal=principal)
        assert not trusted(trust, assume), logical
        ec2 = Request(WEB_IDENTITY, "arn", web_identity(_token(cluster.provider, subject(service_account)),
                                                        [cluster.provider], "arn").context,
                      principal=("Service", "ec2.amazonaws.com"))
        assert not trusted(trust, ec2), logical


def test_the_roles_are_in_the_projects_path_with_default_sessions(case):
    """Path /k3s-infra/ like the node roles; sessions no longer than IAM's default of one hour
    (IAM User Guide, "Update the maximum session duration for a role": 1 to 12 hours, default 1)."""
    cluster, meant = case
    for logical in meant.values():
        properties = cluster.workload[logical]["properties"]
        assert properties["Path"] == "/k3s-infra/" and properties.get("MaxSessionDuration", 3600) == 3600


def test_the_evaluator_would_admit_what_a_looser_trust_allows():
    """The oracle is not a constant "denied": with StringLike and a namespace wildcard (the
    mistake the product must never make) every service account of the namespace gets in, and a
    trust without the aud condition takes the API server's audience once the provider lists it."""
    provider = example_provider("123456789012")
    host = provider.url.removeprefix("https://")
    loose = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": provider.arn}, "Action": WEB_IDENTITY,
        "Condition": {"StringLike": {f"{host}:sub": "system:serviceaccount:payments:*"}}}]}
    for sa, admitted in (("payments/api", True), ("payments/other", True), ("billing/api", False)):
        request = web_identity(_token(provider, subject(sa)), [provider], "arn")
        assert trusted(loose, request) is admitted, sa
    kube = web_identity(_token(provider, subject("payments/api"), KUBE_API_AUDIENCE),
                        [_with_client(provider, KUBE_API_AUDIENCE)], "arn")
    assert trusted(loose, kube)
