"""The upgrade pre-flight's rules (deploy/upgrade_checks.py), one table per rule with both sides of
each boundary. Expected verdicts come from the sources each table cites, never from the code.
How the rules' data is read from AWS and the API: test_upgrade_reads.py."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from k3s_infra.config import load_environment, read_document, validate, ENVIRONMENTS_DIR
from k3s_infra.deploy.upgrade_checks import (Preflight, Running, check_addons, check_channel, check_etcd,
                                             check_removed_apis, check_skew, check_snapshot, parse, samples)

METRICS = (Path(__file__).parent / "fixtures" / "apiserver_metrics.txt").read_text()


def running(*versions: str) -> tuple[Running, ...]:
    return tuple(Running(f"node n{i}", v) for i, v in enumerate(versions))


# --- a: version skew ---------------------------------------------------------------------
# Kubernetes version skew policy (https://kubernetes.io/releases/version-skew-policy/): HA
# kube-apiservers "must be within one minor version"; an upgrade goes from 1.(n-1) to 1.n.
# K3s (https://docs.k3s.io/upgrades/manual): "Ensure that your plan does not skip intermediate
# minor versions". Rolling back needs a snapshot from the older version (docs.k3s.io/upgrades/roll-back).
SKEW = [
    ("one minor", ("v1.33.5+k3s1",), "v1.34.12+k3s1", "ok", "one minor"),
    ("two minors", ("v1.33.5+k3s1",), "v1.35.9+k3s1", "refuse", "first to v1.34.12+k3s1"),
    ("a patch", ("v1.33.5+k3s1",), "v1.33.13+k3s1", "ok", "a patch"),
    ("a K3s revision", ("v1.30.14+k3s1",), "v1.30.14+k3s2", "ok", "a patch"),
    ("the same version", ("v1.33.5+k3s1", "v1.33.5+k3s1"), "v1.33.5+k3s1", "ok", "nothing to upgrade"),
    ("a minor down", ("v1.34.1+k3s1",), "v1.33.13+k3s1", "refuse", "downgrade"),
    ("a patch down", ("v1.33.6+k3s1",), "v1.33.5+k3s1", "refuse", "downgrade"),
    ("a revision down", ("v1.33.13+k3s2",), "v1.33.13+k3s1", "refuse", "downgrade"),
    ("one node already newer", ("v1.33.5+k3s1", "v1.34.12+k3s1"), "v1.34.1+k3s1", "refuse", "downgrade"),
    ("a roll half done", ("v1.33.5+k3s1", "v1.34.1+k3s1"), "v1.34.12+k3s1", "warn", "a roll did not finish"),
    ("the oldest node decides", ("v1.32.4+k3s1", "v1.33.5+k3s1"), "v1.34.12+k3s1", "refuse", "first to v1.33"),
    ("nothing read", (), "v1.34.12+k3s1", "refuse", "cannot tell"),
]


@pytest.mark.parametrize("case, versions, target, verdict, says", SKEW, ids=[row[0] for row in SKEW])
def test_version_skew(case, versions, target, verdict, says):
    finding = check_skew(running(*versions), target)
    assert (finding.rule, finding.verdict) == ("version-skew", verdict)
    assert says in finding.message
    source = "docs.k3s.io/upgrades/roll-back" if says == "downgrade" else "kubernetes.io/releases/version-skew-policy"
    assert source in finding.source


def test_same_version_everywhere_is_nothing_to_upgrade():
    assert Preflight("v1.33.5+k3s1", running("v1.33.5+k3s1", "v1.33.5+k3s1")).up_to_date
    assert not Preflight("v1.34.1+k3s1", running("v1.33.5+k3s1", "v1.34.1+k3s1")).up_to_date
    assert not Preflight("v1.34.1+k3s1", ()).up_to_date  # nothing read is not "up to date"


# --- b: the release ----------------------------------------------------------------------
# The format: K3s tags releases v<kubernetes version>+k3s<n> (https://github.com/k3s-io/k3s/releases).
@pytest.mark.parametrize("text", ["1.34.12+k3s1", "v1.34+k3s1", "v1.34.12", "v1.34.12-rc1+k3s1", "v1.34.12+k3s",
                                  "v2.34.1+k3s1", " v1.34.12+k3s1", "latest", "stable"])
def test_anything_but_a_release_tag_is_refused(text):
    with pytest.raises(ValueError, match="is not a K3s release like v1.33.5"):
        parse(text)


# The channels as of 2026-12-04: update.k3s.io's v1.34 channel and its stable channel pointed at
# v1.34.12+k3s1 and v1.36.5+k3s1 (30 Sep 2026 releases); v1.34's first release is v1.34.1+k3s1 ("the
# first k3s release in the 1.34 release line", its notes); v1.30.14+k3s2 re-released v1.30.14
# (docs.k3s.io/release-notes/v1.30.X); the newest release then was v1.37.1+k3s1.
CHANNEL = [
    ("the newest patch of its minor", "v1.34.12+k3s1", "ok", "newest v1.34 release"),
    ("a patch one past the newest known", "v1.34.13+k3s1", "refuse", "--skip-check release-channel"),
    ("an older release of the minor", "v1.34.5+k3s1", "warn", "channel v1.34 has v1.34.12+k3s1"),
    ("a patch K3s never released", "v1.34.0+k3s1", "refuse", "is not a K3s release"),
    ("a re-release is the newest", "v1.30.14+k3s2", "ok", "newest v1.30 release"),
    ("the release it replaced", "v1.30.14+k3s1", "warn", "channel v1.30 has v1.30.14+k3s2"),
    ("a revision never published", "v1.33.5+k3s2", "refuse", "is not a K3s release"),
    ("the newest release of all", "v1.37.1+k3s1", "ok", "newest v1.37 release"),
    ("a minor after it", "v1.38.0+k3s1", "refuse", "no v1.38 release is known"),
]


@pytest.mark.parametrize("case, target, verdict, says", CHANNEL, ids=[row[0] for row in CHANNEL])
def test_release_channel(case, target, verdict, says):
    finding = check_channel(target)
    assert (finding.rule, finding.verdict) == ("release-channel", verdict)
    assert says in finding.message and "update.k3s.io/v1-release/channels" in finding.source


# --- c: add-on charts -------------------------------------------------------------------------
def _env(**sections):
    document = read_document(ENVIRONMENTS_DIR / "prod.yaml")
    for key, value in sections.items():
        document[key] = {**document.get(key, {}), **value}
    return validate(document, "prod.yaml")


def _verdicts(findings, word: str) -> list[str]:
    return [f.verdict for f in findings if word in f.message]


# The autoscaler supports only its own minor (kubernetes/autoscaler README, "Releases"): chart
# 9.53.0 ships appVersion 1.34.2, 9.59.0 appVersion 1.35.0 (charts/cluster-autoscaler/Chart.yaml).
@pytest.mark.parametrize("target, verdict, says", [
    ("v1.34.12+k3s1", "ok", "chart 9.53.0 for Kubernetes 1.34"),
    ("v1.35.9+k3s1", "ok", "chart 9.59.0 for Kubernetes 1.35"),
    ("v1.36.5+k3s1", "refuse", "no chart is known for Kubernetes 1.36"),
])
def test_the_autoscaler_chart_of_the_target_minor(target, verdict, says):
    findings = check_addons(load_environment("prod"), target)  # prod: an agent pool that scales
    found = [f for f in findings if "cluster-autoscaler" in f.message]
    assert [(f.rule, f.verdict) for f in found] == [("addon-charts", verdict)] and says in found[0].message


def test_a_pinned_autoscaler_chart_is_the_users_to_vouch_for():
    env = _env(addons={"cluster_autoscaler": {"version": "9.60.1"}})
    assert _verdicts(check_addons(env, "v1.36.5+k3s1"), "cluster-autoscaler") == ["warn"]


def test_no_autoscaler_no_autoscaler_finding():
    env = _env(addons={"cluster_autoscaler": {"enabled": False}})
    assert _verdicts(check_addons(env, "v1.36.5+k3s1"), "cluster-autoscaler") == []


# Rancher 2.12's chart says kubeVersion "< 1.34.0-0" (rancher/rancher chart/Chart.yaml @ v2.12.1);
# Helm refuses a chart whose kubeVersion excludes the cluster (helm.sh, "The kubeVersion field").
@pytest.mark.parametrize("target, verdicts", [("v1.33.13+k3s1", []), ("v1.34.1+k3s1", ["refuse"])])
def test_a_chart_whose_kube_version_excludes_the_target(target, verdicts):
    env = load_environment(path=Path(__file__).parents[2] / "environments" / "all-addons.yaml")
    found = [f for f in check_addons(env, target) if f.message.startswith("rancher:")]
    assert [f.verdict for f in found] == verdicts
    assert all("< 1.34.0-0" in f.message and "helm.sh" in f.source for f in found)


# Skew policy, "kube-controller-manager, kube-scheduler, and cloud-controller-manager": "must not be
# newer than the kube-apiserver instances they communicate with ... may be up to one minor version
# older (to allow live upgrades)".
@pytest.mark.parametrize("tag, target, verdict", [
    ("v1.33.0", "v1.33.13+k3s1", "ok"),
    ("v1.33.0", "v1.34.1+k3s1", "warn"),     # one older: allowed
    ("v1.33.0", "v1.35.0+k3s1", "refuse"),   # two older
    ("v1.35.1", "v1.34.1+k3s1", "refuse"),   # newer than the API server
    ("v1.34.2", "v1.34.1+k3s1", "ok"),
    ("v2.0.0", "v1.34.1+k3s1", "warn"),      # not a Kubernetes 1.x minor: nothing to judge it by
])
def test_the_cloud_controller_is_at_most_one_minor_older(tag, target, verdict):
    env = _env(k3s={"cloud_controller": {"image_tag": tag}})
    found = [f for f in check_addons(env, target) if f.message.startswith("cloud-controller-manager")]
    assert [f.verdict for f in found] == [verdict]
    assert "version-skew-policy" in found[0].source


# --- d: etcd -------------------------------------------------------------------------------------
# kubectl get --raw='/readyz?verbose' lists "[+]etcd ok" (https://kubernetes.io/docs/reference/using-api/
# health-checks/); a failing check reads "[-]etcd failed: reason withheld" and the status is 500.
READY = "[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]etcd-readiness ok\n[+]informer-sync ok\nreadyz check passed\n"
NOT_READY = READY.replace("[+]etcd-readiness ok", "[-]etcd-readiness failed: reason withheld").replace(
    "readyz check passed", "readyz check failed")


def node(name: str, ready: bool = True, etcd: bool = True) -> dict:
    """A Node as GET /api/v1/nodes lists it: K3s labels servers control-plane, etcd and master "true"."""
    labels = {"kubernetes.io/hostname": name, **({"node-role.kubernetes.io/control-plane": "true",
                                                  "node-role.kubernetes.io/etcd": "true",
                                                  "node-role.kubernetes.io/master": "true"} if etcd else {})}
    return {"metadata": {"name": name, "labels": labels},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": "True" if ready else "Unknown"}],
                       "nodeInfo": {"kubeletVersion": "v1.33.5+k3s1"}}}


SERVERS = [node("i-0a1"), node("i-0a2"), node("i-0a3"), node("i-0b1", etcd=False)]
ETCD = [
    ("healthy, every member Ready", READY, SERVERS, 3, [], None, "ok", "3 of 3 members Ready"),
    ("a failing etcd check", NOT_READY, SERVERS, 3, [], None, "refuse", "[-]etcd-readiness failed"),
    ("no etcd check at all", "[+]ping ok\nreadyz check passed\n", SERVERS, 3, [], None, "refuse", "no etcd check"),
    ("one member fewer", READY, SERVERS[1:], 3, [], None, "refuse", "2 etcd members Ready, 3 servers wanted"),
    ("a member NotReady", READY, [*SERVERS[:2], node("i-0a3", ready=False), SERVERS[3]], 3, [], None, "refuse",
     "node i-0a3 (etcd) is not Ready"),
    ("a stale member left behind", READY, [*SERVERS, node("i-0old", ready=False)], 3, [], None, "refuse",
     "node i-0old (etcd) is not Ready"),
    ("agents do not count", READY, [node("i-0a1"), node("i-0b1", etcd=False), node("i-0b2", etcd=False)], 1, [],
     None, "ok", "1 of 1"),
    ("AWS sees a server out", READY, SERVERS, 3, ["i-0a3 is Terminating/Healthy"], None, "refuse",
     "i-0a3 is Terminating/Healthy"),
    ("the API out of reach", None, None, 3, [], "cannot reach the Kubernetes API at https://k3s.example:6443: "
     "timed out", "refuse", "timed out"),
]


@pytest.mark.parametrize("case, readyz, nodes, expected, servers, error, verdict, says", ETCD,
                         ids=[row[0] for row in ETCD])
def test_etcd_health(case, readyz, nodes, expected, servers, error, verdict, says):
    finding = check_etcd(readyz=readyz, nodes=nodes, expected=expected, servers=servers, error=error)
    assert (finding.rule, finding.verdict) == ("etcd-health", verdict)
    assert says in finding.message


# --- e: snapshot age ---------------------------------------------------------------------------------
# "Before upgrading, ensure you have a valid database or etcd snapshot" (docs.k3s.io/upgrades/roll-back).
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
SNAPSHOT = [
    ("59 minutes old", timedelta(minutes=59), 60, "ok", "59 minutes old"),
    ("exactly the limit", timedelta(minutes=60), 60, "ok", "60 minutes old"),
    ("61 minutes old", timedelta(minutes=61), 60, "refuse", "61 minutes old, more than 60"),
    ("a day old with a day allowed", timedelta(hours=24), 1440, "ok", "1440 minutes old"),
    ("one minute over a smaller limit", timedelta(minutes=16), 15, "refuse", "more than 15"),
]


@pytest.mark.parametrize("case, age, limit, verdict, says", SNAPSHOT, ids=[row[0] for row in SNAPSHOT])
def test_snapshot_age(case, age, limit, verdict, says):
    finding = check_snapshot(("etcd-snapshot-i-0a1-1796385600", NOW - age), NOW, limit)
    assert (finding.rule, finding.verdict) == ("snapshot-age", verdict) and says in finding.message
    if verdict == "refuse":
        assert "k3s etcd-snapshot save" in finding.message and "k3s-infra snapshots" in finding.message


def test_no_snapshot_or_no_listing_refuses():
    assert check_snapshot(None, NOW, 60).verdict == "refuse"
    listing = check_snapshot(None, NOW, 60, error="ListObjectsV2: AccessDenied")
    assert listing.verdict == "refuse" and "AccessDenied" in listing.message


# --- f: removed APIs -----------------------------------------------------------------------------------
# apiserver_requested_deprecated_apis is 1 for each deprecated API requested since the server started,
# labelled with the release that removes it (https://kubernetes.io/blog/2020/09/03/warnings/#metrics);
# removed in 1.34 means not served by 1.34 (https://kubernetes.io/docs/reference/using-api/deprecation-guide/).
# The fixture's series: componentstatuses v1 and a CRD version (no removed_release), resourceclaims/status
# v1beta1 (removed 1.34), volumeattributesclasses v1beta1 (removed 1.35).
REMOVED = [
    ("before both removals", "v1.33.13+k3s1", [("warn", "resource.k8s.io/v1beta1 resourceclaims/status"),
                                               ("warn", "storage.k8s.io/v1beta1 volumeattributesclasses")]),
    ("removed_release equal to the target", "v1.34.12+k3s1",
     [("refuse", "resource.k8s.io/v1beta1 resourceclaims/status"), ("warn", "storage.k8s.io/v1beta1")]),
    ("removed_release before the target", "v1.35.9+k3s1",
     [("refuse", "resource.k8s.io/v1beta1"), ("refuse", "storage.k8s.io/v1beta1 volumeattributesclasses")]),
]


@pytest.mark.parametrize("case, target, expected", REMOVED, ids=[row[0] for row in REMOVED])
def test_removed_apis_from_a_recorded_metrics_page(case, target, expected):
    findings = check_removed_apis(METRICS, target)
    assert [(f.rule, f.verdict) for f in findings] == [("removed-apis", verdict) for verdict, _ in expected]
    for finding, (_, what) in zip(findings, expected):
        assert finding.message.startswith(what) and "deprecation-guide" in finding.source
    assert not any("componentstatuses" in f.message or "widgets" in f.message for f in findings)


def test_no_deprecated_api_requested_passes():
    page = "\n".join(line for line in METRICS.splitlines() if not line.startswith("apiserver_requested_deprecated"))
    [finding] = check_removed_apis(page, "v1.34.12+k3s1")
    assert finding.verdict == "ok" and "each server counts only the requests it served" in finding.message


def test_unreadable_metrics_refuse():
    [finding] = check_removed_apis(None, "v1.34.12+k3s1", error="GET /metrics on https://k3s.example:6443: HTTP 403")
    assert finding.verdict == "refuse" and "HTTP 403" in finding.message


def test_the_text_format_parser_reads_labels_as_prometheus_writes_them():
    # https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format: label values
    # escape backslash, double quote and line feed; comments and HELP/TYPE lines are no samples.
    page = ('# HELP m apiserver_requested_deprecated_apis{group="x"} 1 in a comment\n'
            'm{a="say \\"hi\\"",b="C:\\\\dir",c="two\\nlines"} 2.5 1700000000000\n'
            'm_total{a="x"} 7\nm 3\n')
    assert samples(page, "m") == [({"a": 'say "hi"', "b": "C:\\dir", "c": "two\nlines"}, 2.5), ({}, 3.0)]
    assert samples(page, "apiserver_requested_deprecated_apis") == []


def test_a_series_at_zero_is_no_request():
    """The gauge is 1 for each deprecated API requested since the server started (see above): a
    series at 0 (as an exporter may leave one) names no client to move."""
    page = ('apiserver_requested_deprecated_apis{group="storage.k8s.io",removed_release="1.34",resource='
            '"volumeattributesclasses",subresource="",version="v1beta1"} 0\n')
    [finding] = check_removed_apis(page, "v1.34.12+k3s1")
    assert finding.verdict == "ok"
