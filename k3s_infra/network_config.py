"""Configuration of the network a cluster lives in and of its API endpoint."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from k3s_infra.config_types import AvailabilityZone, Strict, SubnetId, VpcId, _network


class Subnet(Strict):
    id: SubnetId
    az: AvailabilityZone | None = Field(None, description="Availability zone; lets the AZ spread be checked.")


class Network(Strict):
    vpc_id: VpcId
    vpc_cidr: str = Field(description="CIDR of the VPC; nodes' NLB traffic comes from it.")
    subnets: list[Subnet] = Field(min_length=2, description="Private subnets for nodes and the NLB.")

    _cidr = field_validator("vpc_cidr")(_network)

    @model_validator(mode="after")
    def _distinct(self) -> Network:
        ids = [s.id for s in self.subnets]
        if len(set(ids)) != len(ids):
            raise ValueError("subnets: the same subnet is listed twice")
        zones = [s.az for s in self.subnets if s.az]
        if len(zones) == len(self.subnets) and len(set(zones)) < 2:
            raise ValueError("subnets: need at least two distinct availability zones for HA")
        return self


class Api(Strict):
    scheme: Literal["internal", "internet-facing"] = "internal"
    # EC2 allows 60 inbound rules per security group by default; nodes take two.
    allowed_cidrs: list[str] = Field(
        default_factory=list, max_length=50,
        description="CIDRs allowed to reach the K3s API (6443) through the NLB (at most 50).")

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        networks = [_network(v) for v in values]
        repeated = sorted({n for n in networks if networks.count(n) > 1})
        if repeated:
            raise ValueError(f"listed more than once: {', '.join(repeated)}")
        return networks

    @model_validator(mode="after")
    def _public_needs_cidrs(self) -> Api:
        if self.scheme == "internet-facing" and not self.allowed_cidrs:
            raise ValueError("allowed_cidrs: an internet-facing API needs at least one CIDR")
        return self
