"""Network stack (``network.create`` only): the VPC and subnets the other stacks receive
as the same Parameters a brought network fills from config (VpcId, VpcCidr, SubnetIds,
PublicSubnetIds, LoadBalancerSubnetIds and the server groups' FirstServerSubnetIds, JoiningServerSubnetIds), so a
managed and a brought network render the same children."""

from __future__ import annotations

from troposphere import Join

from k3s_infra.components import network
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import Environment
from k3s_infra.model import naming, placement
from k3s_infra.model import outputs as o


def build(env: Environment) -> StackTemplate:
    spec = env.network.create
    t = StackTemplate(f"k3s-infra {env.name}: VPC {spec.cidr} over {spec.availability_zones} zones, "
                      f"NAT {spec.nat_gateways}", naming.cluster_tags(env))
    # The node termination handler's queue, the SSM Agent's channels (config/network.py).
    refs = network.build(t, spec, lambda service, gateway: naming.endpoint_service_name(env.region, service, gateway),
                         env.optional_endpoints,
                         {public: naming.subnet_discovery_tags(env, public) for public in (True, False)})
    t.output(o.VPC_ID, refs.vpc_id, "VPC of the cluster")
    t.output(o.VPC_CIDR, refs.vpc_cidr, "CIDR block of the VPC")
    t.output(o.SUBNET_IDS, refs.private_subnet_ids, "Private subnets of the nodes")
    t.output(o.LOAD_BALANCER_SUBNET_IDS, refs.private_subnet_ids,
             "Private subnets of the internal API load balancer (one per zone already)")
    t.output(o.PUBLIC_SUBNET_IDS, refs.public_subnet_ids, "Public subnets: the internet-facing API load balancer")
    # The n-th private subnet is in zone Fn::Select(n, Fn::GetAZs): its index is its zone.
    split = placement.server_subnets(list(enumerate(refs.private_subnets)), lambda s: s[0], env.servers.count)
    t.output(o.FIRST_SERVER_SUBNET_IDS, Join(",", [ref for _, ref in split.first]),
             "Private subnets of the cluster-init server (model/placement.py)")
    t.output(o.JOINING_SERVER_SUBNET_IDS, Join(",", [ref for _, ref in split.joining]),
             "Private subnets of the joining servers (model/placement.py)")
    return t
