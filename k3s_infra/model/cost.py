"""The monthly cost of an environment: a priced bill of materials, from the environment and
its rendered templates, with prices from a PriceBook (model/prices.py; deploy/pricing.py
fills one from the AWS Price List API).

What is counted, and from where:

- instances: the servers (servers.count) and every agent pool at its desired size (with its
  min_size and max_size beside it), split into on-demand and spot as the pool's mixed
  instances policy splits it; on-demand capacity runs the pool's first listed type (EC2 Auto
  Scaling's OnDemandAllocationStrategy defaults to ``prioritized`` for groups without
  InstanceRequirements: "launches your highest priority instance types first"), spot capacity
  the cheapest listed type (price-capacity-optimized and lowest-price favour low prices);
- each group's root volumes and detailed monitoring, as its launch template states them;
- the cluster's shared resources as the templates hold them: network load balancers and their
  NLCUs, public IPv4 addresses (internet-facing load balancer per zone, NAT gateways' Elastic
  IPs), NAT gateways and the data they process, interface VPC endpoints per zone, KMS keys,
  Secrets Manager secrets, etcd snapshots in S3, VPC flow logs in CloudWatch Logs.

Pure: no AWS call. Imported by the CLI only (``estimate --cost``, ``plan``)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from k3s_infra.config import Environment
from k3s_infra.config.pools import AgentPool
from k3s_infra.model import naming
from k3s_infra.model.prices import ASSUMPTIONS, EC2_PAGE, HOURS_PER_MONTH, Assumption, Price, PriceBook

__all__ = ["Bill", "Item", "NOT_COUNTED", "for_environment"]

LOAD_BALANCER = "AWS::ElasticLoadBalancingV2::LoadBalancer"

NOT_COUNTED: tuple[str, ...] = (
    "data transfer out to the internet and between regions (aws.amazon.com/ec2/pricing/on-demand/, Data Transfer)",
    "traffic between availability zones (nodes, etcd, the load balancers' cross-zone targets)",
    "load balancer data beyond the stated NLCU, NAT gateway data beyond the stated GB",
    "EBS snapshots, and volumes, load balancers and addresses that Kubernetes creates "
    "(Services of type LoadBalancer, PersistentVolumes)",
    "CPU credits of burstable types beyond their baseline (t3/t4g launch as unlimited)",
    "CloudWatch custom metrics, alarms, dashboards and Logs Insights queries",
    "the OIDC issuer's CloudFront requests and transfer (within CloudFront's free tier for a cluster's token checks)",
    "SQS and EventBridge of the node termination handler, Secrets Manager and interface endpoint "
    "request and data charges",
    "the artifact bucket (K3s files and templates, shared by the account's environments in the region)",
    "KMS key rotation: each of the first two yearly rotations adds $1 a month (aws.amazon.com/kms/pricing/)",
    "free tiers, Savings Plans, Reserved Instances, credits and taxes",
)


@dataclass(frozen=True)
class Item:
    """One line of the bill: ``count`` units a month at desired sizes (``count_min`` and
    ``count_max`` at the pools' min_size and max_size), each at ``price`` per hour or month."""
    what: str
    group: str | None           # "servers", "pool <name>", None: shared by the cluster
    count: float
    unit: str
    price: Price | None         # None: no price for it (a type or region the table lacks)
    count_min: float | None = None
    count_max: float | None = None

    def monthly(self, count: float | None = None) -> float | None:
        if self.price is None:
            return None
        usage = self.count if count is None else count
        return usage / self.price.per * self.price.usd * (HOURS_PER_MONTH if self.price.hourly else 1)


@dataclass(frozen=True)
class Bill:
    region: str
    items: tuple[Item, ...]
    price_source: str
    note: str
    assumptions: tuple[tuple[str, Assumption], ...]
    not_counted: tuple[str, ...] = NOT_COUNTED

    def total(self, at: str = "desired") -> float:
        """Sum of the priced lines at the pools' desired (or "min", "max") sizes."""
        def count(item: Item) -> float:
            scaled = {"min": item.count_min, "max": item.count_max}.get(at)
            return item.count if scaled is None else scaled
        return sum(item.monthly(count(item)) or 0.0 for item in self.items)

    @property
    def unpriced(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.price is None and item.count)


def for_environment(env: Environment, templates: Mapping[str, dict], prices: PriceBook) -> Bill:
    """The bill of ``env``: ``templates`` are its rendered stacks (stack ID -> template as a
    dict, the root under naming.ROOT), ``prices`` the region's prices."""
    items = [*_servers(env, templates, prices), *(line for pool in env.agent_pools
                                                  for line in _pool(pool, templates, prices)),
             *_shared(env, templates, prices)]
    discounted = any(item.price and item.price.source.startswith(_DISCOUNTED) for item in items)
    used = {"spot-discount"} if discounted else set()
    used |= {name for name, item_names in _USES.items() if any(i.what in item_names for i in items)}
    return Bill(prices.region, tuple(items), prices.source, prices.note,
                tuple((name, a) for name, a in ASSUMPTIONS.items() if name in used))


_DISCOUNTED = "on-demand less the stated spot discount"
# Assumption -> the lines whose counts it gives
_USES = {"nlcu": {"load balancer capacity"}, "nat-data": {"NAT gateway data processed"},
         "snapshot": {"S3 etcd snapshots"}, "s3-requests": {"S3 requests"}, "kms-requests": {"KMS requests"},
         "flow-logs": {"VPC flow logs ingested", "VPC flow logs stored"},
         "metrics-per-instance": {"detailed monitoring"}}


# --- node groups ----------------------------------------------------------------------------

def _servers(env: Environment, templates: Mapping[str, dict], prices: PriceBook) -> Iterator[Item]:
    kind, count = env.servers.instance_type, env.servers.count
    yield _scaled(f"{kind} on-demand", "servers", (count,) * 3, "instance", prices.instances.get(kind))
    yield from _per_instance("servers", _launch_data(templates, naming.STACK_SERVER_INIT), (count,) * 3, prices)


def split(pool: AgentPool, size: int) -> tuple[int, int]:
    """(on-demand, spot) instances of ``pool`` at ``size``: OnDemandBaseCapacity first, then
    OnDemandPercentageAboveBaseCapacity of the rest, a fraction counted on-demand (the
    dearer reading)."""
    if pool.spot is None:
        return size, 0
    base = min(size, pool.spot.on_demand_base_capacity)
    on_demand = base + math.ceil((size - base) * pool.spot.on_demand_percentage_above_base / 100)
    return on_demand, size - on_demand


def _pool(pool: AgentPool, templates: Mapping[str, dict], prices: PriceBook) -> Iterator[Item]:
    group = f"pool {pool.name}"
    sizes = (pool.desired, pool.min_size, pool.max_size)
    on_demand = tuple(split(pool, n)[0] for n in sizes)
    spot = tuple(split(pool, n)[1] for n in sizes)
    first = pool.instance_types[0]
    if max(on_demand):
        yield _scaled(f"{first} on-demand", group, on_demand, "instance", prices.instances.get(first))
    if max(spot):
        kind, price = _spot_price(pool, prices)
        others = f", cheapest of {len(pool.instance_types)} types" if len(pool.instance_types) > 1 else ""
        yield _scaled(f"{kind} spot{others}", group, spot, "instance", price)
    yield from _per_instance(group, _launch_data(templates, naming.agent_pool_stack(pool.name)), sizes, prices)


def _spot_price(pool: AgentPool, prices: PriceBook) -> tuple[str, Price | None]:
    """The cheapest listed type at its spot price: online the current one, offline its
    on-demand price less the stated discount."""
    discount = ASSUMPTIONS["spot-discount"].value / 100
    found: dict[str, Price] = {}
    for kind in pool.instance_types:
        if kind in prices.spot:
            found[kind] = prices.spot[kind]
        elif kind in prices.instances and not prices.spot:
            found[kind] = Price(round(prices.instances[kind].usd * (1 - discount), 6), "instance-hour",
                                f"{_DISCOUNTED} of {discount:.0%} ({EC2_PAGE})")
    if not found:
        return pool.instance_types[0], None
    kind = min(found, key=lambda k: found[k].usd)
    return kind, found[kind]


def _per_instance(group: str, launch: dict, sizes: tuple[int, ...], prices: PriceBook) -> Iterator[Item]:
    """A group's root volumes and detailed monitoring, as its launch template states them."""
    for mapping in launch.get("BlockDeviceMappings", []):
        ebs = mapping.get("Ebs", {})
        kind, size = ebs.get("VolumeType", "gp2"), ebs.get("VolumeSize", 0)
        yield _scaled(f"EBS {kind} root volumes, {size} GB each", group, tuple(n * size for n in sizes), "GB",
                      prices.services.get(f"ebs-{kind}"))
    if launch.get("Monitoring", {}).get("Enabled"):
        metrics = ASSUMPTIONS["metrics-per-instance"].value
        yield _scaled("detailed monitoring", group, tuple(n * metrics for n in sizes), "metric",
                      prices.services.get("metric"))


def _scaled(what: str, group: str, at: tuple[float, ...], unit: str, price: Price | None) -> Item:
    """An Item from its counts at (desired, min, max) sizes."""
    desired, low, high = at
    return Item(what, group, desired, unit, price, low, high)


def _launch_data(templates: Mapping[str, dict], stack: str) -> dict:
    for resource in _resources(templates, "AWS::EC2::LaunchTemplate", stack):
        return resource["LaunchTemplateData"]
    return {}


def _resources(templates: Mapping[str, dict], kind: str, stack: str | None = None) -> list[dict]:
    """Properties of every resource of type ``kind`` (in ``stack`` only, when given)."""
    return [resource.get("Properties", {}) for stack_id, template in templates.items()
            if stack in (None, stack_id)
            for resource in template.get("Resources", {}).values() if resource["Type"] == kind]


# --- the cluster's shared resources ----------------------------------------------------------

def _shared(env: Environment, templates: Mapping[str, dict], prices: PriceBook) -> Iterator[Item]:
    price = prices.services.get
    balancers = [p for p in _resources(templates, LOAD_BALANCER) if p.get("Type") == "network"]
    for scheme in ("internal", "internet-facing"):
        found = [p for p in balancers if p.get("Scheme", "internet-facing") == scheme]
        if found:
            yield Item(f"API load balancer, {scheme}", None, len(found), "load balancer", price("nlb"))
    if balancers:
        yield Item("load balancer capacity", None, len(balancers) * ASSUMPTIONS["nlcu"].value, "NLCU", price("nlcu"))
    zones = env.network.create.availability_zones if env.network.create else len(env.network.public_subnets)
    public = sum(zones for p in balancers if p.get("Scheme", "internet-facing") == "internet-facing")
    addresses = public + len(_resources(templates, "AWS::EC2::EIP"))
    if addresses:
        yield Item("public IPv4 addresses", None, addresses, "address", price("public-ipv4"))
    gateways = len(_resources(templates, "AWS::EC2::NatGateway"))
    if gateways:
        yield Item("NAT gateways", None, gateways, "gateway", price("nat"))
        yield Item("NAT gateway data processed", None, ASSUMPTIONS["nat-data"].value, "GB", price("nat-data"))
    endpoints = sum(len(p.get("SubnetIds", [])) for p in _resources(templates, "AWS::EC2::VPCEndpoint")
                    if p.get("VpcEndpointType") == "Interface")
    if endpoints:
        yield Item("interface VPC endpoints", None, endpoints, "endpoint-AZ", price("endpoint"))
    keys = len(_resources(templates, "AWS::KMS::Key"))
    if keys:
        yield Item("KMS keys", None, keys, "key", price("kms-key"))
        yield Item("KMS requests", None, ASSUMPTIONS["kms-requests"].value, "request", price("kms-requests"))
    secrets = len(_resources(templates, "AWS::SecretsManager::Secret"))
    if secrets:
        yield Item("Secrets Manager secrets", None, secrets, "secret", price("secret"))
    yield from _storage(env, templates, prices)


def _storage(env: Environment, templates: Mapping[str, dict], prices: PriceBook) -> Iterator[Item]:
    price = prices.services.get
    snapshots = env.k3s.etcd_snapshots
    if snapshots.enabled:
        yield Item("S3 etcd snapshots", None, round(snapshots.retention * ASSUMPTIONS["snapshot"].value, 3), "GB",
                   price("s3"))
    if _resources(templates, "AWS::S3::Bucket"):
        yield Item("S3 requests", None, ASSUMPTIONS["s3-requests"].value, "request", price("s3-requests"))
    retention = _flow_log_retention(templates)
    if retention:
        monthly = len(retention) * ASSUMPTIONS["flow-logs"].value
        yield Item("VPC flow logs ingested", None, monthly, "GB", price("logs-ingest"))
        # Kept for its log group's retention: once that has filled, so many months of logs at once
        # (a group without retention keeps them for ever: counted as after a year).
        months = sum(min(days, 365) * 12 / 365 for days in retention) / len(retention)
        yield Item("VPC flow logs stored", None, round(monthly * months, 3), "GB", price("logs-storage"))


def _flow_log_retention(templates: Mapping[str, dict]) -> list[int]:
    """RetentionInDays of the log group of each flow log that delivers to CloudWatch Logs."""
    found = []
    for template in templates.values():
        resources = template.get("Resources", {})
        for resource in resources.values():
            properties = resource.get("Properties", {})
            if resource["Type"] == "AWS::EC2::FlowLog" and properties.get("LogDestinationType") == "cloud-watch-logs":
                group = resources.get(properties.get("LogGroupName", {}).get("Ref", ""), {})
                found.append(group.get("Properties", {}).get("RetentionInDays", 365))
    return found
