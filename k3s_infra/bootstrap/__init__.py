"""Node boot: user data for each node role (filled in by the boot work)."""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import AWSHelperFn, Base64, Ref, Sub

from k3s_infra.config import AgentPool, Environment

ROLES = ("server-init", "server", "agent")


@dataclass(frozen=True)
class BootRefs:
    """Node-stack parameters the boot script needs (None where a role has no use for one)."""

    api_dns_name: Ref
    agent_token_secret: Ref
    token_secret: Ref | None = None
    kubeconfig_secret: Ref | None = None
    cluster_state_parameter: Ref | None = None
    snapshot_bucket: Ref | None = None


def user_data(env: Environment, role: str, refs: BootRefs, pool: AgentPool | None = None) -> AWSHelperFn:
    if role not in ROLES:
        raise ValueError(f"unknown node role {role!r}")
    values = {name: ref for name, ref in vars(refs).items() if ref is not None}
    lines = [f"#!/bin/bash", f"# k3s-infra {role} node of {env.name}"]
    lines += [f"{name.upper()}='${{{name}}}'" for name in values]
    return Base64(Sub("\n".join(lines) + "\n", **values))
