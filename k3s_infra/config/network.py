"""Configuration of the network a cluster lives in and of its API endpoint.

A network is either brought (``vpc_id``, ``vpc_cidr``, ``subnets`` and, for an
internet-facing API, ``public_subnets``) or created (``create``: the Network stack
builds a VPC with a public and a private subnet per availability zone).
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from k3s_infra.config.types import (
    AvailabilityZone,
    Strict,
    SubnetId,
    VpcId,
    network_cidr,
)

WORLD = ("0.0.0.0/0", "::/0")
_WORLDS = tuple(ipaddress.ip_network(w) for w in WORLD)


def covers_the_world(cidrs: list[str]) -> str | None:
    """'0.0.0.0/0' or '::/0' when the union of ``cidrs`` is every address of that family,
    however it is split (0.0.0.0/1 + 128.0.0.0/1, 256 /8s). Only the whole space counts: a
    range that leaves out even one address (0.0.0.0/1 alone, everything but 10.0.0.0/8) is
    the user's explicit choice and is accepted; a threshold below the whole would be
    arbitrary, and the whole space is what open_to_world names."""
    for world in _WORLDS:
        family = [n for n in map(ipaddress.ip_network, cidrs) if n.version == world.version]
        if family and list(ipaddress.collapse_addresses(family)) == [world]:  # type: ignore[arg-type]
            return str(world)
    return None


class Subnet(Strict):
    id: SubnetId
    az: AvailabilityZone | None = Field(
        None, description="Availability zone; lets the AZ spread be checked. Required with three or more "
                          "servers, which are placed by zone.")


class ManagedNetwork(Strict):
    cidr: str = Field(description="CIDR of the VPC to create; split into a public and a private subnet per AZ.")
    availability_zones: int = Field(3, ge=2, le=6, description="How many of the region's AZs to use.")
    nat_gateways: Literal["one", "per-az", "none"] = Field(
        "one", description="NAT for the private subnets: one shared, one per AZ, or none (VPC endpoints only: "
                           "K3s comes from the artifact bucket, but charts and container images other than "
                           "K3s's own must come from a registry in reach: docs/network.md 'Without NAT').")

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        value = network_cidr(value)
        if ":" in value or not 16 <= int(value.split("/")[1]) <= 24:
            raise ValueError(f"an IPv4 CIDR of /16 to /24 (VPC limits, room for subnets), got {value}")
        return value


def _spread(field: str, subnets: list[Subnet], required: bool) -> None:
    ids = [s.id for s in subnets]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{field}: the same subnet is listed twice")
    zones = [s.az for s in subnets if s.az]
    if (required or zones) and len(zones) == len(subnets) and len(set(zones)) < 2:
        raise ValueError(f"{field}: need at least two distinct availability zones for HA")


def _one_per_zone(field: str, subnets: list[Subnet]) -> None:
    """Public subnets serve only the internet-facing load balancer, which takes one subnet per
    zone (ELB API Reference, CreateLoadBalancer, Subnets): a second one in a zone is a mistake.
    Node subnets may share a zone (the internal load balancer gets the first of each)."""
    first: dict[str, str] = {}
    for index, subnet in enumerate(subnets):
        if subnet.az and subnet.az in first:
            raise ValueError(f"{field}[{index}].az: {subnet.az} already has {first[subnet.az]}; the internet-facing "
                             f"load balancer takes one subnet per availability zone")
        if subnet.az:
            first[subnet.az] = subnet.id


# What takes addresses in each private subnet of a created network besides the nodes: the
# internal API load balancer, one per zone subnet (ELB, "Network Load Balancers": a node per
# enabled zone), and when nat_gateways is none one interface endpoint per service per subnet
# (components/network.py INTERFACE_SERVICES, 7, and optional_endpoints; a test pins the count).
# AWS keeps 5 addresses of every subnet (Amazon VPC User Guide, "Subnet CIDR blocks": the first
# four and the last). Service load balancers the cloud controller adds for the cluster's own
# Services are not counted: their number is not in this file.
AWS_RESERVED_PER_SUBNET = 5
LOAD_BALANCER_ADDRESSES = 1
INTERFACE_ENDPOINTS = 7


def optional_endpoints(draining: bool, session_manager: bool, run_command: bool) -> tuple[str, ...]:
    """Interface endpoints a created network without NAT adds for what the environment turns on:
    the termination handler's queue (sqs), and the SSM Agent's channels (the ssm endpoint, its
    registration, is always there). Sessions travel over ssmmessages; Run Command over
    ssmmessages when the agent can open that channel, else over ec2messages (AWS Systems Manager
    User Guide, "Reference: ec2messages, ssmmessages, and other API operations", and
    https://docs.aws.amazon.com/systems-manager/latest/userguide/setup-create-vpc.html: agents
    before 3.3.40.0 use ec2messages). Since 3.3.40.0 the agent stops polling ec2messages once its
    ssmmessages channel connects and polls it again when that channel is refused
    (aws/amazon-ssm-agent RELEASENOTES.md 3.3.40.0, agent/ssmconnectionchannel), so ssmmessages
    follows session_manager, like the node roles' ssmmessages grant (components/iam.py): without
    that grant the endpoint would carry nothing and commands come over ec2messages, which
    follows run_command."""
    return (("sqs",) * draining + ("ssmmessages",) * session_manager + ("ec2messages",) * run_command)


def subnet_prefix(cidr: str, zones: int) -> int:
    """Prefix length of a created network's subnets: the VPC split into 2 * zones equal blocks
    (a power of two), as components/network.py subnet_cidrs splits it."""
    return ipaddress.ip_network(cidr).prefixlen + math.ceil(math.log2(2 * zones))


def check_capacity(create: ManagedNetwork, nodes: int, optional: tuple[str, ...], sizes: str) -> None:
    """Refuse a created network whose private subnets cannot hold ``nodes`` (every server and
    every pool at max_size) besides what else takes their addresses (``optional``: the
    environment's optional_endpoints)."""
    zones = create.availability_zones
    prefix = subnet_prefix(create.cidr, zones)
    usable = 2 ** (32 - prefix) - AWS_RESERVED_PER_SUBNET
    endpoints = INTERFACE_ENDPOINTS + len(optional) if create.nat_gateways == "none" else 0
    room = zones * max(0, usable - LOAD_BALANCER_ADDRESSES - endpoints)
    if nodes > room:
        taken = f"1 for the internal API load balancer{f' and {endpoints} for interface endpoints' * bool(endpoints)}"
        raise ValueError(f"network.create.cidr: {create.cidr} over {zones} zones makes /{prefix} private subnets of "
                         f"{usable} usable addresses (AWS keeps {AWS_RESERVED_PER_SUBNET}); after {taken} in each "
                         f"they hold {room} nodes, but the cluster can grow to {nodes} ({sizes}); give a larger "
                         "cidr or fewer zones")


# Zones three or more servers need: the first server gets one zone, the others the rest, and
# with three zones no zone holds a majority, so an AZ outage keeps etcd quorum.
# k3s_infra/model/placement.py derives it (zones_needed); its test pins that the two agree.
SERVER_ZONES = 3


def check_server_zones(network: Network, servers: int) -> None:
    """Refuse a network whose node subnets cannot spread ``servers`` so that no zone holds a
    majority: every subnet's ``az`` known (brought) and at least SERVER_ZONES zones."""
    if servers == 1:  # a lone server has no quorum to keep through a zone outage
        return
    needs = f"servers.count {servers} needs"
    why = "so that no zone holds a majority of the servers (an AZ outage then keeps etcd quorum)"
    if network.create:
        if network.create.availability_zones < SERVER_ZONES:
            raise ValueError(f"network.create.availability_zones: {needs} at least {SERVER_ZONES} zones {why}, "
                             f"got {network.create.availability_zones}")
        return
    for index, subnet in enumerate(network.subnets):
        if subnet.az is None:
            raise ValueError(f"network.subnets[{index}].az: {needs} the zone of every node subnet, to place "
                             f"the servers {why}")
    zones = sorted({s.az for s in network.subnets if s.az})
    if len(zones) < SERVER_ZONES:
        raise ValueError(f"network.subnets: {needs} subnets in at least {SERVER_ZONES} availability zones {why}, "
                         f"got {len(zones)} ({', '.join(zones)})")


class Network(Strict):
    create: ManagedNetwork | None = Field(None, description="Create the VPC instead of bringing one.")
    vpc_id: VpcId | None = None
    vpc_cidr: str | None = Field(None, description="CIDR of the VPC; nodes' NLB traffic comes from it.")
    subnets: list[Subnet] = Field(default_factory=list, description="Private subnets for nodes and the internal NLB.")
    public_subnets: list[Subnet] = Field(
        default_factory=list, description="Public subnets of the internet-facing NLB (api.scheme internet-facing).")

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        # A VPC's primary CIDR is IPv4, from /16 to /28 (Amazon VPC User Guide, "VPC CIDR blocks":
        # "The allowed block size is between a /16 netmask ... and /28 netmask"); IPv6 blocks are
        # only ever associated in addition.
        network = ipaddress.ip_network(network_cidr(value))
        if network.version != 4 or not 16 <= network.prefixlen <= 28:
            raise ValueError(f"a VPC's CIDR is IPv4 from /16 to /28, got {network}")
        return str(network)

    @model_validator(mode="before")
    @classmethod
    def _cidr_of_created(cls, data: Any) -> Any:
        # A created VPC's CIDR is the one it is created with; everything downstream reads vpc_cidr.
        if isinstance(data, dict) and isinstance(data.get("create"), dict) and "vpc_cidr" not in data \
                and isinstance(data["create"].get("cidr"), str):
            return {**data, "vpc_cidr": data["create"]["cidr"]}
        return data

    @model_validator(mode="after")
    def _shape(self) -> Network:
        if self.create:
            brought = [f for f in ("vpc_id", "subnets", "public_subnets") if getattr(self, f)]
            if brought:
                raise ValueError(f"{brought[0]}: not allowed with network.create (the Network stack makes it)")
            if self.vpc_cidr != self.create.cidr:
                raise ValueError(f"vpc_cidr: must equal create.cidr {self.create.cidr} (or be left out)")
            return self
        for field in ("vpc_id", "vpc_cidr"):
            if getattr(self, field) is None:
                raise ValueError(f"{field}: required field is missing (or give network.create)")
        if len(self.subnets) < 2:
            raise ValueError("subnets: at least two subnets are needed (or give network.create)")
        _spread("subnets", self.subnets, required=True)
        _spread("public_subnets", self.public_subnets, required=False)
        _one_per_zone("public_subnets", self.public_subnets)
        if {s.id for s in self.subnets} & {s.id for s in self.public_subnets}:
            raise ValueError("public_subnets: a subnet cannot be both private (subnets) and public")
        return self

    @property
    def managed(self) -> bool:
        return self.create is not None


class Api(Strict):
    scheme: Literal["internal", "internet-facing"] = Field(
        "internal", description="internet-facing adds a second, public NLB in network.public_subnets; nodes "
                                "always join through the internal one.")
    # EC2 allows 60 inbound rules per security group by default; nodes take two.
    allowed_cidrs: list[str] = Field(
        default_factory=list, max_length=50,
        description="CIDRs allowed to reach the K3s API (6443): through the public NLB when internet-facing, "
                    "else through the internal one (at most 50).")
    open_to_world: bool = Field(False, description="Allow 0.0.0.0/0 or ::/0 in allowed_cidrs.")

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        networks = [network_cidr(v) for v in values]
        repeated = sorted({n for n in networks if networks.count(n) > 1})
        if repeated:
            raise ValueError(f"listed more than once: {', '.join(repeated)}")
        return networks

    @model_validator(mode="after")
    def _public_needs_cidrs(self) -> Api:
        if self.scheme == "internet-facing" and not self.allowed_cidrs:
            raise ValueError("allowed_cidrs: an internet-facing API needs at least one CIDR")
        world = [c for c in self.allowed_cidrs if c in WORLD]
        if world and not self.open_to_world:
            raise ValueError(f"allowed_cidrs: {world[0]} opens the K3s API to the whole internet; "
                             "set api.open_to_world: true if that is really meant")
        union = covers_the_world(self.allowed_cidrs)
        if union and not self.open_to_world:
            raise ValueError(f"allowed_cidrs: together these ranges cover all of {union}, which opens the K3s API "
                             "to the whole internet; set api.open_to_world: true if that is really meant")
        # Both API load balancers are IPv4 (no IpAddressType is set: ELBv2 CreateLoadBalancer's
        # default is ipv4) in an IPv4 VPC: an IPv6 source never reaches them, so an IPv6 range
        # would only look like access.
        ipv6 = [c for c in self.allowed_cidrs if ":" in c]
        if ipv6:
            raise ValueError(f"allowed_cidrs: {ipv6[0]} is an IPv6 range, but the API load balancers are IPv4 "
                             "only: it would never match; list IPv4 ranges")
        return self
