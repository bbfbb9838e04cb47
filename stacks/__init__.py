"""The nested stacks of a K3s cluster, each a function of the environment."""

from __future__ import annotations

from k3s_infra.components.template import StackTemplate
from k3s_infra.config import Environment
from k3s_infra.model import naming
from k3s_infra.stacks import (
    agent_pool,
    api_endpoint,
    cluster_data,
    draining,
    identity,
    issuer_access,
    network,
    node_iam,
    security,
    servers,
)


def build_children(env: Environment) -> dict[str, StackTemplate]:
    """Every child stack, always (the root's shape never depends on sizes)."""
    children = {
        **({naming.STACK_NETWORK: network.build(env)} if env.network.managed else {}),
        naming.STACK_SECURITY: security.build(env),
        naming.STACK_API_ENDPOINT: api_endpoint.build(env),
        naming.STACK_CLUSTER_DATA: cluster_data.build(env),
        naming.STACK_NODE_IAM: node_iam.build(env),
        naming.STACK_IDENTITY: identity.build(env),
        naming.STACK_ISSUER_ACCESS: issuer_access.build(env),
        naming.STACK_SERVER_INIT: servers.build_init(env),
        naming.STACK_SERVERS: servers.build_joining(env),
    }
    if env.draining:
        children[naming.STACK_DRAINING] = draining.build(env)
    for pool in env.agent_pools:
        children[naming.agent_pool_stack(pool.name)] = agent_pool.build(env, pool)
    return children
