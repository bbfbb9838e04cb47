"""Typed model of an environment file, its loader and its error type.

An environment file (``environments/<env>.yaml``) may name a parent with
``extends:``; mappings merge key by key, the child wins everywhere else
(see ``_merge``). The merged document is validated by the pydantic models
below: unknown keys are refused at every level, domain rules (etcd quorum,
pool sizes, CIDRs, ID shapes) are checked, and every failure becomes one
``ConfigError`` naming the file, the field path and the problem.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from k3s_infra import defaults
from k3s_infra.addon_config import AddOn, Addons, NodeTerminationHandler  # noqa: F401  (re-exported)
from k3s_infra.config_types import (  # noqa: F401  (re-exported)
    _HINTS,
    AccountId,
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
    TagKey,
    TagValue,
    Taint,
    Url,
    _network,
    _shape,
)
from k3s_infra.network_config import Api, Network, Subnet  # noqa: F401  (re-exported)

ENVIRONMENTS_DIR = Path(__file__).resolve().parent.parent / "environments"


class ConfigError(Exception):
    """A user mistake in an environment file: file, field path and problem."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{path}: {message}" if path else message for path, message in problems]
        if len(lines) == 1:
            super().__init__(f"{source}: {lines[0]}")
        else:
            super().__init__(f"{source}: {len(lines)} problems\n" + "\n".join(f"  {line}" for line in lines))


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


Sha256 = _shape(r"^[0-9a-f]{64}$", "a SHA-256 hex digest (64 lowercase hex characters)")


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
    tls_san: list[DnsName] = Field(default_factory=list, description="Extra API server certificate names.")
    etcd_snapshots: EtcdSnapshots = Field(default_factory=EtcdSnapshots)
    cloud_controller: CloudController = Field(default_factory=CloudController)

    _cidrs = field_validator("cluster_cidr", "service_cidr")(_network)

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
        if ipaddress.ip_address(self.cluster_dns) not in ipaddress.ip_network(self.service_cidr):
            raise ValueError(f"cluster_dns: {self.cluster_dns} is outside service_cidr {self.service_cidr}")
        if ipaddress.ip_network(self.cluster_cidr).overlaps(ipaddress.ip_network(self.service_cidr)):
            raise ValueError("cluster_cidr: overlaps service_cidr")
        return self


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
    on_demand_base_capacity: int = Field(0, ge=0)
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
        return self


class Nodes(Strict):
    ami_parameter: SsmPath = Field(defaults.AMI_PARAMETER, description="SSM public parameter holding the AMI ID.")


class Deploy(Strict):
    stack_name: StackName | None = None
    artifact_bucket: BucketName | None = None
    tags: dict[TagKey, TagValue] = Field(default_factory=dict, max_length=40)

    @field_validator("tags")
    @classmethod
    def _not_reserved(cls, tags: dict[str, str]) -> dict[str, str]:
        for key in tags:
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

    @model_validator(mode="after")
    def _consistent(self) -> Environment:
        names = [p.name for p in self.agent_pools]
        if len(set(names)) != len(names):
            raise ValueError("agent_pools: pool names must be unique")
        for subnet in self.network.subnets:
            if subnet.az and not subnet.az.startswith(self.region):
                raise ValueError(f"network.subnets: {subnet.id} is in {subnet.az}, outside region {self.region}")
        vpc = ipaddress.ip_network(self.network.vpc_cidr)
        for field in ("cluster_cidr", "service_cidr"):
            if ipaddress.ip_network(getattr(self.k3s, field)).overlaps(vpc):
                raise ValueError(f"k3s.{field}: overlaps network.vpc_cidr {vpc}")
        return self

    @property
    def draining(self) -> bool:
        """Node termination handler and its queue: explicit, else on when any pool runs on spot."""
        enabled = self.addons.node_termination_handler.enabled
        return any(pool.spot for pool in self.agent_pools) if enabled is None else enabled

    @model_validator(mode="after")
    def _autoscaler(self) -> Environment:
        from k3s_infra.addon_config import check_cluster_autoscaler

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


# --- loading ------------------------------------------------------------------

def _merge(parent: Any, child: Any) -> Any:
    """Mappings merge key by key; for anything else (lists included) the child wins."""
    if isinstance(parent, dict) and isinstance(child, dict):
        merged = dict(parent)
        for key, value in child.items():
            merged[key] = _merge(parent[key], value) if key in parent else value
        return merged
    return child


# libyaml's parser where PyYAML has it; same safe constructors either way.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path, shown: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(shown, [("", f"cannot read file: {exc.strerror}")]) from None
    try:
        document = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(shown, [("", f"invalid YAML: {where}{problem}")]) from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(shown, [("", f"must be a mapping of settings, got {type(document).__name__}")])
    return document


def read_document(path: str | Path) -> dict[str, Any]:
    """An environment file with its ``extends`` chain merged, before validation."""
    return _load_chain(Path(path), str(path))


def _load_chain(path: Path, shown: str, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    document = _read_yaml(path, shown)
    parent_name = document.pop("extends", None)
    if parent_name is None:
        return document
    if not isinstance(parent_name, str) or not parent_name:
        raise ConfigError(shown, [("extends", "must be the file name of a parent environment file")])
    parent = _find_parent(path, parent_name)
    if parent is None:
        raise ConfigError(shown, [("extends", f"parent file {parent_name} not found beside this file, in "
                                              f"./environments/ or in {ENVIRONMENTS_DIR}")])
    if parent in seen or parent == path.resolve():
        raise ConfigError(shown, [("extends", f"circular: {parent_name} extends back to this file")])
    return _merge(_load_chain(parent, str(parent), seen + (path.resolve(),)), document)


def _find_parent(path: Path, parent_name: str) -> Path | None:
    """A parent beside the file first; then the shared files of ./environments and of this
    project, so a copied environment file (e.g. with other VPC IDs) still finds defaults.yaml."""
    for folder in (path.parent, Path.cwd() / "environments", ENVIRONMENTS_DIR):
        candidate = (folder / parent_name).resolve()
        if candidate.is_file():
            return candidate
    return None


def _field_path(location: tuple[Any, ...], document: Any) -> str:
    """Turn a pydantic location into a dotted path using pool names where they exist."""
    parts: list[str] = []
    node = document
    for item in location:
        if isinstance(item, int):
            name = node[item].get("name") if isinstance(node, list) and item < len(node) and \
                isinstance(node[item], dict) else None
            parts[-1:] = [f"{parts[-1]}[{name if isinstance(name, str) else item}]"] if parts else [f"[{item}]"]
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch":
        pattern = error["ctx"]["pattern"]
        return f"{error['input']!r} is not valid: expected {_HINTS.get(pattern, 'pattern ' + pattern)}"
    message = error["msg"].removeprefix("Value error, ")
    if kind.endswith("_type") or kind in ("literal_error", "enum"):
        value = error.get("input")
        message += f" (got {type(value).__name__} {value!r})" if not isinstance(value, (dict, list)) \
            else f" (got a {type(value).__name__})"
    return message


def validate(document: dict[str, Any], source: str) -> Environment:
    try:
        return Environment.model_validate(document)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            # Drop the union/choice tags pydantic adds (e.g. 'str', 'literal[...]', 'function-after').
            location = tuple(p for p in error["loc"] if isinstance(p, int) or not _is_tag(p))
            path, message = _field_path(location, document), _message(error)
            # Rules across fields say which field they are about: "subnets: need ...".
            about = re.match(r"^([a-z_][A-Za-z0-9_.]*): (.+)$", message, re.S)
            if error["type"] == "value_error" and about:
                field, message = about.groups()
                path = field if field.startswith(path + ".") or not path else f"{path}.{field}"
            problems.append((path, message))
        raise ConfigError(source, problems) from None


def _is_tag(part: str) -> bool:
    return part.startswith(("function-", "literal[", "constrained-")) or part in {"str", "int", "bool", "list", "dict", "none"}


def environments_folder() -> Path:
    """Where ``--env NAME`` looks: ./environments when there is one (your own project),
    else the environments shipped beside this package."""
    local = Path.cwd() / "environments"
    return local if local.is_dir() else ENVIRONMENTS_DIR


def load_environment(env: str | None = None, *, path: str | Path | None = None,
                     environments_dir: Path | None = None) -> Environment:
    """Load ``environments/<env>.yaml`` (or an explicit ``path``) into an Environment."""
    if path is None:
        if env is None:
            raise ValueError("give an environment name or a path")
        environments_dir = environments_dir or environments_folder()
        path = environments_dir / f"{env}.yaml"
        if not path.is_file():
            known = ", ".join(available_environments(environments_dir)) or "none"
            raise ConfigError(str(path), [("", f"unknown environment {env!r}; environments: {known}")])
    path = Path(path)
    return validate(read_document(path), str(path))


def available_environments(environments_dir: Path | None = None) -> list[str]:
    """Environment files that are complete environments (not bare shared defaults)."""
    return sorted(p.stem for p in (environments_dir or environments_folder()).glob("*.yaml") if not p.stem.startswith("_")
                  and p.stem != "defaults")


def json_schema() -> dict[str, Any]:
    schema = Environment.model_json_schema()
    schema["properties"]["extends"] = {"type": "string", "description": "Parent file to inherit from."}
    return schema
