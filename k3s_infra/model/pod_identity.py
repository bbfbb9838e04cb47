"""The pod identity webhook (aws/amazon-eks-pod-identity-webhook) as Kubernetes objects, data.

It mutates pods whose service account carries ``eks.amazonaws.com/role-arn``: it adds a
projected service account token for the STS audience and AWS_ROLE_ARN /
AWS_WEB_IDENTITY_TOKEN_FILE, which every AWS SDK reads (its README). Every server's
manifests carry the objects below (K3s's deploy controller applies them); the first server
makes the serving certificate and the MutatingWebhookConfiguration with its CA
(first_server.sh webhook_tls), so no key ever travels in a template or the bundle.

Failure policy Ignore, as upstream's deploy/mutatingwebhook.yaml: a pod created while the
webhook is away starts without AWS credentials (and, with IMDS hop limit 1, with none at
all) instead of every pod creation in the cluster failing; recreate such a pod once the
webhook runs (docs/pod-iam.md).
"""

from __future__ import annotations

from typing import Any

from k3s_infra.config import Environment, defaults
from k3s_infra.config.catalog import WEBHOOK_SERVICE_ACCOUNT
from k3s_infra.config.yaml_text import dump
from k3s_infra.model.addons import ROLE_ARN_ANNOTATION

# The documents Kubernetes serves for service account issuer discovery, at these paths below
# the issuer (https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/
# #service-account-issuer-discovery); the first server copies them to the issuer's bucket.
DISCOVERY_KEY = ".well-known/openid-configuration"
JWKS_KEY = "openid/v1/jwks"
NAMESPACE, NAME = WEBHOOK_SERVICE_ACCOUNT.split("/")
TLS_SECRET = f"{NAME}-tls"
SERVICE_HOST = f"{NAME}.{NAMESPACE}.svc"  # the name its certificate carries
PORT = 8443  # unprivileged: it needs no NET_BIND_SERVICE
CA_PLACEHOLDER = "__K3S_INFRA_WEBHOOK_CA__"
_LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "k3s-infra"}
_CERTS = "/etc/webhook/certs"


def _meta(name: str = NAME, namespaced: bool = True) -> dict[str, Any]:
    return {"name": name, **({"namespace": NAMESPACE} if namespaced else {}), "labels": dict(_LABELS)}


def objects(env: Environment) -> list[dict[str, Any]]:
    """Service account, its read-only RBAC on service accounts, the Service and the Deployment."""
    # Two, on two servers where there are (preferred anti-affinity); never from servers.count,
    # or growing the cluster would change the bundle and roll every server.
    replicas = 2
    args = [
        "--in-cluster=false",  # the certificate comes from TLS_SECRET, not an in-cluster CSR
        f"--namespace={NAMESPACE}", f"--service-name={NAME}", f"--port={PORT}",
        f"--annotation-prefix={ROLE_ARN_ANNOTATION.split('/')[0]}",
        f"--token-audience={defaults.TOKEN_AUDIENCE}",
        f"--tls-cert={_CERTS}/tls.crt", f"--tls-key={_CERTS}/tls.key",
        f"--aws-default-region={env.region}", "--sts-regional-endpoint=true", "--logtostderr",
        # A pod made together with its service account (one Helm release) would otherwise find
        # the account missing from the webhook's cache and go unmutated (its handler waits for
        # the informer only with a grace period: pkg/handler/handler.go at v0.6.17).
        "--service-account-lookup-grace-period=500ms"]
    container = {
        "name": NAME, "image": defaults.POD_IDENTITY_WEBHOOK_IMAGE, "command": ["/webhook"], "args": args,
        "ports": [{"name": "https", "containerPort": PORT}],
        "volumeMounts": [{"name": "certs", "mountPath": _CERTS, "readOnly": True}],
        # The image sets no USER: run it as a non-root one (port 8443 needs no capability).
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
    }
    pod = {
        "serviceAccountName": NAME, "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"node-role.kubernetes.io/control-plane": "true"},
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                         "effect": "NoSchedule"}, {"key": "CriticalAddonsOnly", "operator": "Exists"}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                               "labelSelector": {"matchLabels": {"app.kubernetes.io/name": NAME}}}}]}},
        "containers": [container],
        "volumes": [{"name": "certs", "secret": {"secretName": TLS_SECRET}}],
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta()},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _meta(namespaced=False),
         "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "watch", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": _meta(namespaced=False),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": NAME},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": NAMESPACE}]},
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(),
         "spec": {"selector": {"app.kubernetes.io/name": NAME},
                  "ports": [{"name": "https", "port": 443, "targetPort": PORT}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(),
         "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
                  "template": {"metadata": {"labels": dict(_LABELS)}, "spec": pod}}},
    ]


def webhook_configuration() -> dict[str, Any]:
    """The MutatingWebhookConfiguration; the first server puts its CA in place of CA_PLACEHOLDER.
    admissionReviewVersions v1beta1 as upstream's deploy/mutatingwebhook.yaml (the webhook's
    response carries the v1beta1 type)."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": _meta(namespaced=False),
        "webhooks": [{
            "name": f"{NAME}.amazonaws.com", "failurePolicy": "Ignore", "sideEffects": "None",
            "admissionReviewVersions": ["v1beta1"], "timeoutSeconds": 10,
            "clientConfig": {"service": {"name": NAME, "namespace": NAMESPACE, "path": "/mutate", "port": 443},
                             "caBundle": CA_PLACEHOLDER},
            # Its own pods never wait on themselves.
            "objectSelector": {"matchExpressions": [
                {"key": "app.kubernetes.io/name", "operator": "NotIn", "values": [NAME]}]},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"]}],
        }],
    }


def manifest(env: Environment) -> str:
    return "".join(f"---\n{dump(item)}" for item in objects(env))


def configuration_template() -> str:
    return dump(webhook_configuration())
