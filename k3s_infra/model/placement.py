"""Where the servers may run: the zones (and so the subnets) each server group gets, so that
no Availability Zone ever holds a majority of the etcd members.

Auto Scaling balances each group across its own zones, never across groups
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/auto-scaling-benefits.html, "Instance
distribution"; https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-availability-zone-balanced.html).
Two groups over the same zones can therefore stack two of three servers in one zone. Instead,
with three or more servers the first server (``ServerInit``, one instance) gets the first zone
only and the joining servers (``Servers``, count - 1) every other zone:

    a zone holds at most 1 (the first server's zone) or ceil((n - 1) / (z - 1)) (each other);
    etcd of n members survives the loss of k of them iff k <= floor((n - 1) / 2);
    so any odd n >= 3 keeps quorum through a zone outage iff z >= 3.

A lone server (n = 1) keeps every zone: it cannot survive its zone's loss, but it may heal
(restore from a snapshot) into any zone. Pure functions: the stacks render with them, pre-flight
checks the real zones with them, the config requires ``zones_needed`` distinct zones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Z = TypeVar("Z", bound=Hashable)
S = TypeVar("S")

# Below this many servers there is no quorum to keep through a zone outage.
SPREAD_FROM = 3


@dataclass(frozen=True)
class ServerSplit(Generic[S]):
    """What each server group gets (zones or subnets), in a deterministic order."""

    first: tuple[S, ...]    # ServerInit: the cluster-init server
    joining: tuple[S, ...]  # Servers: the other count - 1


def tolerated(count: int) -> int:
    """Members an etcd of ``count`` can lose and keep quorum (floor(count / 2) + 1 left)."""
    return (count - 1) // 2


def server_zones(zones: Sequence[Z], count: int) -> ServerSplit[Z]:
    """Zones in the order that decides the first (duplicates dropped): the first one to the
    first server, the others to the joining servers; with fewer than three servers, all to both."""
    distinct = tuple(dict.fromkeys(zones))
    if count < SPREAD_FROM or len(distinct) < 2:
        return ServerSplit(distinct, distinct)
    return ServerSplit(distinct[:1], distinct[1:])


def server_subnets(subnets: Sequence[S], zone_of: Callable[[S], Z], count: int) -> ServerSplit[S]:
    """Subnets of each server group, in the given order. The first zone is the smallest by
    ``zone_of`` (a zone's name, or its index in ``Fn::GetAZs``, which lists zones alphabetically):
    content, never a position in the file, so reordering subnets moves no server."""
    if count < SPREAD_FROM:  # zones may be unknown (no az): nothing to split
        return ServerSplit(tuple(subnets), tuple(subnets))
    split = server_zones(sorted({zone_of(s) for s in subnets}), count)  # type: ignore[type-var]
    return ServerSplit(tuple(s for s in subnets if zone_of(s) in split.first),
                       tuple(s for s in subnets if zone_of(s) in split.joining))


def worst_case(first: Collection[Z], joining: Collection[Z], count: int) -> dict[Z, int]:
    """Per zone, the most servers it can hold while each group is balanced: the first server may
    be in any of its zones, the joining ones spread evenly (ceil) over theirs. Zones of both
    groups add up (a subnet whose real zone is another group's)."""
    per_zone = {zone: 1 for zone in set(first)}
    others = count - 1
    if others and not joining:
        raise ValueError(f"{others} joining servers have no zone")
    share = math.ceil(others / len(set(joining))) if others else 0
    for zone in set(joining):
        per_zone[zone] = per_zone.get(zone, 0) + share
    return per_zone


def crowded(per_zone: dict[Z, int], count: int) -> dict[Z, int]:
    """Zones whose loss would take etcd's quorum (empty: every single zone outage is survived)."""
    return {zone: held for zone, held in per_zone.items() if held > tolerated(count)}


def zones_needed(count: int) -> int:
    """Fewest distinct zones with which every single zone outage keeps quorum (1 for a lone
    server, which no spread can save)."""
    if count < SPREAD_FROM:
        return 1
    for zones in range(2, count + 2):
        split = server_zones(range(zones), count)
        if not crowded(worst_case(split.first, split.joining, count), count):
            return zones
    raise AssertionError(f"no spread keeps quorum for {count} servers")  # pragma: no cover


def one_per_zone(subnets: Sequence[S], zone_of: Callable[[S], Z | None]) -> tuple[S, ...]:
    """The subnets a load balancer gets: the first of each zone, in the given order. A load
    balancer takes at most one subnet per Availability Zone (Elastic Load Balancing API
    Reference, CreateLoadBalancer: "You can specify only one subnet per Availability Zone").
    A subnet whose zone is unknown (None) is kept; pre-flight checks its real zone."""
    seen: set[Z] = set()
    chosen = []
    for subnet in subnets:
        zone = zone_of(subnet)
        if zone is None or zone not in seen:
            chosen.append(subnet)
        if zone is not None:
            seen.add(zone)
    return tuple(chosen)
