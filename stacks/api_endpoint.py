"""API endpoint stack: the internal network load balancer every node joins through
and, with ``api.scheme: internet-facing``, a second, public one for people and CI.

Nodes never use the public one: security-group references match only private
source IPs, so a node reaching the API by a public address would never be let in
(https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html#security-group-referencing;
pinned by tests/unit/stacks/test_api_endpoint.py: every node's join URL is the internal NLB).

Each DNS name is also written to an SSM parameter the nodes read at boot (roles.Role.late), so
their launch templates carry no load balancer's name.
"""

from __future__ import annotations

from k3s_infra.components import boot_facts, load_balancer
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import Environment
from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.stacks.parameters import declare_all


def build(env: Environment) -> StackTemplate:
    public = env.api.scheme == load_balancer.PUBLIC
    doors = "internal and internet-facing" if public else "internal"
    t = StackTemplate(f"k3s-infra {env.name}: K3s API network load balancers ({doors})", naming.cluster_tags(env))
    p = declare_all(t, o.VPC_ID, o.LOAD_BALANCER_SUBNET_IDS, o.API_LB_SECURITY_GROUP)
    endpoint = load_balancer.build(t, load_balancer.INTERNAL, p[o.VPC_ID], p[o.LOAD_BALANCER_SUBNET_IDS],
                                   p[o.API_LB_SECURITY_GROUP])
    boot_facts.publish(t, env, "api_dns_name", endpoint.dns_name)
    t.output(o.API_DNS_NAME, endpoint.dns_name, "DNS name of the internal K3s API (nodes join through it)")
    t.output(o.API_TARGET_GROUP, endpoint.target_group, "Target group the servers register in")
    t.output(o.API_LOAD_BALANCER, endpoint.load_balancer, "ARN of the internal API load balancer")
    if public:
        q = declare_all(t, o.PUBLIC_SUBNET_IDS, o.PUBLIC_API_LB_SECURITY_GROUP)
        door = load_balancer.build(t, load_balancer.PUBLIC, p[o.VPC_ID], q[o.PUBLIC_SUBNET_IDS],
                                   q[o.PUBLIC_API_LB_SECURITY_GROUP])
        boot_facts.publish(t, env, "public_api_dns_name", door.dns_name)
        t.output(o.PUBLIC_API_DNS_NAME, door.dns_name, "DNS name of the internet-facing K3s API")
        t.output(o.PUBLIC_API_TARGET_GROUP, door.target_group, "Public target group the servers register in")
        t.output(o.PUBLIC_API_LOAD_BALANCER, door.load_balancer, "ARN of the internet-facing API load balancer")
    return t
