"""The small Kubernetes API client of the upgrade pre-flight (deploy/kubeapi.py) against a local
HTTPS server that, like kube-apiserver, serves a certificate of the cluster's CA and asks for a client
certificate of that CA (K3s's admin kubeconfig carries certificate-authority-data, client-certificate-data
and client-key-data: https://docs.k3s.io/cluster-access). The certificates are made for the test."""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import os
import socket
import ssl
import stat
import tempfile
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from k3s_infra.deploy import kubeapi
from k3s_infra.deploy.kubeapi import KubeApiError, from_kubeconfig, get_json

NOW = datetime.datetime.now(datetime.timezone.utc)


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certificate(subject: str, key, issuer=None, issuer_key=None, *, ca: bool = False, san=None, org=None):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject),
                      *([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else [])])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - datetime.timedelta(minutes=5)).not_valid_after(NOW + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki():
    """A cluster CA (as K3s's k3s-server-ca / k3s-client-ca, one here), the API's serving certificate
    for 127.0.0.1 and the admin's client certificate (CN system:admin, O system:masters), and a stranger CA."""
    ca_key, server_key, client_key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    ca = _certificate("k3s-server-ca@1796385600", ca_key, ca=True)
    server = _certificate("kube-apiserver", server_key, ca, ca_key,
                          san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client = _certificate("system:admin", client_key, ca, ca_key, org="system:masters")
    return {"ca": _pem(ca), "server": _pem(server), "server_key": _pem(server_key), "client": _pem(client),
            "client_key": _pem(client_key), "other_ca": _pem(_certificate("another-ca", other_key, ca=True))}


@pytest.fixture(scope="module")
def api_server(pki, tmp_path_factory):
    """/readyz?verbose 200, /fail 500 (as readyz answers when a check fails), /api/v1/nodes a NodeList;
    each request's client certificate subject and Authorization header kept in ``seen``."""
    folder = tmp_path_factory.mktemp("apiserver")
    for name in ("ca", "server", "server_key"):
        (folder / name).write_bytes(pki[name])
    seen: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            peer = self.connection.getpeercert() or {}
            seen.append({"path": self.path, "subject": dict(x[0] for x in peer.get("subject", ())),
                         "authorization": self.headers.get("Authorization")})
            status, body = {"/readyz?verbose": (200, "[+]ping ok\n[+]etcd ok\nreadyz check passed\n"),
                            "/fail": (500, "[-]etcd failed: reason withheld\nreadyz check failed\n"),
                            "/api/v1/nodes": (200, '{"kind":"NodeList","items":[]}')}.get(self.path, (404, "{}"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def do_PATCH(self):
            peer = self.connection.getpeercert() or {}
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            seen.append({"method": "PATCH", "path": self.path, "content_type": self.headers.get("Content-Type"),
                         "body": body, "subject": dict(x[0] for x in peer.get("subject", ()))})
            self.send_response(201)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server", folder / "server_key")
    context.load_verify_locations(folder / "ca")
    context.verify_mode = ssl.CERT_OPTIONAL  # a token user brings no certificate
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()


def kubeconfig(server: str, ca: bytes | None, user: dict) -> dict:
    """As the first server publishes it (names normalised by deploy/kubeconfig.py)."""
    cluster = {"server": server, **({"certificate-authority-data": base64.b64encode(ca).decode()} if ca else {})}
    return {"apiVersion": "v1", "kind": "Config", "current-context": "k3s-dev",
            "clusters": [{"name": "k3s-dev", "cluster": cluster}],
            "users": [{"name": "k3s-dev", "user": user}],
            "contexts": [{"name": "k3s-dev", "context": {"cluster": "k3s-dev", "user": "k3s-dev"}}]}


def admin(pki) -> dict:
    return {"client-certificate-data": base64.b64encode(pki["client"]).decode(),
            "client-key-data": base64.b64encode(pki["client_key"]).decode()}


def test_the_admin_certificate_is_presented_and_the_cluster_ca_trusted(pki, api_server, tmp_path, monkeypatch):
    url, seen = api_server
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    client = from_kubeconfig(kubeconfig(url, pki["ca"], admin(pki)))
    assert os.listdir(tmp_path) == []  # the key's file was removed once loaded
    assert client.get("/readyz?verbose") == (200, "[+]ping ok\n[+]etcd ok\nreadyz check passed\n")
    assert seen[-1]["subject"] == {"commonName": "system:admin", "organizationName": "system:masters"}
    assert client.get("/fail")[0] == 500  # a failing readyz is an answer, with its checks
    assert get_json(client, "/api/v1/nodes") == {"kind": "NodeList", "items": []}
    with pytest.raises(KubeApiError, match="HTTP 404"):
        get_json(client, "/api/v1/namespaces/x")


def test_a_bearer_token_user(pki, api_server):
    url, seen = api_server
    client = from_kubeconfig(kubeconfig(url, pki["ca"], {"token": "K10abc::server:0123456789abcdef"}))
    assert client.get("/readyz?verbose")[0] == 200
    assert seen[-1]["authorization"] == "Bearer K10abc::server:0123456789abcdef"


def test_a_server_certificate_of_another_ca_is_refused(pki, api_server):
    url, _ = api_server
    client = from_kubeconfig(kubeconfig(url, pki["other_ca"], admin(pki)))
    with pytest.raises(KubeApiError, match="CERTIFICATE_VERIFY_FAILED"):
        client.get("/readyz?verbose")


@pytest.mark.parametrize("change, says", [
    ({"server": "http://127.0.0.1:6443"}, "not an https:// URL"),
    ({"insecure-skip-tls-verify": True}, "turns TLS verification off"),
    ({"certificate-authority-data": "not base64!"}, "not base64"),
    ({"certificate-authority-data": base64.b64encode(b"stand-in: no K3s ran").decode()}, "is no certificate"),
])
def test_a_kubeconfig_that_cannot_be_trusted_is_refused(pki, change, says):
    doc = kubeconfig("https://127.0.0.1:6443", pki["ca"], admin(pki))
    doc["clusters"][0]["cluster"].update(change)
    with pytest.raises(KubeApiError, match=says):
        from_kubeconfig(doc)


def test_a_user_without_credentials_is_refused(pki):
    with pytest.raises(KubeApiError, match="neither a client certificate nor a token"):
        from_kubeconfig(kubeconfig("https://127.0.0.1:6443", pki["ca"], {}))


def test_an_api_nobody_answers_is_an_error_not_a_hang(pki):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = from_kubeconfig(kubeconfig(f"https://127.0.0.1:{port}", pki["ca"], admin(pki)))
    with pytest.raises(KubeApiError, match=f"cannot reach the Kubernetes API at https://127.0.0.1:{port}"):
        client.get("/readyz?verbose")


def test_the_client_key_is_written_readable_by_this_user_only_while_ssl_loads_it(pki, monkeypatch):
    """ssl reads a client certificate only from files (SSLContext.load_cert_chain): the key's
    file is 0600 while it exists (secure by default: no other local user reads the admin key)."""
    modes = []
    load = ssl.SSLContext.load_cert_chain

    def recording(self, certfile, keyfile=None, password=None):
        modes.extend(stat.S_IMODE(os.stat(path).st_mode) for path in (certfile, keyfile))
        return load(self, certfile, keyfile, password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", recording)
    from_kubeconfig(kubeconfig("https://127.0.0.1:6443", pki["ca"], admin(pki)))
    assert modes == [0o600, 0o600]


def test_the_current_context_names_the_cluster_and_user_not_the_first_listed(pki, api_server):
    """A kubeconfig may hold several clusters, users and contexts; current-context picks one
    (https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/)."""
    url, seen = api_server
    doc = kubeconfig(url, pki["ca"], {"token": "K10abc::server:0123456789abcdef"})
    doc["clusters"].insert(0, {"name": "old", "cluster": {"server": "https://old.invalid:6443"}})
    doc["users"].insert(0, {"name": "old", "user": {"token": "old-token"}})
    doc["contexts"].insert(0, {"name": "old", "context": {"cluster": "old", "user": "old"}})
    client = from_kubeconfig(doc)
    assert client.server == url
    assert client.get("/readyz?verbose")[0] == 200
    assert seen[-1]["authorization"] == "Bearer K10abc::server:0123456789abcdef"


def test_half_a_client_certificate_is_no_credential(pki):
    """A certificate without its key (or a key without its certificate) cannot authenticate."""
    certificate_only = {"client-certificate-data": admin(pki)["client-certificate-data"]}
    with pytest.raises(KubeApiError, match="neither a client certificate nor a token"):
        from_kubeconfig(kubeconfig("https://127.0.0.1:6443", pki["ca"], certificate_only))
    with_token = {**certificate_only, "token": "K10abc::server:0123456789abcdef"}
    client = from_kubeconfig(kubeconfig("https://127.0.0.1:6443", pki["ca"], with_token))
    assert client.headers["Authorization"] == "Bearer K10abc::server:0123456789abcdef"


def test_admin_is_a_client_of_the_kubeconfig_the_first_server_published(pki, monkeypatch):
    """deploy/kubeconfig.py fetch (its own tests: test_kubeconfig.py) gives the document."""
    doc = kubeconfig("https://k3s-dev-api.example:6443", pki["ca"], admin(pki))
    monkeypatch.setattr(kubeapi.kubeconfig, "fetch", lambda aws: (doc, "arn:aws:secretsmanager:secret"))
    client = kubeapi.admin(object())
    assert client.server == "https://k3s-dev-api.example:6443" and client.timeout == kubeapi.TIMEOUT


def test_the_drill_markers_server_side_apply_is_a_patch_with_its_field_manager(pki, api_server):
    """Server-side apply: PATCH, Content-Type application/apply-patch+yaml, fieldManager required,
    force to take over fields (https://kubernetes.io/docs/reference/using-api/server-side-apply/),
    through the same client (and admin certificate) as the reads."""
    from k3s_infra.deploy.drill_api import Writer

    url, seen = api_server
    writer = Writer(from_kubeconfig(kubeconfig(url, pki["ca"], admin(pki))))
    assert writer.apply("/api/v1/namespaces/kube-system/configmaps/m", {"kind": "ConfigMap"}) == (201, "{}")
    assert seen[-1] == {"method": "PATCH", "path": "/api/v1/namespaces/kube-system/configmaps/m?"
                                                   "fieldManager=k3s-infra-drill&force=true",
                        "content_type": "application/apply-patch+yaml", "body": '{"kind": "ConfigMap"}',
                        "subject": {"commonName": "system:admin", "organizationName": "system:masters"}}
