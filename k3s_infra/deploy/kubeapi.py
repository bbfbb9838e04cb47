"""A small read-only client of the cluster's Kubernetes API, through the admin kubeconfig the first
server publishes (deploy/kubeconfig.py ``fetch``): stdlib urllib over TLS, the kubeconfig's CA, its
client certificate or bearer token. No kubernetes package: the upgrade checks
(deploy/upgrade_checks.py) need three GETs (/readyz?verbose, /api/v1/nodes, /metrics).

``KubeApi`` is the interface those checks use; tests pass a fake with recorded answers."""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

from k3s_infra.deploy import kubeconfig

TIMEOUT = 10.0  # seconds: the API answers in well under one; a private endpoint out of reach never does


class KubeApiError(Exception):
    """The API cannot be reached or refuses the credentials: the checks that need it cannot run."""


class KubeApi(Protocol):
    server: str

    def get(self, path: str) -> tuple[int, str]:
        """(HTTP status, body) of a GET of ``path``; KubeApiError when there is no answer."""


def get_json(api: KubeApi, path: str) -> Any:
    status, body = api.get(path)
    if status != 200:
        raise KubeApiError(f"GET {path} on {api.server}: HTTP {status}: {body[:200].strip()}")
    try:
        return json.loads(body)
    except ValueError:
        raise KubeApiError(f"GET {path} on {api.server}: the answer is not JSON") from None


@dataclass
class Client:
    server: str
    context: ssl.SSLContext
    headers: dict[str, str]
    timeout: float = TIMEOUT

    def get(self, path: str) -> tuple[int, str]:
        return self.request("GET", path)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, str]:
        """(HTTP status, body) of ``method`` on ``path``; KubeApiError when there is no answer."""
        request = urllib.request.Request(self.server.rstrip("/") + path, data=body, method=method,
                                         headers={**self.headers, **(headers or {})})
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=self.timeout) as answer:
                return answer.status, answer.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:  # /readyz answers 500 with the failing checks in its body
            return exc.code, exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise KubeApiError(f"cannot reach the Kubernetes API at {self.server}: {reason}") from None


def _decoded(entry: dict, field: str) -> bytes | None:
    value = entry.get(field)
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KubeApiError(f"the kubeconfig's {field} is not base64") from None


def _client_certificate(context: ssl.SSLContext, certificate: bytes, key: bytes) -> None:
    """ssl loads a client certificate only from files: written 0600 in a private folder, read, removed."""
    with tempfile.TemporaryDirectory(prefix="k3s-infra-api-") as folder:
        paths = []
        for name, data in (("client.crt", certificate), ("client.key", key)):
            path = os.path.join(folder, name)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
                handle.write(data)
            paths.append(path)
        try:
            context.load_cert_chain(*paths)
        except ssl.SSLError as exc:
            raise KubeApiError(f"the kubeconfig's client certificate or key cannot be used: {exc}") from None


def from_kubeconfig(doc: dict) -> Client:
    """A client for the current context of a parsed kubeconfig (its cluster and user)."""
    def named(kind: str, name: str | None) -> dict:
        entries = [e for e in doc.get(kind) or [] if isinstance(e, dict)]
        found = next((e for e in entries if e.get("name") == name), entries[0] if entries else None)
        if found is None:
            raise KubeApiError(f"the kubeconfig has no {kind}")
        return found.get(kind[:-1]) or {}

    contexts = [c for c in doc.get("contexts") or [] if isinstance(c, dict)]
    current = next((c for c in contexts if c.get("name") == doc.get("current-context")),
                   contexts[0] if contexts else {}).get("context") or {}
    cluster, user = named("clusters", current.get("cluster")), named("users", current.get("user"))
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith("https://"):
        raise KubeApiError(f"the kubeconfig's server {server!r} is not an https:// URL")
    if cluster.get("insecure-skip-tls-verify"):
        raise KubeApiError("the kubeconfig turns TLS verification off: not used")
    ca = _decoded(cluster, "certificate-authority-data")
    try:
        context = ssl.create_default_context(cadata=ca.decode("ascii", "replace") if ca else None)
    except (ssl.SSLError, ValueError) as exc:
        raise KubeApiError(f"the kubeconfig's certificate-authority-data is no certificate: {exc}") from None
    certificate, key = _decoded(user, "client-certificate-data"), _decoded(user, "client-key-data")
    headers = {"Accept": "application/json, text/plain"}
    if certificate and key:
        _client_certificate(context, certificate, key)
    elif isinstance(user.get("token"), str):
        headers["Authorization"] = f"Bearer {user['token']}"
    else:
        raise KubeApiError("the kubeconfig's user has neither a client certificate nor a token")
    return Client(server, context, headers)


def admin(aws) -> Client:
    """The cluster's admin client (deploy/kubeconfig.py's errors pass through: DeployError, NotPublished)."""
    doc, _ = kubeconfig.fetch(aws)
    return from_kubeconfig(doc)
