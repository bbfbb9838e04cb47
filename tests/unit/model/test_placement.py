"""Server placement (k3s_infra/model/placement.py): with three or more servers no Availability
Zone ever holds a majority of them, so one zone's outage keeps etcd's quorum.

Auto Scaling balances each group over its own zones, not across groups
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/auto-scaling-benefits.html, "Instance
distribution"), so the rule is checked per group: the first server (``ServerInit``, one) in one
zone, the joining servers (``Servers``, n - 1) balanced over the others. The rule is checked
against a brute force of every balanced spread, and every shipped and test environment is
rendered and resolved back to zones from its own file: the subnets each group's
``VPCZoneIdentifier`` names, through the root's parameters (and the Network stack's outputs and
``Fn::Select``/``Fn::GetAZs`` zones for a created network).
"""

from __future__ import annotations

import itertools
import math

import pytest
import yaml

from k3s_infra.config import load_environment
from k3s_infra.config.network import SERVER_ZONES
from k3s_infra.model import placement
from k3s_infra.render import render
from tests.support.oracle_helpers import DEPLOYABLE, plain_document

GROUPS = ("ServerInit", "Servers")


# --- the rule, against a brute force ------------------------------------------------------

def _balanced_spreads(members: int, zones: int):
    """Every way Auto Scaling's balancing may leave ``members`` over ``zones`` (counts differ by
    at most one)."""
    for counts in itertools.product(range(members + 1), repeat=zones):
        if sum(counts) == members and max(counts) - min(counts) <= 1:
            yield counts


def _keeps_quorum(count: int, zones: int) -> bool:
    """The first server in zone 0, the others balanced over zones 1..: does every zone's loss
    leave a majority (floor(n / 2) + 1) of the servers?"""
    for spread in _balanced_spreads(count - 1, zones - 1):
        held = [1, *spread]
        if any(count - lost < count // 2 + 1 for lost in held):
            return False
    return True


@pytest.mark.parametrize("count", [3, 5, 7, 9])
@pytest.mark.parametrize("zones", [2, 3, 4, 5, 6])
def test_worst_case_matches_every_balanced_spread(count, zones):
    split = placement.server_zones(range(zones), count)
    assert split.first == (0,) and split.joining == tuple(range(1, zones))
    worst = placement.worst_case(split.first, split.joining, count)
    assert worst[0] == 1 and worst[1] == max(max(s) for s in _balanced_spreads(count - 1, zones - 1))
    assert (not placement.crowded(worst, count)) == _keeps_quorum(count, zones)


@pytest.mark.parametrize("count", [3, 5, 7, 9])
def test_three_zones_are_needed_and_enough_and_the_config_asks_for_them(count):
    assert not _keeps_quorum(count, 2) and _keeps_quorum(count, 3)
    assert placement.zones_needed(count) == 3 == SERVER_ZONES
    assert placement.zones_needed(1) == 1  # a lone server cannot survive its zone's loss


def test_a_lone_server_keeps_every_zone():
    split = placement.server_subnets(["s-b", "s-a"], lambda s: None, 1)  # zones unknown
    assert split.first == split.joining == ("s-b", "s-a")


def test_the_first_zone_is_chosen_by_content_not_by_position():
    subnets = [("s1", "eu-west-1c"), ("s2", "eu-west-1a"), ("s3", "eu-west-1b"), ("s4", "eu-west-1a")]
    split = placement.server_subnets(subnets, lambda s: s[1], 3)
    assert split.first == (("s2", "eu-west-1a"), ("s4", "eu-west-1a"))
    assert split.joining == (("s1", "eu-west-1c"), ("s3", "eu-west-1b"))
    again = placement.server_subnets(list(reversed(subnets)), lambda s: s[1], 3)
    assert set(again.first) == set(split.first) and set(again.joining) == set(split.joining)


def test_zones_of_both_groups_add_up():
    # a joining subnet really in the first server's zone: that zone may hold 1 + ceil(2 / 2)
    assert placement.worst_case(["a"], ["a", "b"], 3) == {"a": 2, "b": 1}
    assert placement.crowded({"a": 2, "b": 1}, 3) == {"a": 2}
    with pytest.raises(ValueError):
        placement.worst_case(["a"], [], 3)


# --- every environment, from its rendered templates ---------------------------------------

def _templates(path) -> dict[str, dict]:
    return {s.stack_id: yaml.safe_load(s.body) for s in render(load_environment(path=path)).stacks}


def _file_zones(document: dict) -> dict[str, object]:
    """Subnet -> zone, from the environment file: a brought subnet's ``az``; a created network's
    n-th private subnet is in the n-th zone of the region (``("GetAZs", n)``)."""
    created = document["network"].get("create")
    if created:
        return {f"PrivateSubnet{n + 1}": ("GetAZs", n) for n in range(created.get("availability_zones", 3))}
    return {s["id"]: s["az"] for s in document["network"]["subnets"]}


def _subnets_of(templates: dict, stack_id: str) -> list[str]:
    """The subnets a server group's VPCZoneIdentifier gets, through the root's parameters."""
    (group,) = [r for r in templates[stack_id]["Resources"].values()
                if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
    parameter = group["Properties"]["VPCZoneIdentifier"]["Ref"]
    value = templates["Root"]["Resources"][stack_id]["Properties"]["Parameters"][parameter]
    if "Fn::Join" in value:  # a brought network: subnet IDs from config
        return value["Fn::Join"][1]
    producer, attribute = value["Fn::GetAtt"]
    network = templates[producer]
    refs = network["Outputs"][attribute.removeprefix("Outputs.")]["Value"]["Fn::Join"][1]
    for ref in refs:  # each in the zone its file position says (distinct indices, distinct zones)
        zone = network["Resources"][ref["Ref"]]["Properties"]["AvailabilityZone"]
        assert zone == {"Fn::Select": [int(ref["Ref"].removeprefix("PrivateSubnet")) - 1, {"Fn::GetAZs": ""}]}
    return [ref["Ref"] for ref in refs]


def _placement(templates: dict, document: dict) -> tuple[set, set]:
    zones = _file_zones(document)
    return tuple({zones[s] for s in _subnets_of(templates, stack_id)} for stack_id in GROUPS)


def _worst_per_zone(first: set, joining: set, count: int) -> dict:
    """Written out here, not taken from the code under test."""
    share = math.ceil((count - 1) / len(joining)) if count > 1 else 0
    return {zone: (zone in first) + (share if zone in joining else 0) for zone in first | joining}


@pytest.fixture(scope="module", params=DEPLOYABLE, ids=lambda p: p.stem)
def environment(request):
    return plain_document(request.param), _templates(request.param)


def test_no_zone_holds_a_majority_of_the_servers(environment):
    document, templates = environment
    count, zones = document["servers"]["count"], set(_file_zones(document).values())
    first, joining = _placement(templates, document)
    if count == 1:  # a lone server may heal into any zone
        assert first == zones
        return
    # the first zone of a deterministic order (names sort; Fn::GetAZs lists alphabetically), the rest
    assert first == {min(zones)} and joining == zones - first
    for zone, held in _worst_per_zone(first, joining, count).items():
        assert held <= (count - 1) // 2, (zone, held, count)


@pytest.mark.parametrize("path", [p for p in DEPLOYABLE if plain_document(p)["servers"]["count"] >= 3],
                         ids=lambda p: p.stem)
def test_both_groups_on_every_subnet_would_be_caught(path, monkeypatch):
    """The fault this guards against, put back: both groups on every subnet. The oracle above
    then finds a zone that holds a majority."""
    monkeypatch.setattr(placement, "server_subnets",
                        lambda subnets, zone_of, count: placement.ServerSplit(tuple(subnets), tuple(subnets)))
    document = plain_document(path)
    first, joining = _placement(_templates(path), document)
    count = document["servers"]["count"]
    assert first == joining == set(_file_zones(document).values())
    assert max(_worst_per_zone(first, joining, count).values()) > (count - 1) // 2
