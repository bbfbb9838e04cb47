"""Small readers of a rendered environment (tests/conftest.py ``Rendered``): its node stacks,
an agent pool's stack ID (spelled here, not by naming.agent_pool_stack) and whether the API
has a public door. Used by several test modules."""

from __future__ import annotations

NODE_STACKS = ("ServerInit", "Servers")


def node_stacks(r) -> list[str]:
    return [s for s in r.templates if s in NODE_STACKS or s.startswith("AgentPool")]


def pool_stack(pool) -> str:
    return "AgentPool" + "".join(w.capitalize() for w in pool.name.split("-"))


def public_door(r) -> bool:
    return r.env.api.scheme == "internet-facing"
