"""Agent pools (``agent_pools:``): one auto scaling group and one nested stack each.

A pool's name becomes other names on the way to AWS (model/naming.py): the stack's logical
ID ``AgentPool`` + camel(name) and its template file, kebab-case of that ID. Two names
that become one identifier would be one stack, one pool silently lost (``web-1`` and
``web1`` are both AgentPoolWeb1; ``a-b`` and ``ab`` are AgentPoolAB and AgentPoolAb, one
file agent-pool-ab.yaml). ``pool_identities`` spells those transformations here, where
config can see them; tests/unit/config/test_pool_identities.py pins that they equal
naming's.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from k3s_infra.config import rules, secret_scan
from k3s_infra.config.text import camel, kebab
from k3s_infra.config.types import (
    InstanceType,
    LabelKey,
    LabelValue,
    Name,
    Strict,
    Taint,
)


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

    @field_validator("labels", mode="before")
    @classmethod
    def _no_secrets(cls, labels: Any) -> Any:
        # Node labels are readable by anyone who can list nodes (and become autoscaler tags).
        return secret_scan.refuse_credentials(labels, "node labels are readable by anyone who can list nodes")

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


def pool_identities(name: str) -> dict[str, str]:
    """What a pool's name becomes: its stack's logical ID (naming.agent_pool_stack) and its
    template file (naming.template_file(stack, 'yaml'))."""
    stack = "AgentPool" + camel(name)
    return {"stack": stack, "template file": f"{kebab(stack)}.yaml"}


def check_pool_names(pools: list[AgentPool]) -> None:
    """Refuse two pools whose names become one stack or one template file. Logical IDs are
    compared ignoring case: their template files (kebab-case, lowercase) would be one."""
    seen: dict[tuple[str, str], str] = {}
    for pool in pools:
        identities = pool_identities(pool.name)
        for what, value in identities.items():
            other = seen.setdefault((what, value.lower()), pool.name)
            if other != pool.name:
                stacks = sorted({pool_identities(other)["stack"], identities["stack"]})
                raise ValueError(f"agent_pools[{pool.name}].name: {other!r} and {pool.name!r} both become stack "
                                 f"{' / '.join(stacks)} and template file {identities['template file']}: one "
                                 "pool would be lost; rename one")
