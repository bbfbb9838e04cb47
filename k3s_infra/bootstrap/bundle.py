"""The server bundle: what a server's boot needs beyond its user data.

EC2 takes at most 16 KB of user data. Besides the node script's core (boot_lib.sh,
boot.sh: in the user data, so every failure still signals), a server needs the first
server's logic (first_server.sh, first server only), its watch (watch.sh) and the
cluster's own manifests (the AWS cloud controller, the pod identity webhook). They travel as
one gzip-compressed tar, base64-encoded, as the value of an SSM parameter of the server's node
stack (``naming.node_bundle_parameter``; Intelligent-Tiering, so up to the Advanced tier's
8 KB). The user data pins the bundle's SHA-256 and the boot checks it before it extracts
anything (boot.sh install_bundle): the parameter can only deliver exactly what this launch
template was rendered with. Nothing in it comes from the user's add-on values.

The enabled add-ons' manifests (the user's chart values) are in neither the user data nor any
template: the deployer puts them in the artifact bucket as one SSE-KMS object
(``addons_object``, deploy/package.py), the server roles alone may read that key
(components/iam.py), and the bundle pins its key and SHA-256 (addons.sh install_addons).
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass

from k3s_infra.bootstrap import k3s_config, script
from k3s_infra.config import Environment, defaults
from k3s_infra.model import addons, limits, naming, pod_identity, workload_identity
from k3s_infra.model.roles import ROLES, Role

# Where a server keeps the bundle's scripts: the boot sources them, and so does the watch.
BUNDLE_DIR = "/usr/local/lib/k3s-infra"
K3S_SERVER_DIR = "/var/lib/rancher/k3s/server"
MANIFESTS_DIR = f"{K3S_SERVER_DIR}/manifests"
CCM_MANIFEST = f"{MANIFESTS_DIR}/k3s-infra-aws-cloud-controller-manager.yaml"
ADDONS_MANIFEST = f"{MANIFESTS_DIR}/k3s-infra-addons.yaml"
WEBHOOK_MANIFEST = f"{MANIFESTS_DIR}/k3s-infra-pod-identity-webhook.yaml"
# The MutatingWebhookConfiguration with a placeholder for its CA: the first server fills it
# in and applies it (first_server.sh webhook_tls); never in the manifests folder.
WEBHOOK_CONFIGURATION = f"{BUNDLE_DIR}/pod-identity-webhook-configuration.yaml"
# Settings only the bundle's parts read (sourced before them): constants, so they cost the
# size-limited user data nothing.
BUNDLE_ENV = f"{BUNDLE_DIR}/bundle.env"
# An SSM parameter value: 4 KB in the Standard tier, 8 KB in the Advanced tier
# (https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html).
MAX_PARAMETER_BYTES = 8 * 1024
# The value is cut into at most this many parameters, read and joined in order by the boot.
MAX_PARTS = 3


def parts(role: Role) -> tuple[str, ...]:
    """The script parts a role's bundle carries (agents have none)."""
    if not role.is_server:
        return ()
    return ("addons.sh", "first_server.sh", "watch.sh") if role.initialises else ("addons.sh", "watch.sh")


@dataclass(frozen=True)
class AddonsObject:
    """The enabled add-ons' manifests as the deployer uploads them."""
    bucket: str
    key: str
    body: str
    sha256: str


_last_addons: list[tuple[Environment, AddonsObject | None]] = []


def addons_object(env: Environment) -> AddonsObject | None:
    """None when no add-on is on. Content-addressed (naming.addons_key): a changed value is a new
    key, so a server never reads manifests its launch template was not rendered with."""
    if _last_addons and _last_addons[0][0] is env:
        return _last_addons[0][1]
    body = addons.bundle(env)
    found = None
    if body:
        digest = hashlib.sha256(body.encode()).hexdigest()
        found = AddonsObject(env.artifact_bucket, naming.addons_key(env, digest), body, digest)
    _last_addons[:] = [(env, found)]
    return found


# The last environment's files per role: one render asks for a role's bundle (its value, parts,
# names, digest) from several stacks, and the manifests are the costly part. Keyed by the
# environment object itself (held here), never by an id that a new object could reuse.
_last_files: dict[str, tuple[Environment, dict[str, str]]] = {}


def files(env: Environment, role: Role) -> dict[str, str]:
    """Path on the node -> text, for a server; empty for an agent."""
    if not role.is_server:
        return {}
    cached = _last_files.get(role.name)
    if cached is not None and cached[0] is env:
        return dict(cached[1])
    found = _files(env, role)
    _last_files[role.name] = (env, found)
    return dict(found)


def _files(env: Environment, role: Role) -> dict[str, str]:
    found = {f"{BUNDLE_DIR}/{part}": script.part(part) for part in parts(role)}
    found[BUNDLE_ENV] = k3s_config.env_file(settings(env, role))
    found[CCM_MANIFEST] = k3s_config.dump(k3s_config.cloud_controller_manifest(env))
    found[WEBHOOK_MANIFEST] = pod_identity.manifest(env)
    if role.initialises:
        found[WEBHOOK_CONFIGURATION] = pod_identity.configuration_template()
    return found


def settings(env: Environment, role: Role) -> dict[str, str]:
    """What the watch (every server) and the first server's logic read besides boot.env."""
    found = {
        # The watch finds the server groups by their tags and acts on the snapshot hook.
        "CLUSTER_NAME": naming.cluster_name(env), "CLUSTER_TAG": naming.CLUSTER_TAG, "ROLE_TAG": naming.ROLE_TAG,
        "SERVER_ROLES": ",".join(r.name for r in ROLES if r.is_server),
        "WATCH_INTERVAL": str(defaults.WATCH_INTERVAL_SECONDS), "UNHEALTHY_AFTER": str(defaults.UNHEALTHY_AFTER_SECONDS),
        "SNAPSHOT_HOOK": defaults.SNAPSHOT_HOOK, "SNAPSHOT_TIMEOUT": str(defaults.SNAPSHOT_TIMEOUT_SECONDS)}
    charts = addons_object(env)
    if charts:  # addons.sh install_addons
        found |= {"ADDONS_BUCKET": charts.bucket, "ADDONS_KEY": charts.key, "ADDONS_SHA256": charts.sha256,
                  "ADDONS_MANIFEST": ADDONS_MANIFEST}
    if role.initialises:
        found |= {
            "PRE_TERMINATION_SNAPSHOT": defaults.PRE_TERMINATION_SNAPSHOT,
            "REQUEST_LIFETIME": str(defaults.PRE_TERMINATION_REQUEST_SECONDS),
            # The OIDC issuer's documents below ISSUER_URL (first_server.sh publish_issuer).
            "DISCOVERY_KEY": pod_identity.DISCOVERY_KEY, "JWKS_KEY": pod_identity.JWKS_KEY,
            # accept: the API still signs as K3s, so there is nothing of the issuer to publish.
            "ISSUER_SIGNS": str(env.k3s.service_account_issuer == "sign").lower(),
            # The pod identity webhook's serving certificate (first_server.sh webhook_tls).
            "WEBHOOK_NAMESPACE": pod_identity.NAMESPACE, "WEBHOOK_TLS": pod_identity.TLS_SECRET,
            "WEBHOOK_HOST": pod_identity.SERVICE_HOST, "WEBHOOK_CONFIGURATION": WEBHOOK_CONFIGURATION,
            "WEBHOOK_CA_PLACEHOLDER": pod_identity.CA_PLACEHOLDER, "WEBHOOK_DEPLOYMENT": pod_identity.NAME}
        controllers = [identity.service_account for identity in workload_identity.identities(env)
                       if identity.addon]
        if controllers:
            # Controllers whose pods need their role (namespace/service account): a pod made
            # before the webhook served is made again (watch.sh).
            found["POD_ROLE_ACCOUNTS"] = " ".join(controllers)
    return found


@functools.lru_cache(maxsize=8)  # each server stack's value and its pinned digest
def _archive(entries: tuple[tuple[str, str], ...]) -> bytes:
    """A tar of root-only files (paths relative to /), gzip-compressed; the same entries give
    the same bytes (no times, owners or names of this machine)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, text in entries:
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o600, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def archive(env: Environment, role: Role) -> bytes:
    return _archive(tuple(sorted(files(env, role).items())))


def value(env: Environment, role: Role) -> str:
    """The archive, base64-encoded; refused beyond MAX_PARTS parameters."""
    text = base64.b64encode(archive(env, role)).decode()
    if len(text) > MAX_PARTS * MAX_PARAMETER_BYTES:
        raise limits.LimitError(f"environment {env.name}", [(
            "servers", f"the {role.name} bundle (scripts and manifests) would be {len(text):,} bytes; "
                      f"{MAX_PARTS} SSM parameters hold at most {MAX_PARTS * MAX_PARAMETER_BYTES:,}")])
    return text


def chunks(env: Environment, role: Role) -> list[str]:
    """The value cut into parameter-sized pieces: joined in order they are the value again."""
    text = value(env, role)
    return [text[start:start + MAX_PARAMETER_BYTES] for start in range(0, len(text), MAX_PARAMETER_BYTES)]


def parameter_names(env: Environment, role: Role) -> list[str]:
    """One SSM parameter per chunk; the first keeps the name of a one-part bundle."""
    base = naming.node_bundle_parameter(env, role.name)
    return [base if index == 0 else f"{base}-{index + 1}" for index in range(len(chunks(env, role)))]


def sha256(env: Environment, role: Role) -> str:
    return hashlib.sha256(archive(env, role)).hexdigest()


def unpack(text: str) -> dict[str, str]:
    """Path on the node -> text of a bundle value (what install_bundle extracts)."""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(base64.b64decode(text)))) as tar:
        return {"/" + member.name: tar.extractfile(member).read().decode() for member in tar.getmembers()}
