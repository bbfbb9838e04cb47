"""Values K3s, Kubernetes or Helm would reject (or silently misread) later are refused now, and
valid values once refused are accepted (k3s_infra/config/rules.py, k3s.py, addons.py). Sources:
- TLS SANs: K3s reads each tls-san with Go's net.ParseIP, which refuses leading zeros (Go 1.17+),
  so '010.000.000.001' would become a DNS name matching nothing; RFC 1123 section 2.1: a host
  name's highest-level label is alphabetic, never dotted-decimal.
- Ingress hosts (Rancher's hostname): k8s.io/kubernetes pkg/apis/networking/validation
  validateIngressRules: a DNS-1123 subdomain (lowercase), "must be a DNS name, not an IP address".
- Chart kubeVersion (Helm refuses an incompatible chart): rancher/rancher chart/Chart.yaml @ v2.12.1
  "kubeVersion: < 1.34.0-0"; Masterminds/semver: '-0' admits pre-releases, '^1.8.0' is <2.0.0.
- Pod and service ranges: RFC 1918 and RFC 6598 (100.64.0.0/10 shared address space, used for
  pods when VPCs take the RFC 1918 space); RFC 3927 link-local 169.254.0.0/16 holds the instance
  metadata service; IPv6 pod ranges need IPv6 node addresses (docs.k3s.io networking).
- Taints: kubectl taint docs ("The value is optional"); k8s.io/kubernetes pkg/util/taints
  parseTaint accepts key=:effect and key:effect (an empty value is a valid label value).
"""

from __future__ import annotations

import pytest

from k3s_infra.config import catalog, validate
from k3s_infra.config.rules import kube_version_allows
from tests.support.config_errors import paths, refused


def k3s(d: dict) -> dict:
    return d.setdefault("k3s", {})


def rancher(d: dict, hostname: object) -> None:
    d["addons"] = {"rancher": {"enabled": True, "values": {"hostname": hostname}}}


REFUSED = {
    "tls_san IP with leading zeros": (lambda d: k3s(d).update(tls_san=["010.000.000.001"]), "k3s.tls_san[0]"),
    "tls_san octet over 255": (lambda d: k3s(d).update(tls_san=["api.example.com", "300.1.1.1"]), "k3s.tls_san[1]"),
    "tls_san all digits": (lambda d: k3s(d).update(tls_san=["1234"]), "k3s.tls_san[0]"),
    "rancher hostname an IP": (lambda d: rancher(d, "10.0.0.5"), "addons.rancher.values.hostname"),
    "rancher hostname an IPv6 address": (lambda d: rancher(d, "fd00::5"), "addons.rancher.values.hostname"),
    "rancher hostname upper case": (lambda d: rancher(d, "Rancher.Example.com"), "addons.rancher.values.hostname"),
    "rancher hostname a number": (lambda d: rancher(d, 8443), "addons.rancher.values.hostname"),
    "rancher hostname null": (lambda d: rancher(d, None), "addons.rancher.values.hostname"),
    "rancher hostname a wildcard": (lambda d: rancher(d, "*.example.com"), "addons.rancher.values.hostname"),
    "rancher on Kubernetes 1.34": (lambda d: (rancher(d, "rancher.example.com"),
                                              k3s(d).update(version="v1.34.1+k3s1")), "k3s.version"),
    "IPv6 service range": (lambda d: k3s(d).update(service_cidr="fd00:43::/112", cluster_dns="fd00:43::a"),
                           "k3s.service_cidr"),
    "IPv6 pod range": (lambda d: k3s(d).update(cluster_cidr="fd00:42::/56"), "k3s.cluster_cidr"),
    "link-local pod range (IMDS)": (lambda d: k3s(d).update(cluster_cidr="169.254.0.0/16"), "k3s.cluster_cidr"),
    "loopback service range": (lambda d: k3s(d).update(service_cidr="127.16.0.0/16", cluster_dns="127.16.0.10"),
                               "k3s.service_cidr"),
    "benchmark range": (lambda d: k3s(d).update(cluster_cidr="198.18.0.0/16"), "k3s.cluster_cidr"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_values_refused_later_are_refused_now(dev, case):
    mutate, path = REFUSED[case]
    mutate(dev)
    assert paths(refused(dev)) == [path]


ACCEPTED = {
    "CGNAT pod range": lambda d: k3s(d).update(cluster_cidr="100.64.0.0/16"),
    "CGNAT service range": lambda d: k3s(d).update(service_cidr="100.96.0.0/12", cluster_dns="100.96.0.10"),
    "CGNAT for both": lambda d: k3s(d).update(cluster_cidr="100.64.0.0/14", service_cidr="100.112.0.0/16",
                                              cluster_dns="100.112.0.10"),
    "taint with an empty value": lambda d: d["agent_pools"][0].update(taints=["dedicated=:NoSchedule"]),
    "taint without a value": lambda d: d["agent_pools"][0].update(taints=["example.com/gpu:NoExecute"]),
    "tls_san IP written canonically": lambda d: k3s(d).update(tls_san=["10.0.0.1", "fd00::1"]),
    "rancher on Kubernetes 1.33": lambda d: rancher(d, "rancher.example.com"),
    "rancher on 1.34 with a pinned chart": lambda d: (rancher(d, "rancher.example.com"),
                                                      k3s(d).update(version="v1.34.1+k3s1"),
                                                      d["addons"]["rancher"].update(version="2.13.0")),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_valid_values_are_accepted(dev, case):
    ACCEPTED[case](dev)
    validate(dev, "dev.yaml")


def test_an_empty_taint_value_reaches_the_autoscaler_tags_as_kubernetes_writes_it(dev):
    from k3s_infra.model import naming

    dev["agent_pools"][0].update(taints=["dedicated=:NoSchedule"])
    env = validate(dev, "dev.yaml")
    tags = naming.autoscaler_tags(env, env.agent_pools[0])
    assert tags["k8s.io/cluster-autoscaler/node-template/taint/dedicated"] == ":NoSchedule"


@pytest.mark.parametrize("constraint, version, allowed", [
    ("< 1.34.0-0", "v1.33.5+k3s1", True), ("< 1.34.0-0", "v1.34.0+k3s1", False),
    (">= 1.22.0-0", "v1.22.0+k3s1", True), (">= 1.22.0-0", "v1.21.14+k3s1", False),
    ("^1.8.0-0", "v1.35.0+k3s1", True), ("^1.8.0-0", "v1.7.9+k3s1", False),
    (">= 1.16-0", "v1.16.0+k3s1", True), (">=1.25.0-0", "v1.24.17+k3s1", False),
    (">= 1.23.0-0, < 1.30.0-0", "v1.29.9+k3s1", True), (">= 1.23.0-0, < 1.30.0-0", "v1.30.0+k3s1", False),
    ("~1.28.0 || >= 1.31.0", "v1.28.9+k3s1", True), ("~1.28.0 || >= 1.31.0", "v1.29.0+k3s1", False),
])
def test_kube_version_constraints_read_as_helm_reads_them(constraint, version, allowed):
    assert kube_version_allows(constraint, version) is allowed


@pytest.mark.parametrize("name", sorted(n for n, e in catalog.CATALOG.items() if e.kube_version))
def test_every_catalog_constraint_admits_the_default_k3s(name):
    from k3s_infra.config import defaults

    assert kube_version_allows(catalog.CATALOG[name].kube_version, defaults.K3S_VERSION)
