"""A created network's private subnets must hold the cluster at its largest
(k3s_infra/config/network.py ``check_capacity``): every server plus every pool at max_size.

Amazon VPC User Guide, "Subnet CIDR blocks": AWS reserves 5 addresses of every subnet (the
first four and the last), so a /28 holds 11. Besides the nodes, each private subnet holds the
internal API load balancer's address in that zone, and when nat_gateways is none one address
per interface endpoint (the Network stack's INTERFACE_SERVICES, and sqs when the termination
handler drains). The split is the Network stack's (components/network.py subnet_cidrs: the VPC
cut into 2 * zones equal blocks, a power of two, private first); the tests below pin that
config computes the same prefix and endpoint count as the stack builds.
"""

from __future__ import annotations

import ipaddress

import pytest
from troposphere.ec2 import VPCEndpoint

from k3s_infra.components import network as network_component
from k3s_infra.config import validate
from k3s_infra.config.network import INTERFACE_ENDPOINTS, subnet_prefix
from k3s_infra.stacks import network as network_stack
from tests.support.config_errors import paths, refused


@pytest.mark.parametrize("cidr, zones", [("10.30.0.0/24", 6), ("10.30.0.0/16", 3), ("10.0.0.0/20", 2),
                                         ("172.16.0.0/22", 5), ("192.168.0.0/24", 4), ("10.1.0.0/18", 6)])
def test_the_prefix_is_the_network_stacks(cidr, zones):
    private, public = network_component.subnet_cidrs(cidr, zones)
    assert {ipaddress.ip_network(c).prefixlen for c in private + public} == {subnet_prefix(cidr, zones)}


def _created(staging: dict, cidr: str, zones: int, nat: str, pool_max: int, spot: bool = False) -> dict:
    staging["network"]["create"] = {"cidr": cidr, "availability_zones": zones, "nat_gateways": nat}
    staging["agent_pools"][0]["max_size"] = pool_max
    if spot:
        staging["agent_pools"][0]["spot"] = {}
    return staging


@pytest.mark.parametrize("draining", [False, True])
def test_the_endpoint_count_is_the_network_stacks(env_document, draining):
    staging = _created(env_document("staging"), "10.30.0.0/16", 3, "none", 6, spot=draining)
    template = network_stack.build(validate(staging, "env.yaml")).template
    interfaces = [r for r in template.resources.values()
                  if isinstance(r, VPCEndpoint) and r.properties.get("VpcEndpointType") == "Interface"]
    assert len(interfaces) == INTERFACE_ENDPOINTS + draining


def test_the_adversarial_case_is_refused_with_its_numbers(env_document):
    staging = _created(env_document("staging"), "10.30.0.0/24", 6, "one", 198)
    error = refused(staging)
    assert paths(error) == ["network.create.cidr"]
    # /24 in 12 blocks of 16 -> /28, 11 usable; 6 zones * (11 - 1 load balancer) = 60 nodes.
    assert "10.30.0.0/24 over 6 zones makes /28 private subnets of 11 usable addresses" in str(error)
    assert "they hold 60 nodes, but the cluster can grow to 201 (servers.count 3 + agent_pools max_size 198)" \
        in str(error)


@pytest.mark.parametrize("nat, spot, room", [
    ("one", False, 60),        # 6 * (11 - 1)
    ("per-az", False, 60),
    ("none", False, 18),       # 6 * (11 - 1 - 7 endpoints)
    ("none", True, 12),        # 6 * (11 - 1 - 8): sqs for the termination handler
])
def test_the_capacity_is_exact(env_document, nat, spot, room):
    fits = _created(env_document("staging"), "10.30.0.0/24", 6, nat, room - 3, spot)
    assert validate(fits, "env.yaml").agent_pools[0].max_size == room - 3
    error = refused(_created(env_document("staging"), "10.30.0.0/24", 6, nat, room - 2, spot))
    assert paths(error) == ["network.create.cidr"] and f"they hold {room} nodes" in str(error)


def test_the_shipped_created_network_has_room(env_document):
    # staging: a /16 over 3 zones: /18 private subnets of 16,379 addresses each.
    assert validate(env_document("staging"), "env.yaml").network.create.cidr == "10.30.0.0/16"
