"""The K3s API is never opened to the whole internet by halves (k3s_infra/config/network.py):
what a security group admits is the union of its rules' ranges, so api.allowed_cidrs is
judged by the union of its ranges (ipaddress.collapse_addresses), however the space is split.

The rule is exact, by choice: only a union that is every address of a family needs
api.open_to_world. A range that leaves out any address (0.0.0.0/1 alone, everything but
10.0.0.0/8) is accepted: any threshold short of the whole space would be arbitrary, and the
whole space is what open_to_world names.

IPv6: both API load balancers are created without IpAddressType, which ELBv2
CreateLoadBalancer defaults to ipv4, in a VPC whose CIDR is IPv4 (Amazon VPC User Guide,
"VPC CIDR blocks": a VPC's CIDR is IPv4, /16 to /28; IPv6 blocks are only added to it). An
IPv6 range in allowed_cidrs would never match, so it is refused rather than shown as access.
"""

from __future__ import annotations

import ipaddress

import pytest

from k3s_infra.config import validate
from k3s_infra.config.network import covers_the_world
from tests.support.config_errors import paths, refused


def _eighths() -> list[str]:
    return [f"{i * 32}.0.0.0/3" for i in range(8)]


WHOLE_BY_PARTS = {
    "two halves": ["0.0.0.0/1", "128.0.0.0/1"],
    "halves listed backwards": ["128.0.0.0/1", "0.0.0.0/1"],
    "eight /3s": _eighths(),
    "uneven parts": ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/3", "160.0.0.0/3", "192.0.0.0/2"],
    "overlapping parts": ["0.0.0.0/1", "64.0.0.0/2", "128.0.0.0/1", "203.0.113.0/24"],
}


@pytest.mark.parametrize("case", sorted(WHOLE_BY_PARTS))
def test_ranges_that_together_are_the_whole_ipv4_space_need_open_to_world(prod, case):
    cidrs = WHOLE_BY_PARTS[case]
    prod["api"]["allowed_cidrs"] = cidrs
    error = refused(prod)
    assert paths(error) == ["api.allowed_cidrs"] and "open_to_world" in str(error)
    assert "0.0.0.0/0" in str(error)


def test_256_slash_8s_are_the_world():
    """More ranges than allowed_cidrs takes (50), but the rule itself judges any number."""
    eights = [f"{i}.0.0.0/8" for i in range(256)]
    assert sum(ipaddress.ip_network(c).num_addresses for c in eights) == 2 ** 32  # disjoint: every address
    assert covers_the_world(eights) == "0.0.0.0/0"
    assert covers_the_world(eights[1:]) is None


def test_the_union_rule_covers_ipv6_halves():
    assert covers_the_world(["::/1", "8000::/1"]) == "::/0"
    assert covers_the_world(["::/2", "4000::/2", "8000::/1"]) == "::/0"
    assert covers_the_world(["::/1"]) is None


def test_ipv6_halves_are_refused_as_the_world(prod):
    prod["api"]["allowed_cidrs"] = ["::/1", "8000::/1"]
    error = refused(prod)
    assert paths(error) == ["api.allowed_cidrs"] and "open_to_world" in str(error)


def test_the_whole_space_in_parts_is_accepted_with_open_to_world(prod):
    prod["api"].update(allowed_cidrs=["0.0.0.0/1", "128.0.0.0/1"], open_to_world=True)
    assert validate(prod, "prod.yaml").api.allowed_cidrs == ["0.0.0.0/1", "128.0.0.0/1"]


ALMOST = {
    "one half": ["0.0.0.0/1"],
    "all but one address": [str(n) for n in ipaddress.ip_network("0.0.0.0/0").address_exclude(
        ipaddress.ip_network("203.0.113.7/32"))],
    "all but 10.0.0.0/8": [str(n) for n in ipaddress.ip_network("0.0.0.0/0").address_exclude(
        ipaddress.ip_network("10.0.0.0/8"))],
}


@pytest.mark.parametrize("case", sorted(ALMOST))
def test_almost_everything_is_the_users_explicit_choice(prod, case):
    cidrs = ALMOST[case]
    assert covers_the_world(cidrs) is None
    if len(cidrs) <= 50:
        prod["api"]["allowed_cidrs"] = cidrs
        validate(prod, "prod.yaml")


@pytest.mark.parametrize("cidr", ["2001:db8::/32", "::/0"])
def test_ipv6_ranges_are_refused_because_the_load_balancers_are_ipv4(prod, cidr):
    prod["api"].update(allowed_cidrs=["203.0.113.0/24", cidr], open_to_world=True)
    error = refused(prod)
    assert paths(error) == ["api.allowed_cidrs"] and "IPv4" in str(error)


@pytest.mark.parametrize("vpc_cidr", ["fd00:10::/56", "10.0.0.0/8", "10.0.0.0/29"])
def test_a_vpc_cidr_is_ipv4_from_16_to_28(dev, vpc_cidr):
    dev["network"]["vpc_cidr"] = vpc_cidr
    assert paths(refused(dev)) == ["network.vpc_cidr"]


def test_a_small_vpc_of_28_is_accepted(dev):
    dev["network"]["vpc_cidr"] = "10.0.0.0/28"
    dev["api"]["allowed_cidrs"] = ["10.0.0.0/28"]
    assert validate(dev, "dev.yaml").network.vpc_cidr == "10.0.0.0/28"
