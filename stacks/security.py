"""Security stack: the server, agent and API load balancer security groups."""

from __future__ import annotations

from k3s_infra.components import security_groups
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import Environment
from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.stacks.parameters import declare


def build(env: Environment) -> StackTemplate:
    t = StackTemplate(f"k3s-infra {env.name}: security groups for K3s nodes and API", naming.cluster_tags(env))
    groups = security_groups.build(t, declare(t, o.VPC_ID), env.api, env.k3s.flannel_backend,
                                     naming.ccm_discovery_tags(env))
    t.output(o.SERVER_SECURITY_GROUP, groups.server, "Security group of K3s servers")
    t.output(o.AGENT_SECURITY_GROUP, groups.agent, "Security group of K3s agents")
    t.output(o.API_LB_SECURITY_GROUP, groups.api_lb, "Security group of the API load balancer")
    if groups.public_api_lb is not None:
        t.output(o.PUBLIC_API_LB_SECURITY_GROUP, groups.public_api_lb,
                 "Security group of the internet-facing API load balancer")
    return t
