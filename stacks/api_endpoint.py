"""API endpoint stack: the network load balancer in front of the K3s servers."""

from __future__ import annotations

from k3s_infra import naming
from k3s_infra import outputs as o
from k3s_infra.components import load_balancer
from k3s_infra.config import Environment
from k3s_infra.template import StackTemplate
from stacks.parameters import declare_all


def build(env: Environment) -> StackTemplate:
    t = StackTemplate(f"k3s-infra {env.name}: K3s API network load balancer ({env.api.scheme})",
                      naming.cluster_tags(env))
    p = declare_all(t, o.VPC_ID, o.SUBNET_IDS, o.API_LB_SECURITY_GROUP)
    endpoint = load_balancer.build(t, env.api, p[o.VPC_ID], p[o.SUBNET_IDS], p[o.API_LB_SECURITY_GROUP])
    t.output(o.API_DNS_NAME, endpoint.dns_name, "DNS name of the K3s API")
    t.output(o.API_TARGET_GROUP, endpoint.target_group, "Target group the servers register in")
    t.output(o.API_LOAD_BALANCER, endpoint.load_balancer, "ARN of the API load balancer")
    return t
