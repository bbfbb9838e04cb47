"""The pre-flight of a K3s upgrade (``k3s-infra upgrade --to VERSION``; ``plan`` after an edit of
k3s.version through ``for_plan``): findings that refuse, warn or pass, each naming its source.
Never prints; the CLI shows the findings and decides (cli/upgrade.py).

Rules (``RULES``): the version skew (one minor at a time, no downgrade), the release (in the K3s
release data k3s-infra pins, model/k3s_releases.py), the add-on charts for the target's minor, etcd
(healthy, every member in), a recent snapshot, and APIs the target removes that are still in use.
What they read: the stacks (AWS) and the cluster's API through the admin kubeconfig
(deploy/upgrade_reads.py); each rule is a function of that data, tested on its own."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from botocore.exceptions import BotoCoreError, ClientError

from k3s_infra.config import Environment, catalog, rules
from k3s_infra.config.addons import enabled
from k3s_infra.deploy import DeployError, changeset, kubeapi, snapshots, stack_states, upgrade_reads
from k3s_infra.deploy.kubeapi import KubeApi, KubeApiError
from k3s_infra.deploy.kubeconfig import NotPublished
from k3s_infra.model import k3s_releases

Verdict = Literal["refuse", "warn", "ok"]
SKEW_POLICY = "https://kubernetes.io/releases/version-skew-policy/"
K3S_UPGRADES = "https://docs.k3s.io/upgrades/manual"
K3S_ROLL_BACK = "https://docs.k3s.io/upgrades/roll-back"
AUTOSCALER_RELEASES = "https://github.com/kubernetes/autoscaler/tree/master/cluster-autoscaler#releases"
HELM_KUBE_VERSION = "https://helm.sh/docs/topics/charts/#the-kubeversion-field"
# rule -> where it comes from
RULES: dict[str, str] = {
    # "Ensure that your plan does not skip intermediate minor versions when upgrading" (K3s);
    # HA kube-apiservers "must be within one minor version" of each other (Kubernetes).
    "version-skew": f"{SKEW_POLICY} ; {K3S_UPGRADES}",
    "release-channel": f"{k3s_releases.CHANNELS_URL} ; {k3s_releases.RELEASES_URL}",
    # The autoscaler supports only its own minor (kubernetes/autoscaler README, "Releases"); a
    # chart's Chart.yaml kubeVersion makes Helm refuse it (config/catalog.py); cloud-controller-manager
    # "may be up to one minor version older" than kube-apiserver, never newer (skew policy).
    "addon-charts": f"{AUTOSCALER_RELEASES} ; {HELM_KUBE_VERSION} ; {SKEW_POLICY}",
    # readyz fails its etcd checks while the API server cannot use etcd ("waiting for etcd to be
    # available", health-checks page); a roll takes one member away at a time, so every member must be
    # in first or etcd's failure tolerance is spent before it starts (etcd FAQ).
    "etcd-health": "https://kubernetes.io/docs/reference/using-api/health-checks/ ; "
                   "https://etcd.io/docs/v3.5/faq/#what-is-failure-tolerance",
    # "Before upgrading, ensure you have a valid database or etcd snapshot ... Without a backup, a
    # rollback is impossible" (K3s, "Rolling Back K3s").
    "snapshot-age": K3S_ROLL_BACK,
    "removed-apis": "https://kubernetes.io/blog/2020/09/03/warnings/#metrics ; "
                    "https://kubernetes.io/docs/reference/using-api/deprecation-guide/",
}
# A K3s release as config/types.py K3sVersion spells it: v<major>.<minor>.<patch>+k3s<revision>.
VERSION = re.compile(r"^v(1)\.([0-9]{2,})\.([0-9]+)\+k3s([0-9]+)$")
DEFAULT_SNAPSHOT_MINUTES = 60
# K3s labels each embedded-etcd server so (kubectl get nodes: ROLES control-plane,etcd;
# docs.k3s.io/datastore/ha-embedded)
ETCD_ROLE = "node-role.kubernetes.io/etcd"
SNAPSHOT_HINT = ("take one first: 'sudo k3s etcd-snapshot save' on a server uploads it to the bucket with the "
                 "server's etcd-s3 settings ('k3s-infra snapshots create' once it exists), or wait for "
                 "k3s.etcd_snapshots.schedule; 'k3s-infra snapshots' lists them")


@dataclass(frozen=True)
class Finding:
    rule: str
    verdict: Verdict
    message: str
    source: str


@dataclass(frozen=True)
class Running:
    """A version running now and where it was read: the binary the stack pins, or a node."""
    where: str
    version: str


@dataclass(frozen=True)
class Preflight:
    target: str
    running: tuple[Running, ...]
    findings: tuple[Finding, ...] = ()

    @property
    def up_to_date(self) -> bool:
        """Every version read is the target already: nothing to upgrade."""
        return bool(self.running) and all(r.version == self.target for r in self.running)

    def blocking(self, skip: frozenset[str] | set[str] = frozenset()) -> list[Finding]:
        """The refusals not skipped by rule id."""
        return [f for f in self.findings if f.verdict == "refuse" and f.rule not in skip]


def parse(version: str) -> tuple[int, int, int, int]:
    """'v1.33.5+k3s1' -> (1, 33, 5, 1); ValueError for anything else."""
    match = VERSION.match(version)
    if not match:
        raise ValueError(f"{version!r} is not a K3s release like v1.33.5+k3s1")
    return tuple(int(n) for n in match.groups())  # type: ignore[return-value]


def minor(version: str) -> str:
    return "{}.{}".format(*parse(version)[:2])


# --- a: version skew -----------------------------------------------------------------

def check_skew(running: tuple[Running, ...], target: str) -> Finding:
    def finding(verdict: Verdict, message: str, source: str = RULES["version-skew"]) -> Finding:
        return Finding("version-skew", verdict, message, source)

    if not running:
        return finding("refuse", "cannot tell which K3s version runs: no node listed and no pinned binary read")
    newer = [r for r in running if parse(r.version) > parse(target)]
    if newer:
        return finding("refuse", f"{target} is older than {newer[0].version} ({newer[0].where}): a downgrade is a "
                                 "roll back, which needs that version's binary and an etcd snapshot taken on it "
                                 "('k3s-infra restore'); refused", K3S_ROLL_BACK)
    versions = sorted({r.version for r in running}, key=parse)
    if versions == [target]:
        return finding("ok", f"already at {target}: nothing to upgrade")
    oldest = parse(versions[0])
    gap = parse(target)[1] - oldest[1]
    if gap > 1:
        step = k3s_releases.newest(f"1.{oldest[1] + 1}") or f"a v1.{oldest[1] + 1} release"
        return finding("refuse", f"{versions[0]} -> {target} skips {gap - 1} minor version(s): upgrade one minor at "
                                 f"a time (first to {step}, then on)")
    mixed = f"; nodes run {', '.join(versions)}: a roll did not finish" if len(versions) > 1 else ""
    return finding("warn" if mixed else "ok", f"{versions[0]} -> {target}: "
                   f"{'one minor' if gap == 1 else 'a patch'}{mixed}")


# --- b: the release ------------------------------------------------------------------

def check_channel(target: str) -> Finding:
    def finding(verdict: Verdict, message: str) -> Finding:
        return Finding("release-channel", verdict, message, RULES["release-channel"])

    asof = f"K3s release data of {k3s_releases.AS_OF}"
    line = minor(target)
    newest = k3s_releases.newest(line)
    if k3s_releases.known(target):
        if target == newest:
            return finding("ok", f"{target} is the newest v{line} release (channel v{line}; stable is "
                                 f"{k3s_releases.STABLE}, {asof})")
        return finding("warn", f"{target} is a K3s release, but channel v{line} has {newest} ({asof})")
    if newest is not None and parse(target) < parse(newest):
        first = k3s_releases.RELEASES[line][0]
        return finding("refuse", f"{target} is not a K3s release (v{line}: {first} to {newest}, {asof})")
    known = f"the newest v{line} release known is {newest}" if newest else f"no v{line} release is known"
    return finding("refuse", f"{target} is newer than the {asof}: {known}; check "
                             f"{k3s_releases.RELEASES_URL}/tag/{target} and pass --skip-check release-channel, "
                             "or update k3s-infra")


# --- c: add-on charts ----------------------------------------------------------------

_IMAGE_MINOR = re.compile(r"^v?1\.([0-9]+)\.")


def check_addons(env: Environment, target: str) -> list[Finding]:
    """One finding per chart whose version depends on the Kubernetes minor."""
    line, source = minor(target), AUTOSCALER_RELEASES
    found = []
    on = enabled(env)
    if "cluster_autoscaler" in on:
        pinned = env.addons.cluster_autoscaler.version
        chart = catalog.CLUSTER_AUTOSCALER_CHARTS.get(line)
        if pinned:
            found.append(Finding("addon-charts", "warn", f"cluster-autoscaler: chart {pinned} is pinned in "
                                 f"addons.cluster_autoscaler.version: its appVersion must be {line}.x", source))
        elif chart is None:
            found.append(Finding("addon-charts", "refuse", f"cluster-autoscaler: no chart is known for Kubernetes "
                                 f"{line} (known: {', '.join(catalog.CLUSTER_AUTOSCALER_CHARTS)}); pin one in "
                                 "addons.cluster_autoscaler.version or update k3s-infra", source))
        else:
            found.append(Finding("addon-charts", "ok", f"cluster-autoscaler: chart {chart} for Kubernetes {line}",
                                 source))
    for name in on:
        entry, pinned = catalog.CATALOG[name], getattr(env.addons, name).version
        if entry.kube_version and pinned in (None, entry.version) \
                and not rules.kube_version_allows(entry.kube_version, target):
            found.append(Finding("addon-charts", "refuse", f"{entry.chart}: chart {entry.version} (addons.{name}) "
                                 f"requires kubeVersion {entry.kube_version!r}, Helm refuses it on {line}",
                                 HELM_KUBE_VERSION))
    found.append(_cloud_controller(env.k3s.cloud_controller.image_tag, target))
    return found


def _cloud_controller(tag: str, target: str) -> Finding:
    line, source = parse(target)[1], SKEW_POLICY
    match = _IMAGE_MINOR.match(tag)
    if not match:
        return Finding("addon-charts", "warn", f"cloud-controller-manager: image tag {tag} names no Kubernetes "
                       "minor; it must not be newer than the API server, nor more than one minor older", source)
    have = int(match[1])
    where = f"cloud-controller-manager {tag} (k3s.cloud_controller.image_tag)"
    if have > line or have < line - 1:
        return Finding("addon-charts", "refuse", f"{where} with Kubernetes 1.{line}: it may be one minor older "
                       f"than the API server, never newer nor older still; set a 1.{line} image", source)
    if have == line - 1:
        return Finding("addon-charts", "warn", f"{where} is one minor older than 1.{line}: allowed during the "
                       f"upgrade; move it to 1.{line} after", source)
    return Finding("addon-charts", "ok", f"{where} matches 1.{line}", source)


# --- d: etcd ----------------------------------------------------------------------------

def readyz_etcd(text: str) -> list[tuple[bool, str]]:
    """(passing, line) of the etcd checks in /readyz?verbose ('[+]etcd ok', '[-]etcd failed: ...')."""
    checks = (re.match(r"^\[([+-])\](\S+)", line.strip()) for line in text.splitlines())
    return [(m[1] == "+", m.string.strip()) for m in checks if m and m[2].startswith("etcd")]


def check_etcd(*, readyz: str | None, nodes: list[dict] | None, expected: int, servers: list[str],
               error: str | None = None) -> Finding:
    """``readyz``: the body of /readyz?verbose; ``nodes``: /api/v1/nodes items; ``expected``: servers
    the groups want; ``servers``: what AWS says is wrong with them (deploy/quorum.py servers_not_ready);
    ``error``: why the API could not be read."""
    problems = list(servers)
    if error is not None:
        problems.append(f"{error}; the API must be reachable from here to read etcd")
    if readyz is not None:
        checks = readyz_etcd(readyz)
        problems += [f"readyz: {line}" for passing, line in checks if not passing]
        if not checks:
            problems.append("readyz lists no etcd check")
    if nodes is not None:
        members = [n for n in nodes if (n.get("metadata", {}).get("labels") or {}).get(ETCD_ROLE) == "true"]
        ready = [n for n in members if node_ready(n)]
        problems += [f"node {n['metadata'].get('name')} (etcd) is not Ready" for n in members if not node_ready(n)]
        if len(ready) != expected:
            problems.append(f"{len(ready)} etcd members Ready, {expected} servers wanted")
    if problems:
        return Finding("etcd-health", "refuse", "; ".join(problems), RULES["etcd-health"])
    return Finding("etcd-health", "ok", f"etcd healthy (readyz), {expected} of {expected} members Ready, every "
                   "server in service and healthy behind the API load balancer", RULES["etcd-health"])


def node_ready(node: dict) -> bool:
    """A Node's Ready condition is True (https://kubernetes.io/docs/reference/node/node-status/#condition)."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in node.get("status", {}).get("conditions") or [])


# --- e: snapshot ------------------------------------------------------------------------

def check_snapshot(newest: tuple[str, datetime] | None, now: datetime, limit_minutes: int,
                   error: str | None = None) -> Finding:
    """``newest``: (name, LastModified) of the newest snapshot, or None when there is none."""
    def finding(verdict: Verdict, message: str) -> Finding:
        return Finding("snapshot-age", verdict, message, RULES["snapshot-age"])

    if error is not None:
        return finding("refuse", f"cannot list the etcd snapshots: {error}")
    if newest is None:
        return finding("refuse", f"no etcd snapshot in S3: {SNAPSHOT_HINT}")
    name, taken = newest
    minutes = (now - taken).total_seconds() / 60
    if minutes > limit_minutes:
        return finding("refuse", f"the newest snapshot {name} is {minutes:.0f} minutes old, more than "
                                 f"{limit_minutes}: {SNAPSHOT_HINT}")
    return finding("ok", f"snapshot {name}, {minutes:.0f} minutes old (at most {limit_minutes})")


# --- f: removed APIs ----------------------------------------------------------------------

DEPRECATED_METRIC = "apiserver_requested_deprecated_apis"
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of metric ``name`` in Prometheus text exposition format
    (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format)."""
    found = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if line.startswith("#") or not match or match[1] != name:
            continue
        labels = {k: re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m[1], m[1]), v)
                  for k, v in _LABEL.findall(match[2] or "")}
        found.append((labels, float(match[3])))
    return found


def check_removed_apis(metrics: str | None, target: str, error: str | None = None) -> list[Finding]:
    """Deprecated APIs requested since this API server started (the gauge is 1 for each) whose
    removed_release is the target's minor or earlier: refused; removed later: a warning."""
    source, line = RULES["removed-apis"], parse(target)[:2]
    if metrics is None:
        return [Finding("removed-apis", "refuse", f"cannot read the API server's metrics: {error}", source)]
    found = []
    for labels, value in samples(metrics, DEPRECATED_METRIC):
        removed = labels.get("removed_release", "")
        if value <= 0 or not re.fullmatch(r"[0-9]+\.[0-9]+", removed):
            continue
        api = "/".join(p for p in (labels.get("group"), labels.get("version")) if p)
        sub = f"/{labels['subresource']}" if labels.get("subresource") else ""
        what = f"{api} {labels.get('resource', '?')}{sub}"
        if tuple(int(n) for n in removed.split(".")) <= line:
            found.append(Finding("removed-apis", "refuse", f"{what} is still requested and removed in {removed}: "
                                 "move its clients to the replacement API first", source))
        else:
            found.append(Finding("removed-apis", "warn", f"{what} is still requested; removed in {removed}, after "
                                 "this upgrade", source))
    return found or [Finding("removed-apis", "ok", "no API removed by 1.{} requested since this API server started "
                             "(each server counts only the requests it served)".format(line[1]), source)]


# --- the pre-flight ---------------------------------------------------------------------

def run(aws, target: str, *, api: KubeApi | None = None, min_snapshot_minutes: int = DEFAULT_SNAPSHOT_MINUTES,
        now: datetime | None = None) -> Preflight:
    """Every rule, on what the stacks and the cluster's API say now. ``api``: the Kubernetes API
    (default: the admin kubeconfig's, deploy/kubeapi.py); one that cannot be reached makes the
    rules that need it refuse, saying why. DeployError when the stack is not deployed."""
    parse(target)
    env = aws.env
    root = changeset.stack_state(aws.cloudformation, env.stack_name)
    if stack_states.creates(root):
        raise DeployError(f"{env.stack_name} is not deployed: 'k3s-infra deploy' creates it at k3s.version")
    reads = _api_reads(aws, api)
    running = _running(aws, root, reads)
    findings = [check_skew(running, target), check_channel(target), *check_addons(env, target)]
    expected, servers = upgrade_reads.server_problems(aws, root)
    findings.append(check_etcd(readyz=reads.readyz, nodes=reads.nodes, expected=expected, servers=servers,
                               error=reads.errors.get("readyz") or reads.errors.get("nodes")))
    findings.append(_snapshot(aws, root, now or datetime.now(timezone.utc), min_snapshot_minutes))
    findings += check_removed_apis(reads.metrics, target, reads.errors.get("metrics"))
    return Preflight(target, running, tuple(findings))


UNKNOWN = "unknown"  # for_plan: the version the stack pins could not be read


def for_plan(aws, *, api: KubeApi | None = None, min_snapshot_minutes: int = DEFAULT_SNAPSHOT_MINUTES,
             now: datetime | None = None) -> Preflight | str | None:
    """The same pre-flight for ``plan`` when k3s.version was edited in the file: None when there is
    nothing to upgrade (no stack yet, or the stack already pins k3s.version), UNKNOWN when the
    pinned version cannot be read, else ``run``'s result for k3s.version. The version the stack pins decides; the API is read only for a change."""
    env = aws.env
    root = changeset.stack_state(aws.cloudformation, env.stack_name)
    if stack_states.creates(root):
        return None
    deployed = upgrade_reads.deployed_version(aws, root)
    if deployed is None:
        # The staged binary's metadata unreadable: said (upgrade_gate prints it), not a pre-flight
        # that would refuse every deploy of such a stack; `upgrade --to` reads the nodes through the API.
        return UNKNOWN
    if deployed == env.k3s.version:
        return None
    return run(aws, env.k3s.version, api=api, min_snapshot_minutes=min_snapshot_minutes, now=now)


def _api_reads(aws, api: KubeApi | None) -> upgrade_reads.ApiReads:
    try:
        return upgrade_reads.read_api(api if api is not None else kubeapi.admin(aws))
    except (KubeApiError, DeployError, NotPublished) as exc:  # no kubeconfig, or one that cannot be used
        return upgrade_reads.ApiReads(errors={key: str(exc) for key in ("readyz", "nodes", "metrics")})


def _running(aws, root: dict, reads: upgrade_reads.ApiReads) -> tuple[Running, ...]:
    """The stack's pinned version and every node's (when the API answered)."""
    pinned = upgrade_reads.deployed_version(aws, root)
    found = [("the stack's pinned binary", pinned)] if pinned else []
    found += [(f"node {name}", version) for name, version in upgrade_reads.node_versions(reads.nodes or [])]
    return tuple(Running(where, version) for where, version in found if VERSION.match(version))


def _snapshot(aws, root: dict, now: datetime, limit: int) -> Finding:
    try:
        found = snapshots.list_snapshots(aws, root)
    except (DeployError, ClientError, BotoCoreError) as exc:
        return check_snapshot(None, now, limit, error=str(exc))
    return check_snapshot((found[0].name, found[0].last_modified) if found else None, now, limit)
