"""Pod IAM (issue 22): the first server copies the cluster's service account issuer (the OIDC
discovery document and the JWKS kube-apiserver serves: kubernetes
pkg/serviceaccount/openidmetadata.go) to the issuer bucket STS reads through CloudFront, every
boot and again from its watch when the keys change, and gives the pod identity webhook its
serving certificate and the MutatingWebhookConfiguration that trusts it
(bootstrap/first_server.sh publish_issuer, issuer_current, webhook_tls)."""

from __future__ import annotations

import base64
import datetime
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc.errors import JoseError

from k3s_infra import bootstrap
from k3s_infra.model import pod_identity
from tests.support import service_accounts as sa
from tests.support.boot_sandbox import PARAMETERS

ISSUER = PARAMETERS["IssuerUrl"]
DISCOVERY, JWKS = pod_identity.DISCOVERY_KEY, pod_identity.JWKS_KEY
TLS = f"{pod_identity.NAMESPACE}/{pod_identity.TLS_SECRET}"
FOLDER = "etcd/dev"
# How each boot of the first server finds the cluster (test_boot_server_init, _restore).
MODES = {
    "init": {"marker": None, "api_up_after": None, "targets": ("unhealthy",), "secure_tokens": False},
    "restore": {"marker": "initialised", "api_up_after": None, "targets": (),
                "objects": ((f"{FOLDER}/etcd-snapshot-i-0aaa-1735711200", "2025-01-01T06:00:00+00:00"),)},
    # Another server registered (the load balancer reaches only those), healthy once it looks again.
    "rejoin": {"marker": "initialised", "api_up_after": 0, "targets": ("unhealthy",), "targets_after": (1, ("healthy",))},
}


def _objects(run) -> dict[str, dict]:
    return run.state["issuer_objects"]


def _configured_issuer(run) -> str:
    """The issuer this server's K3s config gives kube-apiserver (the first one it names)."""
    (issuer,) = [a.split("=", 1)[1] for a in run.config()["kube-apiserver-arg"]
                 if a.startswith("service-account-issuer-=")]
    return issuer


@pytest.mark.parametrize("mode", MODES)
def test_the_first_server_publishes_the_issuer_it_serves_on_every_boot(sandbox, user_data, mode):
    run = sandbox.run(user_data("dev", "ServerInit"), **MODES[mode])
    assert run.returncode == 0, run.stderr
    assert run.statuses == ["SUCCESS"]
    objects = _objects(run)
    assert set(objects) == {DISCOVERY, JWKS}
    assert {o["content_type"] for o in objects.values()} == {"application/json"}
    # Exactly the API's bytes: the JWKS of its keys, the discovery document naming this issuer.
    assert objects[JWKS]["body"] == run.state["jwks"]
    discovery = json.loads(objects[DISCOVERY]["body"])
    assert discovery["issuer"] == ISSUER == _configured_issuer(run)
    assert discovery["jwks_uri"] == f"{ISSUER}/{JWKS}"  # where the bucket holds the JWKS, behind the issuer URL
    # Copied once the API was ready, before the cluster was published as up.
    puts = [run.position("put-object", key) for key in (DISCOVERY, JWKS)]
    assert run.position("--raw=/readyz") < min(puts)
    if mode != "rejoin":
        assert max(puts) < run.position("put-parameter", PARAMETERS["ClusterStateParameterName"])


def test_a_joining_server_publishes_nothing(sandbox, user_data):
    run = sandbox.run(user_data("dev", "Servers"), api_up_after=0)
    assert run.returncode == 0, run.stderr
    assert not [c for c in run.aws_calls if "s3api" in c and "get-object" not in c] and _objects(run) == {}
    assert run.state["cluster_secrets"] == {} and run.state["applied"] == []


@pytest.mark.parametrize("flag,served,said", [
    ("service-account-issuer-", "https://old.example", f"'https://old.example' with keys at '{ISSUER}/{JWKS}'"),
    ("service-account-jwks-uri", "https://old.example/keys", f"'{ISSUER}' with keys at 'https://old.example/keys'"),
], ids=["issuer", "jwks_uri"])
def test_an_api_serving_another_issuer_fails_the_boot_before_the_cluster_is_published(sandbox, user_data, flag,
                                                                                      served, said):
    """The API's discovery document names another issuer or keys elsewhere (a flag lost or
    stale): STS would reject every pod's token, silently."""
    given = user_data("dev", "ServerInit")
    # The user data carries the issuer as a fact the boot reads from SSM (bind_facts).
    marker = bootstrap.fact_marker("issuer_url")
    configured = {"service-account-issuer-": marker, "service-account-jwks-uri": f"{marker}/{JWKS}"}[flag]
    changed = given.replace(f"{flag}={configured}", f"{flag}={served}")
    assert changed != given
    run = sandbox.run(given.derived(changed), **MODES["init"])
    assert run.returncode == 1
    assert f"the API's service account issuer is {said}, not {ISSUER}" in run.stderr
    assert run.statuses == ["FAILURE"] and run.health_reports
    assert _objects(run) == {}
    assert PARAMETERS["ClusterStateParameterName"] not in run.state["parameters"]  # no cluster left behind


def test_a_token_kube_apiserver_signs_verifies_against_the_published_jwks_and_no_other(sandbox, user_data):
    run = sandbox.run(user_data("dev", "ServerInit"), **MODES["init"])
    assert run.returncode == 0, run.stderr
    published = _objects(run)[JWKS]["body"]
    issuer = json.loads(_objects(run)[DISCOVERY]["body"])["issuer"]
    claims = sa.verified_claims(sa.token(sa.signing_key(0), issuer, "apps", "uploader"), published, issuer)
    assert claims["sub"] == "system:serviceaccount:apps:uploader"
    stranger = sa.signing_key(1)
    for forged in (sa.token(stranger, issuer), sa.token(stranger, issuer, kid=sa.key_id(sa.signing_key(0)))):
        with pytest.raises(JoseError):
            sa.verified_claims(forged, published, issuer)
    with pytest.raises(JoseError):  # STS checks the issuer too
        sa.verified_claims(sa.token(sa.signing_key(0), "https://kubernetes.default.svc.cluster.local"),
                           published, issuer)


def _secret(run) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in run.state["cluster_secrets"][TLS].items()}


def test_the_webhook_gets_a_certificate_for_its_service_and_a_configuration_trusting_its_ca(sandbox, user_data):
    run = sandbox.run(user_data("dev", "ServerInit"), **MODES["init"])
    assert run.returncode == 0, run.stderr
    secret = _secret(run)
    assert set(secret) == {"tls.crt", "tls.key", "ca.crt"}
    ca, cert = x509.load_pem_x509_certificate(secret["ca.crt"]), x509.load_pem_x509_certificate(secret["tls.crt"])
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [pod_identity.SERVICE_HOST]
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value
    key = serialization.load_pem_private_key(secret["tls.key"], None)
    assert key.public_key() == cert.public_key()
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=3600) < lifetime < datetime.timedelta(days=3700)
    (configuration,) = [d for d in run.state["applied"] if d["kind"] == "MutatingWebhookConfiguration"]
    assert configuration["webhooks"]
    for hook in configuration["webhooks"]:
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == secret["ca.crt"]
        assert hook["clientConfig"]["service"]["name"] + f".{pod_identity.NAMESPACE}.svc" == pod_identity.SERVICE_HOST
    # No key material in the log, and none left on the node outside the cluster.
    assert "PRIVATE KEY" not in run.stdout + run.stderr
    for folder in (run.root, run.tmp):
        assert not [p for p in folder.rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()]


def test_a_later_boot_reuses_the_webhook_certificate(sandbox, user_data):
    first = sandbox.run(user_data("dev", "ServerInit"), **MODES["init"])
    assert first.returncode == 0, first.stderr
    again = sandbox.run(user_data("dev", "ServerInit"), **MODES["rejoin"], shared=first.state)
    assert again.returncode == 0, again.stderr
    assert _secret(again) == _secret(first)
    assert not [c for c in again.k3s_calls if "create" in c]
    (configuration,) = again.state["applied"]
    assert {base64.b64decode(h["clientConfig"]["caBundle"]) for h in configuration["webhooks"]} == \
        {_secret(first)["ca.crt"]}


def test_the_watch_publishes_the_keys_again_once_they_change(sandbox, user_data):
    """A key rotation (https://docs.k3s.io/cli/certificate) reaches the bucket within a round;
    unchanged keys are not copied again. JWKS reads: round 1 (no copy yet: copied, a second
    read), round 2 (unchanged), round 3 (rotated: copied, a fifth read)."""
    run = sandbox.run(user_data("dev", "ServerInit"), mode="watch", watch_rounds=3, keys_after=(3, (1,)))
    assert run.returncode == 0, run.stderr
    assert run.state["issuer_puts"] == [DISCOVERY, JWKS, DISCOVERY, JWKS]
    published = _objects(run)[JWKS]["body"]
    assert published == sa.jwks([sa.signing_key(1)])
    sa.verified_claims(sa.token(sa.signing_key(1), ISSUER), published, ISSUER)
    assert "the service account keys changed: publishing them" in run.stderr


def test_a_watch_that_cannot_publish_says_so_and_keeps_watching(sandbox, user_data):
    run = sandbox.run(user_data("dev", "ServerInit"), mode="watch", watch_rounds=2, unreachable=("s3api",))
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("cannot publish the service account issuer") == 2  # tried again the next round
    assert _objects(run) == {}


NTH = ("kube-system", "aws-node-termination-handler-7d9f-x2v4q", "aws-node-termination-handler", False)


def test_the_watch_recreates_a_controller_pod_made_while_the_webhook_was_away(sandbox, user_data):
    """The webhook's failure policy is Ignore (model/pod_identity.py): a pod created while it was
    away has no AWS_ROLE_ARN, and a container restart does not change that (admission runs at
    pod creation only: https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/).
    Once the webhook has a ready replica, the first server's watch deletes such a pod of a
    controller k3s-infra installs (prod: the termination handler and the autoscaler); a pod
    that has its role, another service account's pod, or any pod while the webhook is not
    ready, is left alone."""
    pods = (NTH, ("kube-system", "cluster-autoscaler-5c6d-mm2kq", "cluster-autoscaler", True),
            ("kube-system", "coredns-64f8-abcde", "coredns", False),
            ("default", "aws-node-termination-handler-other", "aws-node-termination-handler", False))
    waiting = sandbox.run(user_data("prod", "ServerInit"), mode="watch", watch_rounds=1, pods=pods,
                          webhook_ready=None)
    assert waiting.returncode == 0, waiting.stderr
    assert waiting.state["deleted_pods"] == []
    served = sandbox.run(user_data("prod", "ServerInit"), mode="watch", watch_rounds=1, pods=pods, webhook_ready=2)
    assert served.returncode == 0, served.stderr
    assert served.state["deleted_pods"] == [f"{NTH[0]}/{NTH[1]}"]
    assert "runs without its AWS role" in served.stderr


def test_only_the_controllers_the_environment_installs_are_looked_at(sandbox, user_data):
    """dev runs the autoscaler but no termination handler: a pod of the handler's service
    account is none of its business, the autoscaler's without its role is made again."""
    autoscaler = ("kube-system", "cluster-autoscaler-5c6d-zz9kq", "cluster-autoscaler", False)
    run = sandbox.run(user_data("dev", "ServerInit"), mode="watch", watch_rounds=1, pods=(NTH, autoscaler),
                      webhook_ready=1)
    assert run.returncode == 0, run.stderr
    assert run.state["deleted_pods"] == [f"{autoscaler[0]}/{autoscaler[1]}"]


def test_a_server_that_only_accepts_the_issuer_boots_and_publishes_nothing(sandbox, env_document):
    """k3s.service_account_issuer accept (the first deploy of a cluster made before pod IAM):
    K3s puts the issuer after its own (`+=`, k3s-io/k3s pkg/util/args.go GetArgs), so the API
    still signs and describes itself as K3s's issuer; the first server publishes nothing and
    neither does its watch, and the boot succeeds."""
    from k3s_infra.config import validate
    from k3s_infra.render import build_templates
    from tests.support.boot_sandbox import expand

    document = env_document("dev")
    document.setdefault("k3s", {})["service_account_issuer"] = "accept"
    template = build_templates(validate(document, "dev.yaml"))["ServerInit"].to_dict()
    template = json.loads(json.dumps(template))
    run = sandbox.run(expand(template))
    assert run.returncode == 0, run.stderr
    assert run.statuses == ["SUCCESS"]
    assert [a for a in run.config()["kube-apiserver-arg"] if a.startswith("service-account-issuer")] == [
        f"service-account-issuer+={ISSUER}"]
    assert _objects(run) == {}
    watched = sandbox.run(expand(template), mode="watch", watch_rounds=2)
    assert watched.returncode == 0, watched.stderr
    assert _objects(watched) == {}
