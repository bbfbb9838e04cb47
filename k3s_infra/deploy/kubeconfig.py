"""The admin kubeconfig from its secret: names normalised to the cluster's name, written
as its own file (mode 0600, never over an existing one without ``force``) or merged into
the user's kubeconfig the way ``aws eks update-kubeconfig`` and ``k3d kubeconfig merge``
do: other entries kept, same-name entries replaced, a backup of the file kept, the
current context changed only when asked.

kubectl merges the files of ``$KUBECONFIG`` and creates new entries "in the first file that
exists"; without the variable it uses ``${HOME}/.kube/config``
(https://kubernetes.io/docs/reference/kubectl/generated/kubectl_config/, loading order).
We write to the first listed path (created if missing), as the task asks."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from botocore.exceptions import ClientError

from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.render.safe_output import write_file
from k3s_infra.deploy import DeployError, changeset

KINDS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


class NotPublished(Exception):
    """The kubeconfig secret still holds its generated placeholder."""


@dataclass(frozen=True)
class Written:
    """What ``kubeconfig`` wrote."""
    stack_name: str
    target: Path
    context: str                # the cluster's name: its cluster, user and context
    servers: tuple[str, ...]    # API server URLs
    merged: bool                # added to an existing kubeconfig (else a file of its own)
    backup: Path | None = None  # the copy of the merged-into file made first
    current_context_set: bool = False  # after the merge, the cluster's context is the current one


def _is_kubeconfig(text: str) -> dict | None:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if isinstance(doc, dict) and doc.get("apiVersion") and isinstance(doc.get("clusters"), list):
        return doc
    return None


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the first byte (temp file + rename, fsync)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, text, mode=0o600, durable=True)


def normalise(doc: dict, name: str) -> dict:
    """Cluster, user and context named ``name`` whatever the node published (K3s writes
    ``default`` for all three); a second entry of a kind becomes ``name-<its old name>``."""
    renamed: dict[str, dict[str, str]] = {}
    for kind, _ in KINDS:
        entries = [e for e in doc.get(kind) or [] if isinstance(e, dict)]
        renamed[kind] = {e.get("name"): name if i == 0 else f"{name}-{e.get('name')}" for i, e in enumerate(entries)}
        for entry in entries:
            entry["name"] = renamed[kind][entry.get("name")]
    for context in doc.get("contexts") or []:
        inner = context.get("context") or {}
        if inner.get("cluster") in renamed["clusters"]:
            inner["cluster"] = renamed["clusters"][inner["cluster"]]
        if inner.get("user") in renamed["users"]:
            inner["user"] = renamed["users"][inner["user"]]
    if doc.get("current-context") in renamed["contexts"] or renamed["contexts"]:
        doc["current-context"] = renamed["contexts"].get(doc.get("current-context"), name)
    return doc


def merge(existing: dict, new: dict, *, set_context: bool) -> dict:
    """``new``'s entries into ``existing``: same names replaced, others kept in place."""
    merged = dict(existing)
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    for kind, _ in KINDS:
        incoming = {e["name"]: e for e in new.get(kind) or []}
        kept = [e for e in existing.get(kind) or [] if not (isinstance(e, dict) and e.get("name") in incoming)]
        merged[kind] = kept + list(incoming.values())
    if set_context or not existing.get("current-context"):
        merged["current-context"] = new.get("current-context")
    return merged


def default_target() -> Path:
    """The file kubectl writes to: the first path of $KUBECONFIG, else ~/.kube/config."""
    first = next((p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p), None)
    return Path(first).expanduser() if first else Path.home() / ".kube" / "config"


def fetch(aws) -> tuple[dict, str]:
    """The published kubeconfig (parsed) and its secret's ARN."""
    env = aws.env
    cfn = aws.cloudformation
    if changeset.stack_state(cfn, env.stack_name) is None:
        raise DeployError(f"{env.stack_name} is not deployed")
    stack = cfn.describe_stacks(StackName=env.stack_name)["Stacks"][0]
    arn = {i["OutputKey"]: i["OutputValue"] for i in stack.get("Outputs", [])}.get(o.KUBECONFIG_SECRET)
    if not arn:
        raise DeployError(f"{env.stack_name} has no {o.KUBECONFIG_SECRET} output yet")
    try:
        text = aws.secretsmanager.get_secret_value(SecretId=arn).get("SecretString") or ""
    except ClientError as exc:
        raise DeployError(f"cannot read the kubeconfig secret {arn}: "
                          f"{exc.response.get('Error', {}).get('Code', 'error')}") from None
    doc = _is_kubeconfig(text)
    if doc is None:
        raise NotPublished(f"the cluster has not published its kubeconfig yet ({arn} still holds its "
                           f"placeholder); the first server stores it once K3s is ready, try again later")
    return doc, arn


def kubeconfig(aws, path: Path | None, *, merge_into: bool = False, force: bool = False,
               set_context: bool = False) -> Written:
    """Write the admin kubeconfig to ``path`` (default: ./<env>.kubeconfig; merging: kubectl's
    file), or merge it into that file. FileExistsError: an own file exists and not ``force``."""
    env = aws.env
    name = naming.cluster_name(env)
    target = (Path(path) if path else default_target() if merge_into else Path(f"{env.name}.kubeconfig")).absolute()
    if not merge_into and target.exists() and not force:
        raise FileExistsError(f"{target} exists; pass --force to replace it, or --merge to add the cluster to it")
    aws.check_account()
    doc, _ = fetch(aws)
    doc = normalise(doc, name)
    servers = tuple(c.get("cluster", {}).get("server", "?") for c in doc["clusters"] if isinstance(c, dict))
    if not merge_into:
        write_private(target, yaml.safe_dump(doc, sort_keys=False))
        return Written(env.stack_name, target, name, servers, merged=False)
    existing = yaml.safe_load(target.read_text(encoding="utf-8")) if target.exists() else None
    if existing is not None and not isinstance(existing, dict):
        raise DeployError(f"{target} is not a kubeconfig (not a mapping); nothing written")
    backup = None
    if target.exists():
        backup = target.with_name(f"{target.name}.bak-{time.strftime('%Y%m%d%H%M%S')}")
        shutil.copy2(target, backup)
        os.chmod(backup, 0o600)
    merged = merge(existing or {}, doc, set_context=set_context)
    write_private(target, yaml.safe_dump(merged, sort_keys=False))
    # what the file says now: one without a current context (a new file) gets the cluster's, asked or not
    current = merged.get("current-context") == name
    return Written(env.stack_name, target, name, servers, merged=True, backup=backup, current_context_set=current)
