"""What a restore drill (deploy/drill.py) asks of a Kubernetes API: in the restored cluster, the
drill's nodes Ready and the marker ConfigMap; with ``--fresh``, on the cluster's side, the one
write, the marker itself (through the admin kubeconfig: deploy/kubeapi.py).

The restored cluster is read on one of the drill's servers through AWS Systems Manager Run Command
(deploy/node_access.py run_shell), not through its API endpoint: the drill's load balancer is
internal, and where the drill runs (a laptop, a CI runner) usually has no route into the VPC. The
server runs K3s's own kubectl, which reads /etc/rancher/k3s/k3s.yaml
(https://docs.k3s.io/cli: "k3s kubectl"), and prints little (GetCommandInvocation returns at most
24,000 characters of output): ``nodes N`` (every Node), one ``<name> <Ready status>`` line per
drill server, then ``marker`` and the ConfigMap as JSON (nothing when it does not exist:
``--ignore-not-found`` prints nothing for a missing object, kubernetes/kubectl
pkg/cmd/get/get.go printGeneric), then ``end``, which shows nothing was cut.

The marker, ``kube-system/k3s-infra-drill-marker`` (naming.DRILL_MARKER_*), holds ``written-at``
(ISO 8601, UTC) and the cluster's stack name. Written before a snapshot, found in the restored
cluster, it proves the restore brought back data at least that new."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone

from k3s_infra.bootstrap.k3s_config import K3S_BINARY
from k3s_infra.deploy import DeployError, changeset, node_access
from k3s_infra.deploy.kubeapi import Client, KubeApiError
from k3s_infra.model import naming

MARKER_PATH = f"/api/v1/namespaces/{naming.DRILL_MARKER_NAMESPACE}/configmaps/{naming.DRILL_MARKER_NAME}"
WRITTEN_AT = "written-at"
CLUSTER = "cluster"
FIELD_MANAGER = "k3s-infra-drill"
LOOK_TIMEOUT = 120.0  # seconds one look may take: the command's delivery and its script
# kubectl waits without end for an API server that accepts and does not answer (default 0).
REQUEST_TIMEOUT = "--request-timeout=20s"
# The Ready condition's status, one line per Node (https://kubernetes.io/docs/reference/kubectl/jsonpath/).
NODES_JSONPATH = '{range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'


@dataclass(frozen=True)
class Marker:
    written_at: datetime
    cluster: str | None


class Writer:
    """kubeapi.Client and the one write the drill makes (``--fresh``): a server-side apply, which
    creates the object or replaces the fields this manager owns in one request (PATCH with
    Content-Type application/apply-patch+yaml, ``fieldManager`` required, ``force`` takes over
    fields another manager set: https://kubernetes.io/docs/reference/using-api/server-side-apply/)."""

    def __init__(self, client: Client):
        self.client = client
        self.server = client.server

    def apply(self, path: str, document: dict) -> tuple[int, str]:
        query = urllib.parse.urlencode({"fieldManager": FIELD_MANAGER, "force": "true"})
        return self.client.request("PATCH", f"{path}?{query}", json.dumps(document).encode(),
                                   {"Content-Type": "application/apply-patch+yaml"})


def marker_document(cluster: str, written_at: datetime) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": naming.DRILL_MARKER_NAME, "namespace": naming.DRILL_MARKER_NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "k3s-infra"}},
            "data": {WRITTEN_AT: written_at.astimezone(timezone.utc).isoformat(timespec="seconds"),
                     CLUSTER: cluster}}


def write_marker(api: Writer, cluster: str, now: datetime) -> Marker:
    status, body = api.apply(MARKER_PATH, marker_document(cluster, now))
    if status not in (200, 201):
        raise KubeApiError(f"writing the drill marker {MARKER_PATH} on {api.server}: HTTP {status}: "
                           f"{body[:200].strip()}")
    return Marker(now.astimezone(timezone.utc).replace(microsecond=0), cluster)


class MarkerUnreadable(DeployError):
    """The ConfigMap is there but holds no marker: no waiting mends that (``look`` lets it through)."""


def marker_of(body: str) -> Marker | None:
    """The marker in a ConfigMap's JSON, None for no ConfigMap (empty)."""
    if not body.strip():
        return None
    try:
        data = json.loads(body).get("data") or {}
        written = datetime.fromisoformat(data[WRITTEN_AT])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise MarkerUnreadable(f"{MARKER_PATH} holds no {WRITTEN_AT} time (ISO 8601)") from None
    if written.tzinfo is None:
        written = written.replace(tzinfo=timezone.utc)
    return Marker(written, data.get(CLUSTER))


@dataclass(frozen=True)
class ApiCheck:
    """One look at the restored cluster's API."""
    ready: tuple[str, ...] = ()     # the drill's servers whose Node is Ready
    missing: tuple[str, ...] = ()   # the drill's servers without a Ready Node (yet)
    others: int = 0                 # Nodes of other names: the cluster's, restored from the snapshot
    marker: Marker | None = None
    marker_found: bool = False      # False with error: not asked yet
    error: str | None = None        # the API did not answer (or not as expected)

    @property
    def nodes_ready(self) -> bool:
        return self.error is None and not self.missing and bool(self.ready)


def read_script(expected: tuple[str, ...]) -> list[str]:
    """The commands (one AWS-RunShellScript script) that print what ``parse`` reads."""
    bad = [name for name in expected if not node_access.INSTANCE_ID.fullmatch(name)]
    if bad or not expected:  # the names go into a grep pattern: instance IDs only
        raise DeployError(f"no drill servers to look for ({', '.join(bad) or 'none in service'})")
    kubectl = f"{K3S_BINARY} kubectl {REQUEST_TIMEOUT}"
    return ["set -eu",
            f"nodes=$({kubectl} get nodes -o jsonpath='{NODES_JSONPATH}')",
            'echo "nodes $(printf \'%s\\n\' "$nodes" | grep -c . || true)"',
            f"printf '%s\\n' \"$nodes\" | grep -E '^({'|'.join(expected)}) ' || true",
            "echo marker",
            f"{kubectl} get configmap {naming.DRILL_MARKER_NAME} -n {naming.DRILL_MARKER_NAMESPACE} "
            f"--ignore-not-found -o json",
            "echo end"]


def parse(stdout: str, expected: tuple[str, ...]) -> ApiCheck:
    """What ``read_script`` printed, as an ApiCheck; DeployError when it is not that."""
    lines = stdout.rstrip("\n").split("\n")
    if lines[-1:] != ["end"] or "marker" not in lines or not lines[0].startswith("nodes "):
        cut = " (cut at 24,000 characters)" if len(stdout) >= node_access.STDOUT_MAX else ""
        raise DeployError(f"the drill server's answer is not the script's{cut}: {stdout[:200].strip()!r}")
    at = lines.index("marker")
    try:
        total = int(lines[0].split()[1])
        status = dict(line.split(" ", 1) for line in lines[1:at])
    except (ValueError, IndexError):
        raise DeployError(f"the drill server's node lines are not '<name> <status>': {lines[:at]!r}") from None
    ready = tuple(e for e in expected if status.get(e) == "True")
    return ApiCheck(ready, tuple(e for e in expected if e not in ready), max(0, total - len(status)),
                    marker_of("\n".join(lines[at + 1:-1])), True)


def look(drill, *, timeout: float, poll: float) -> ApiCheck:
    """The restored cluster as one of the drill's servers reads it now: its servers in service
    (their instance IDs, which K3s takes as node names: boot.sh), the first whose SSM Agent is
    online runs ``read_script``. Whatever keeps it from answering yet (no server online, the API
    not up, the command undelivered) is the check's ``error``."""
    root = changeset.stack_state(drill.cloudformation, drill.env.stack_name)
    servers = node_access.in_service(drill, root["StackId"], node_access.SERVER_STACKS) if root else []
    expected = tuple(sorted(n.instance_id for n in servers))
    try:
        server = node_access.pick_online(drill, servers, "server")
        shell = node_access.run_shell(drill, server.instance_id, read_script(expected), timeout=timeout,
                                      poll=poll, comment="k3s-infra drill: read the restored cluster")
        if shell.status != "Success":
            said = (shell.stderr or shell.stdout).strip()[-300:]
            raise DeployError(f"kubectl on {server.instance_id} ended {shell.details}"
                              + (f" (exit {shell.code})" if shell.code is not None else "")
                              + (f": {said}" if said else ""))
        return parse(shell.stdout, expected)
    except MarkerUnreadable:
        raise
    except DeployError as exc:  # not yet: an AWS refusal (a ClientError) is no waiting matter and ends the drill
        return ApiCheck(missing=expected, error=str(exc))
