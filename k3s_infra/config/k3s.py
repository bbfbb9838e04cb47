"""The ``k3s:`` section: version, release, cluster network, snapshots and components.

The nodes have IPv4 addresses only (the VPC and its subnets are IPv4: network.vpc_cidr),
so the pod and service ranges and the cluster DNS address are IPv4 too. A range is private:
RFC 1918, or RFC 6598 shared address space (100.64.0.0/10, "CGNAT"), which clusters use
when the RFC 1918 space is taken by the VPCs around them.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from k3s_infra.config import defaults
from k3s_infra.config.types import (
    CronSchedule,
    DnsName,
    ImageTag,
    K3sVersion,
    SemVer,
    Strict,
    SubjectName,
    Url,
    network_cidr,
    shape,
)

# RFC 1918 private ranges and RFC 6598 shared address space: inside a VPC none of them is
# routed to the internet, and none is the loopback, link-local (169.254.169.254 is the
# instance metadata service) or another special range Python's is_private also counts.
POD_RANGES = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                      "100.64.0.0/10"))


def private_range(network: ipaddress.IPv4Network) -> bool:
    return any(network.subnet_of(r) for r in POD_RANGES)


class EtcdSnapshots(Strict):
    enabled: bool = True
    schedule: CronSchedule = defaults.ETCD_SNAPSHOT_SCHEDULE
    retention: int = Field(defaults.ETCD_SNAPSHOT_RETENTION, ge=1, le=1000)
    expire_days: int = Field(defaults.SNAPSHOT_EXPIRE_DAYS, ge=1, le=3650,
                             description="Bucket lifecycle: delete snapshot objects after this many days.")


class CloudController(Strict):
    chart_version: SemVer = defaults.CCM_CHART_VERSION
    image_tag: ImageTag = defaults.CCM_IMAGE_TAG


Sha256 = shape(r"^[0-9a-f]{64}$", "a SHA-256 hex digest (64 lowercase hex characters)")


class BinarySha256(Strict):
    """Pinned SHA-256 of the K3s release binary per node architecture: the deployer refuses a
    binary (and a sha256sum-<arch>.txt) that disagrees with it (deploy/artifacts.py)."""

    amd64: Sha256 | None = None
    arm64: Sha256 | None = None


class K3s(Strict):
    version: K3sVersion = defaults.K3S_VERSION
    release_url: Url = Field(defaults.K3S_RELEASE_URL, description=(
        "Base URL the deployer downloads the K3s release files from (<release_url>/<version>/<file>: the "
        "binary and the airgap images) to stage them in the artifact bucket, where the nodes read them; a "
        "mirror may replace GitHub. The checksums still come from the official release (or --artifacts DIR)."))
    binary_sha256: BinarySha256 = Field(default_factory=BinarySha256, description=(
        "Pinned SHA-256 of the K3s binary per architecture (amd64, arm64): deploy refuses a binary, or a "
        "release checksum file, that disagrees."))
    cluster_cidr: str = defaults.CLUSTER_CIDR
    service_cidr: str = defaults.SERVICE_CIDR
    cluster_dns: str = defaults.CLUSTER_DNS
    cluster_domain: DnsName = defaults.CLUSTER_DOMAIN
    flannel_backend: Literal["vxlan", "wireguard-native"] = "vxlan"
    disable: list[Literal["traefik", "servicelb", "local-storage", "metrics-server", "coredns"]] = Field(
        default_factory=lambda: list(defaults.DISABLED_COMPONENTS))
    secrets_encryption: bool = True
    server_taint: bool = Field(True, description="Taint servers node-role.kubernetes.io/control-plane:NoSchedule.")
    tls_san: list[SubjectName] = Field(default_factory=list, max_length=100, description="Extra API server certificate names.")
    etcd_snapshots: EtcdSnapshots = Field(default_factory=EtcdSnapshots)
    cloud_controller: CloudController = Field(default_factory=CloudController)
    service_account_issuer: Literal["sign", "accept"] = Field("sign", description=(
        "sign: servers sign service account tokens as the cluster's OIDC issuer (pod IAM). accept: they "
        "only accept its tokens, still signing as K3s: the first deploy of a cluster made before pod IAM, "
        "so no server rejects tokens another already signs (docs/pod-iam.md, upgrading)."))

    _cidrs = field_validator("cluster_cidr", "service_cidr")(network_cidr)

    @model_validator(mode="before")
    @classmethod
    def _no_installer(cls, data: Any) -> Any:
        # Nodes no longer run an installer script; say what replaces the old key.
        if isinstance(data, dict) and "installer_url" in data:
            raise ValueError("installer_url: is no longer supported: nodes install the K3s release binary "
                             "verified by its SHA-256; use k3s.release_url for a mirror of the release "
                             "binaries and k3s.binary_sha256 to pin their checksums")
        return data

    @field_validator("cluster_dns")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"not an IP address: {value!r}") from None

    @model_validator(mode="after")
    def _dns_in_service_cidr(self) -> K3s:
        # K3s docs (https://docs.k3s.io/cli/server#networking): cluster-dns must lie in service-cidr;
        # kube-apiserver gives the first host of service-cidr to the `kubernetes` Service.
        services, pods = ipaddress.ip_network(self.service_cidr), ipaddress.ip_network(self.cluster_cidr)
        dns = ipaddress.ip_address(self.cluster_dns)
        # An IPv6 (or dual-stack) cluster needs IPv6 node addresses (docs.k3s.io/networking/
        # basic-network-options, "Dual-stack" and "Single-stack IPv6"); these nodes have none.
        for field, value in (("cluster_cidr", pods), ("service_cidr", services), ("cluster_dns", dns)):
            if value.version != 4:
                raise ValueError(f"{field}: {value} is IPv6, but the nodes have IPv4 addresses only (the VPC is "
                                 "IPv4): pod and service ranges are IPv4 here")
        for field, network in (("cluster_cidr", pods), ("service_cidr", services)):
            if not private_range(network):
                raise ValueError(f"{field}: {network} is not a private range (RFC 1918: 10.0.0.0/8, "
                                 "172.16.0.0/12, 192.168.0.0/16; or RFC 6598: 100.64.0.0/10)")
        # kube-apiserver refuses an IPv4 service range larger than /12
        # (kubernetes pkg/controlplane/services.go: "the mask must be >= 12").
        if services.version == 4 and services.prefixlen < 12:
            raise ValueError(f"service_cidr: {services} is larger than /12, which kube-apiserver refuses")
        if dns not in services:
            raise ValueError(f"cluster_dns: {self.cluster_dns} is outside service_cidr {self.service_cidr}")
        if dns in (services.network_address, services.broadcast_address):
            raise ValueError(f"cluster_dns: {dns} is the network or broadcast address of {services}")
        if dns == services.network_address + 1:
            raise ValueError(f"cluster_dns: {dns} is the API service's address (the first host of service_cidr)")
        if pods.overlaps(services):
            raise ValueError("cluster_cidr: overlaps service_cidr")
        return self

    def max_nodes(self) -> int:
        """Nodes cluster_cidr can hold: each takes a /24 (IPv4) or /64 (IPv6), K3s's default
        node-cidr-mask-size (kube-controller-manager --node-cidr-mask-size-ipv4/ipv6)."""
        pods = ipaddress.ip_network(self.cluster_cidr)
        per_node = 24 if pods.version == 4 else 64
        return 0 if pods.prefixlen > per_node else 2 ** min(per_node - pods.prefixlen, 30)
