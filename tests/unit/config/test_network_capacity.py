"""A created network's private subnets must hold the cluster at its largest
(k3s_infra/config/network.py ``check_capacity``): every server plus every pool at max_size.

Amazon VPC User Guide, "Subnet CIDR blocks": AWS reserves 5 addresses of every subnet (the
first four and the last), so a /28 holds 11. Besides the nodes, each private subnet holds the
internal API load balancer's address in that zone, and when nat_gateways is none one address
per interface endpoint (the Network stack's INTERFACE_SERVICES, sqs when the termination
handler drains, and the SSM Agent's channels node_access turns on: ssmmessages for Session
Manager, ec2messages for Run Command; AWS Systems Manager User Guide,
https://docs.aws.amazon.com/systems-manager/latest/userguide/setup-create-vpc.html lists ssm,
ssmmessages and ec2messages as the endpoints of managed nodes without internet access, and
"Reference: ec2messages, ssmmessages, and other API operations": ssmmessages carries sessions,
ec2messages commands when ssmmessages cannot). The split is the Network stack's
(components/network.py subnet_cidrs: the VPC cut into 2 * zones equal blocks, a power of two,
private first); the tests below pin that config computes the same prefix and endpoint count as
the stack builds.
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


def _created(staging: dict, cidr: str, zones: int, nat: str, pool_max: int, spot: bool = False,
             node_access: dict | None = None) -> dict:
    staging["network"]["create"] = {"cidr": cidr, "availability_zones": zones, "nat_gateways": nat}
    staging["agent_pools"][0]["max_size"] = pool_max
    if spot:
        staging["agent_pools"][0]["spot"] = {}
    if node_access is not None:
        staging["node_access"] = node_access
    return staging


ALL_ACCESS = {"session_manager": True, "run_command": True}
COMMANDS_ONLY = {"session_manager": False, "run_command": True}
NO_ACCESS = {"session_manager": False, "run_command": False}


def _interface_services(template) -> set[str]:
    """The short service names of the template's interface endpoints (com.amazonaws.<region>.<name>)."""
    return {r.properties["ServiceName"].rsplit(".", 1)[1] for r in template.resources.values()
            if isinstance(r, VPCEndpoint) and r.properties.get("VpcEndpointType") == "Interface"}


@pytest.mark.parametrize("draining", [False, True])
@pytest.mark.parametrize("access, agent", [(ALL_ACCESS, {"ssmmessages", "ec2messages"}),
                                           (COMMANDS_ONLY, {"ec2messages"}), (NO_ACCESS, set())])
def test_the_endpoint_count_is_the_network_stacks(env_document, draining, access, agent):
    staging = _created(env_document("staging"), "10.30.0.0/16", 3, "none", 6, spot=draining, node_access=access)
    services = _interface_services(network_stack.build(validate(staging, "env.yaml")).template)
    # ssm (registration) always; the channels only for what node_access turns on
    assert "ssm" in services and services & {"ssmmessages", "ec2messages"} == agent
    assert ("sqs" in services) == draining
    assert len(services) == INTERFACE_ENDPOINTS + draining + len(agent)


def test_node_access_is_on_by_default_so_a_network_without_nat_gets_both_channels(env_document):
    staging = _created(env_document("staging"), "10.30.0.0/16", 3, "none", 6)
    staging.pop("node_access", None)
    assert {"ssmmessages", "ec2messages"} <= _interface_services(
        network_stack.build(validate(staging, "env.yaml")).template)


@pytest.mark.parametrize("nat", ["one", "per-az"])
def test_with_nat_no_interface_endpoint_is_made(env_document, nat):
    staging = _created(env_document("staging"), "10.30.0.0/16", 3, nat, 6, node_access=ALL_ACCESS)
    assert _interface_services(network_stack.build(validate(staging, "env.yaml")).template) == set()


def test_the_adversarial_case_is_refused_with_its_numbers(env_document):
    staging = _created(env_document("staging"), "10.30.0.0/24", 6, "one", 198)
    error = refused(staging)
    assert paths(error) == ["network.create.cidr"]
    # /24 in 12 blocks of 16 -> /28, 11 usable; 6 zones * (11 - 1 load balancer) = 60 nodes.
    assert "10.30.0.0/24 over 6 zones makes /28 private subnets of 11 usable addresses" in str(error)
    assert "they hold 60 nodes, but the cluster can grow to 201 (servers.count 3 + agent_pools max_size 198)" \
        in str(error)


@pytest.mark.parametrize("nat, spot, access, room", [
    ("one", False, ALL_ACCESS, 60),        # 6 * (11 - 1)
    ("per-az", False, ALL_ACCESS, 60),
    ("none", False, NO_ACCESS, 18),        # 6 * (11 - 1 - 7 endpoints)
    ("none", True, NO_ACCESS, 12),         # 6 * (11 - 1 - 8): sqs for the termination handler
    ("none", False, COMMANDS_ONLY, 12),    # 6 * (11 - 1 - 8): ec2messages for Run Command
    ("none", False, ALL_ACCESS, 6),        # 6 * (11 - 1 - 9): ssmmessages and ec2messages
])
def test_the_capacity_is_exact(env_document, nat, spot, access, room):
    fits = _created(env_document("staging"), "10.30.0.0/24", 6, nat, room - 3, spot, access)
    assert validate(fits, "env.yaml").agent_pools[0].max_size == room - 3
    error = refused(_created(env_document("staging"), "10.30.0.0/24", 6, nat, room - 2, spot, access))
    assert paths(error) == ["network.create.cidr"] and f"they hold {room} nodes" in str(error)


def test_the_shipped_created_network_has_room(env_document):
    # staging: a /16 over 3 zones: /18 private subnets of 16,379 addresses each.
    assert validate(env_document("staging"), "env.yaml").network.create.cidr == "10.30.0.0/16"
