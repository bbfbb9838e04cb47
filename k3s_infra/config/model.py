"""Typed model of an environment file: one strict pydantic section per key.

Unknown keys are refused at every level and domain rules (etcd quorum, pool sizes,
CIDRs, ID shapes) are checked here; ``loading`` reads files into this model and turns
every failure into one ``ConfigError``.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from k3s_infra.config import architectures, catalog, defaults, rules
from k3s_infra.config.addons import Addons, check_cluster_autoscaler
from k3s_infra.config.network import Api, Network, check_server_zones
from k3s_infra.config.workload_roles import MAX_ROLES, WorkloadRole, check_workload_roles
from k3s_infra.config.text import camel
from k3s_infra.config.text import shown as shown_value
from k3s_infra.config.types import (
    AccountId,
    AmiId,
    BucketName,
    CronSchedule,
    DnsName,
    ImageTag,
    InstanceType,
    K3sVersion,
    LabelKey,
    LabelValue,
    Name,
    Region,
    SemVer,
    SsmPath,
    StackName,
    Strict,
    SubjectName,
    TagKey,
    TagValue,
    Taint,
    Url,
    network_cidr,
    shape,
)

# --- sections -----------------------------------------------------------------

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
    """Pinned SHA-256 of the K3s release binary per node architecture; a pinned value wins
    over the release's published sha256sum-<arch>.txt (air-gapped mirrors need no GitHub)."""

    amd64: Sha256 | None = None
    arm64: Sha256 | None = None


class K3s(Strict):
    version: K3sVersion = defaults.K3S_VERSION
    release_url: Url = Field(defaults.K3S_RELEASE_URL, description=(
        "Base URL of the K3s release binaries (<release_url>/<version>/k3s[-arm64]); a mirror may replace "
        "GitHub. The checksums still come from the official release unless binary_sha256 pins them."))
    binary_sha256: BinarySha256 = Field(default_factory=BinarySha256)
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
        "so no server rejects tokens another already signs (README 'Pod IAM', upgrading)."))

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
        if len({services.version, pods.version, dns.version}) != 1:
            raise ValueError("cluster_cidr: cluster_cidr, service_cidr and cluster_dns must be one address family "
                             "(dual-stack is not supported here)")
        for field, network in (("cluster_cidr", pods), ("service_cidr", services)):
            if not network.is_private:
                raise ValueError(f"{field}: {network} is not a private range (RFC 1918 / RFC 4193)")
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


class Servers(Strict):
    count: int = Field(3, ge=1, le=9, description="Number of K3s servers; odd, for etcd quorum.")
    instance_type: InstanceType = "t3.medium"
    root_volume_gb: int = Field(40, ge=20, le=16384)

    @field_validator("count")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"must be odd for etcd quorum (1, 3, 5, ...), got {value}")
        return value


class Spot(Strict):
    on_demand_base_capacity: int = Field(0, ge=0, le=1000)
    on_demand_percentage_above_base: int = Field(0, ge=0, le=100)
    allocation_strategy: Literal["price-capacity-optimized", "capacity-optimized", "lowest-price"] = \
        "price-capacity-optimized"


class AgentPool(Strict):
    name: Name
    instance_types: list[InstanceType] = Field(min_length=1, max_length=20)
    min_size: int = Field(ge=0, le=1000)
    desired: int = Field(ge=0, le=1000)
    max_size: int = Field(ge=1, le=1000)
    root_volume_gb: int = Field(50, ge=20, le=16384)
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)
    spot: Spot | None = Field(None, description="Run the pool on spot capacity with a mixed-instances policy.")

    @model_validator(mode="after")
    def _sizes(self) -> AgentPool:
        if not self.min_size <= self.desired <= self.max_size:
            raise ValueError(f"desired: need min_size <= desired <= max_size, got "
                             f"{self.min_size} <= {self.desired} <= {self.max_size}")
        if len(set(self.instance_types)) != len(self.instance_types):
            raise ValueError("instance_types: the same type is listed twice")
        identities = [rules.taint_identity(t) for t in self.taints]
        repeated = sorted({f"{k}:{e}" for k, e in identities if identities.count((k, e)) > 1})
        if repeated:
            raise ValueError(f"taints: one taint per key and effect, {', '.join(repeated)} is listed more than once")
        return self


class ImageParameters(Strict):
    """SSM public parameter of the node image, per architecture (Amazon Linux 2023 by default)."""

    x86_64: SsmPath = Field(defaults.AMI_PARAMETERS["x86_64"], description="Image of x86_64 nodes.")
    arm64: SsmPath = Field(defaults.AMI_PARAMETERS["arm64"], description="Image of arm64 (Graviton) nodes.")


class ImageIds(Strict):
    """Explicit AMI per architecture; one given wins over its ami_parameter."""

    x86_64: AmiId | None = None
    arm64: AmiId | None = None


class Nodes(Strict):
    ami_parameter: ImageParameters = Field(
        default_factory=ImageParameters,
        description="SSM public parameter holding the AMI ID, per architecture (x86_64, arm64).")
    ami_id: ImageIds = Field(default_factory=ImageIds,
                             description="Explicit AMI ID per architecture; when set, deploy uses it instead "
                                         "of resolving that architecture's ami_parameter.")

    @field_validator("ami_parameter", "ami_id", mode="before")
    @classmethod
    def _per_architecture(cls, value: Any, info: ValidationInfo) -> Any:
        # The single-string form of before Graviton support is refused, not guessed: the
        # string would have to be assigned to one architecture, silently wrong for the other.
        if isinstance(value, str):
            raise ValueError(f"one per architecture: write {info.field_name}: {{x86_64: {shown_value(value, 200)}}} "
                             f"(and arm64: ... for Graviton types) instead of a single value")
        return value


class Deploy(Strict):
    stack_name: StackName | None = None
    artifact_bucket: BucketName | None = None
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=40)

    @field_validator("tags")
    @classmethod
    def _not_reserved(cls, tags: dict[str, str]) -> dict[str, str]:
        for key in tags:
            if key == "Name":
                raise ValueError("tag key 'Name' is set per resource by k3s-infra (naming.name_tag)")
            if key.lower().startswith(("aws:", "k3s-infra:", "kubernetes.io/")):
                raise ValueError(f"tag key {key!r} uses a reserved prefix (aws:, k3s-infra:, kubernetes.io/)")
        return tags


class Environment(Strict):
    """One environment: where the cluster lives, its shape and how it is deployed."""

    name: Name
    region: Region
    account_id: AccountId
    protected: bool = Field(False, description="Refuse destroy without an override; retain data; termination protection.")
    network: Network
    api: Api = Field(default_factory=Api)
    k3s: K3s = Field(default_factory=K3s)
    nodes: Nodes = Field(default_factory=Nodes)
    servers: Servers = Field(default_factory=Servers)
    agent_pools: list[AgentPool] = Field(min_length=1, max_length=50)
    deploy: Deploy = Field(default_factory=Deploy)
    addons: Addons = Field(default_factory=Addons)
    workload_roles: list[WorkloadRole] = Field(
        default_factory=list, max_length=MAX_ROLES,
        description="IAM roles for Kubernetes service accounts (pod IAM through the cluster's OIDC issuer).")

    @model_validator(mode="after")
    def _consistent(self) -> Environment:
        names = [p.name for p in self.agent_pools]
        if len(set(names)) != len(names):
            raise ValueError("agent_pools: pool names must be unique")
        # Pools are stacks named "AgentPool" + camel(name) (naming.agent_pool_stack): 'a-b' and
        # 'ab' would be one stack, one pool lost.
        stacks: dict[str, str] = {}
        for name in names:
            other = stacks.setdefault(camel(name), name)
            if other != name:
                raise ValueError(f"agent_pools: {other!r} and {name!r} both become stack "
                                 f"AgentPool{camel(name)}; rename one")
        nodes = self.servers.count + sum(p.max_size for p in self.agent_pools)
        if nodes > self.k3s.max_nodes():
            raise ValueError(f"k3s.cluster_cidr: {self.k3s.cluster_cidr} holds {self.k3s.max_nodes()} nodes "
                             f"(a /24 each), the cluster can grow to {nodes}")
        self._architecture()
        for name in Addons.model_fields:
            for key, arn in getattr(self.addons, name).secret_values.items():
                if arn.split(":")[3] != self.region:
                    raise ValueError(f"addons.{name}.secret_values.{key}: the secret is in {arn.split(':')[3]}; "
                                     f"the servers read secrets in the cluster's region {self.region}")
        for field in ("subnets", "public_subnets"):
            for subnet in getattr(self.network, field):
                if subnet.az and not subnet.az.startswith(self.region):
                    raise ValueError(f"network.{field}: {subnet.id} is in {subnet.az}, outside region {self.region}")
        _check_public_subnets(self.network, self.api)
        check_workload_roles(self.workload_roles, rules.partition_of(self.region)[0], self.account_id,
                             catalog.reserved_service_accounts())
        check_server_zones(self.network, self.servers.count)
        vpc = ipaddress.ip_network(self.network.vpc_cidr)
        for field in ("cluster_cidr", "service_cidr"):
            if ipaddress.ip_network(getattr(self.k3s, field)).overlaps(vpc):
                raise ValueError(f"k3s.{field}: overlaps network.vpc_cidr {vpc}")
        return self

    def _architecture(self) -> None:
        """A pool runs one image, so all its types share an architecture; the servers' type
        decides theirs. An image path that names another architecture is refused (see
        k3s_infra.config.architectures; pre-flight checks the images themselves)."""
        for pool in self.agent_pools:
            found = {t: architectures.of_instance_type(t) for t in pool.instance_types}
            if len(set(found.values())) > 1:
                listed = ", ".join(f"{t} ({arch})" for t, arch in found.items())
                raise ValueError(f"agent_pools[{pool.name}].instance_types: mixes architectures ({listed}); "
                                 f"a pool runs one image: split it into one pool per architecture")
        for arch in architectures.in_use(self):
            path = getattr(self.nodes.ami_parameter, arch)
            named = architectures.named_by_path(path)
            if named not in (None, arch):
                raise ValueError(f"nodes.ami_parameter.{arch}: {path} names an {named} image, but "
                                 f"{self._users_of(arch)} run {arch}")

    def _users_of(self, arch: str) -> str:
        users = (["servers"] if architectures.of_servers(self) == arch else []) + [
            f"agent_pools[{p.name}]" for p in self.agent_pools if architectures.of_pool(p) == arch]
        return ", ".join(users)

    @property
    def draining(self) -> bool:
        """Node termination handler and its queue: explicit, else on when any pool runs on spot."""
        enabled = self.addons.node_termination_handler.enabled
        return any(pool.spot for pool in self.agent_pools) if enabled is None else enabled

    @model_validator(mode="after")
    def _autoscaler(self) -> Environment:
        check_cluster_autoscaler(self)
        return self

    @property
    def autoscaling(self) -> bool:
        """Cluster autoscaler and its ASG tags: explicit, else on when any pool can grow."""
        enabled = self.addons.cluster_autoscaler.enabled
        return any(pool.max_size > pool.min_size for pool in self.agent_pools) if enabled is None else enabled

    @property
    def stack_name(self) -> str:
        return self.deploy.stack_name or f"k3s-{self.name}"

    @property
    def artifact_bucket(self) -> str:
        return self.deploy.artifact_bucket or f"k3s-infra-{self.account_id}-{self.region}"


def _check_public_subnets(network: Network, api: Api) -> None:
    """An internet-facing API needs public subnets in two AZs (a created network has them)."""
    public = network.public_subnets
    if api.scheme == "internal" and public:
        raise ValueError("network.public_subnets: only used with api.scheme internet-facing; remove it")
    if api.scheme == "internet-facing" and not network.managed:
        if len(public) < 2:
            raise ValueError("network.public_subnets: api.scheme internet-facing needs public subnets "
                             "({id, az}) in at least two availability zones")
        zones = {s.az for s in public}
        if None in zones or len(zones) < 2:
            raise ValueError("network.public_subnets: give each public subnet its az; at least two distinct AZs")
