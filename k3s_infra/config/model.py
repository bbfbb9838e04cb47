"""Typed model of an environment file: one strict pydantic section per key.

Unknown keys are refused at every level and domain rules (etcd quorum, pool sizes,
CIDRs, ID shapes) are checked here and in the sections' own modules (``k3s``, ``pools``,
``network``, ``addons``, ``workload_roles``); ``loading`` reads files into this model and
turns every failure into one ``ConfigError``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from k3s_infra.config import architectures, catalog, defaults, rules, secret_scan
from k3s_infra.config.addons import (
    Addons,
    check_chart_kube_versions,
    check_cluster_autoscaler,
)
from k3s_infra.config.k3s import K3s
from k3s_infra.config.network import Api, Network, check_capacity, check_server_zones, optional_endpoints
from k3s_infra.config.pools import AgentPool, check_pool_names
from k3s_infra.config.text import shown as shown_value
from k3s_infra.config.types import (
    AccountId,
    AmiId,
    BucketName,
    InstanceType,
    Name,
    Region,
    SsmPath,
    StackName,
    Strict,
    TagKey,
    TagValue,
)
from k3s_infra.config.workload_roles import (
    MAX_ROLES,
    WorkloadRole,
    check_workload_roles,
)

# --- sections -----------------------------------------------------------------

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

    @field_validator("tags", mode="before")
    @classmethod
    def _no_secrets(cls, tags: Any) -> Any:
        # Tags go on every resource: anyone who can describe one reads them.
        return secret_scan.refuse_credentials(tags, "tags are readable by anyone who can describe the resources")

    @field_validator("tags")
    @classmethod
    def _not_reserved(cls, tags: dict[str, str]) -> dict[str, str]:
        for key, value in tags.items():
            try:
                rules.user_tag(key, value)
            except ValueError as exc:
                # "<key>: ..." names the field deploy.tags.<key> where loading can read the key back
                named = re.fullmatch(r"[a-z_][^\s:]*", key)
                raise ValueError(f"{key}: {exc}" if named else f"tag key {key!r}: {exc}") from None
        return tags


class NodeAccessSettings(Strict):
    """Reaching nodes through AWS Systems Manager (no inbound port, no key pair): what the node
    roles allow their SSM Agent. Both on by default; an environment that forbids interactive
    access sets session_manager false."""

    session_manager: bool = Field(
        True, description="`k3s-infra shell`: Session Manager sessions on the nodes (the agent's ssmmessages "
                          "channels). Off: the node roles get no ssmmessages permission and `shell` refuses.")
    run_command: bool = Field(
        True, description="`k3s-infra snapshots create`: Run Command on the servers (SSM Agent registration "
                          "and its ec2messages channel). Needs session_manager off to be off too.")

    @model_validator(mode="after")
    def _channels(self) -> NodeAccessSettings:
        # The agent takes Run Command documents through the Session Manager channel (ssmmessages)
        # whenever it can reach it, through ec2messages only otherwise (AWS Systems Manager User
        # Guide, "Reference: ec2messages, ssmmessages, and other API operations"; amazon-ssm-agent
        # RELEASENOTES 3.1.821.0): no IAM policy grants sessions without also delivering commands.
        if self.session_manager and not self.run_command:
            raise ValueError("run_command: false needs session_manager: false too; the Session Manager "
                             "channel (ssmmessages) also delivers Run Command, so commands cannot be "
                             "turned off while sessions are on")
        return self


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
    node_access: NodeAccessSettings = Field(
        default_factory=NodeAccessSettings,
        description="Node access through AWS Systems Manager: `shell` (Session Manager) and "
                    "`snapshots create` (Run Command).")
    addons: Addons = Field(default_factory=Addons)
    workload_roles: list[WorkloadRole] = Field(
        default_factory=list, max_length=MAX_ROLES,
        description="IAM roles for Kubernetes service accounts (pod IAM through the cluster's OIDC issuer).")

    @model_validator(mode="after")
    def _consistent(self) -> Environment:
        names = [p.name for p in self.agent_pools]
        if len(set(names)) != len(names):
            raise ValueError("agent_pools: pool names must be unique")
        check_pool_names(self.agent_pools)
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
                partition = rules.partition_of(self.region)[0]
                if arn.split(":")[1] != partition:
                    raise ValueError(f"addons.{name}.secret_values.{key}: the ARN's partition is {arn.split(':')[1]}, "
                                     f"not {partition}, the partition of {self.region}")
        for field in ("subnets", "public_subnets"):
            for subnet in getattr(self.network, field):
                if subnet.az and not subnet.az.startswith(self.region):
                    raise ValueError(f"network.{field}: {subnet.id} is in {subnet.az}, outside region {self.region}")
        _check_public_subnets(self.network, self.api)
        check_workload_roles(self.workload_roles, rules.partition_of(self.region)[0], self.account_id,
                             catalog.reserved_service_accounts())
        check_server_zones(self.network, self.servers.count)
        if self.network.create:
            check_capacity(self.network.create, nodes, self.optional_endpoints,
                           f"servers.count {self.servers.count} + agent_pools max_size {nodes - self.servers.count}")
        for arch in ("x86_64", "arm64"):
            too_long = rules.ssm_arn_too_long(getattr(self.nodes.ami_parameter, arch),
                                              rules.partition_of(self.region)[0], self.region, self.account_id)
            if too_long:
                raise ValueError(f"nodes.ami_parameter.{arch}: {too_long}")
        vpc = ipaddress.ip_network(self.network.vpc_cidr)
        for field in ("cluster_cidr", "service_cidr"):
            if ipaddress.ip_network(getattr(self.k3s, field)).overlaps(vpc):
                raise ValueError(f"k3s.{field}: {getattr(self.k3s, field)} overlaps network.vpc_cidr {vpc}")
        check_chart_kube_versions(self)
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

    @property
    def optional_endpoints(self) -> tuple[str, ...]:
        """Interface endpoints a created network without NAT adds for what this file turns on."""
        return optional_endpoints(self.draining, self.node_access.session_manager, self.node_access.run_command)

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
