"""The cost model (k3s_infra/model/cost.py): what it counts comes from the environment file
read here with plain PyYAML (tests/support/oracle_helpers.py), the prices from the offline
table (k3s_infra/model/prices.py), and the totals add up at 730 hours a month."""

from __future__ import annotations

import copy
import json
import math

import pytest

from k3s_infra.config import validate
from k3s_infra.config.pools import AgentPool
from k3s_infra.model import cost, prices
from k3s_infra.render import build_templates
from tests.support.oracle_helpers import DEPLOYABLE, REPO, plain_document

# The 730 hours a month of the AWS pricing pages and Pricing Calculator (24 x 365 / 12).
HOURS = 730
# What the stacks create once per cluster, whatever the file says (docs/architecture.md,
# ClusterData): the cluster key, and the server token, agent token and kubeconfig secrets; one
# more secret for each add-on with a generated value (docs/add-ons.md: Rancher's bootstrap
# password, Grafana's admin password).
KMS_KEYS, SECRETS = 1, 3
GENERATED_SECRETS = {"rancher": 1, "grafana": 1}
# A managed network without NAT reaches AWS through one interface endpoint per service and zone:
# these seven, SQS when the node termination handler's queue exists (docs/network.md), and the
# SSM Agent's ssmmessages and ec2messages with node_access's defaults, both on (docs/configuration.md;
# AWS Systems Manager User Guide, "Improve the security of EC2 instances by using VPC endpoints
# for Systems Manager": ssm, ssmmessages, ec2messages).
INTERFACE_SERVICES = 7
NODE_ACCESS_CHANNELS = 2
# Documented defaults (docs/configuration.md) of what a file may leave out.
SERVER_DEFAULTS = {"count": 3, "instance_type": "t3.medium", "root_volume_gb": 40}
POOL_VOLUME_DEFAULT = 50


def bill(document: dict, book: prices.PriceBook | None = None) -> cost.Bill:
    env = validate(copy.deepcopy(document), "test")
    templates = {stack: json.loads(json.dumps(t.to_dict())) for stack, t in build_templates(env).items()}
    return cost.for_environment(env, templates, book or prices.offline(env.region))


@pytest.fixture(scope="module", params=[p.stem for p in DEPLOYABLE])
def case(request):
    path = next(p for p in DEPLOYABLE if p.stem == request.param)
    document = plain_document(path)
    return document, bill(document)


def on_demand_share(pool: dict, size: int) -> int:
    """EC2 Auto Scaling's InstancesDistribution: OnDemandBaseCapacity first (default 0), then
    OnDemandPercentageAboveBaseCapacity of the rest (default 100); a fraction counted on-demand."""
    spot = pool.get("spot")
    if spot is None:
        return size
    base = min(size, spot.get("on_demand_base_capacity", 0))
    return base + math.ceil((size - base) * spot.get("on_demand_percentage_above_base", 0) / 100)


def lines(found: cost.Bill, group: str | None) -> dict[str, cost.Item]:
    return {item.what: item for item in found.items if item.group == group}


def test_servers_and_pools_are_counted_as_the_file_sizes_them(case):
    document, found = case
    servers = {**SERVER_DEFAULTS, **document.get("servers", {})}
    mine = lines(found, "servers")
    assert mine[f"{servers['instance_type']} on-demand"].count == servers["count"]
    assert mine[f"EBS gp3 root volumes, {servers['root_volume_gb']} GB each"].count == \
        servers["count"] * servers["root_volume_gb"]
    for pool in document["agent_pools"]:
        mine = lines(found, f"pool {pool['name']}")
        sizes = (pool["desired"], pool["min_size"], pool["max_size"])
        demand = [on_demand_share(pool, n) for n in sizes]
        spot = [n - d for n, d in zip(sizes, demand)]
        instances = [i for what, i in mine.items() if what.split(" ")[1].rstrip(",") in ("on-demand", "spot")]
        by_kind = {what.split(" ")[1].rstrip(","): (i.count, i.count_min, i.count_max) for what, i in mine.items()
                   if i in instances}
        assert by_kind.get("on-demand", (0, 0, 0)) == tuple(demand)
        assert by_kind.get("spot", (0, 0, 0)) == tuple(spot)
        volume = pool.get("root_volume_gb", POOL_VOLUME_DEFAULT)
        ebs = mine[f"EBS gp3 root volumes, {volume} GB each"]
        assert (ebs.count, ebs.count_min, ebs.count_max) == tuple(n * volume for n in sizes)


def test_shared_resources_follow_the_network_and_api_sections(case):
    document, found = case
    shared = lines(found, None)
    public = document.get("api", {}).get("scheme") == "internet-facing"
    create = document["network"].get("create")
    zones = create.get("availability_zones", 3) if create else len(document["network"].get("public_subnets", []))
    nat = {"one": 1, "per-az": zones, "none": 0}[create.get("nat_gateways", "one")] if create else 0
    assert shared["API load balancer, internal"].count == 1
    assert ("API load balancer, internet-facing" in shared) is public
    assert shared["load balancer capacity"].count == 1 + public
    assert shared.get("NAT gateways", cost.Item("", None, 0, "", None)).count == nat
    addresses = (zones if public else 0) + nat
    assert shared.get("public IPv4 addresses", cost.Item("", None, 0, "", None)).count == addresses
    enabled = [name for name, addon in document.get("addons", {}).items() if addon.get("enabled")]
    secrets = SECRETS + sum(GENERATED_SECRETS.get(name, 0) for name in enabled)
    assert shared["KMS keys"].count == KMS_KEYS and shared["Secrets Manager secrets"].count == secrets
    snapshots = document["k3s"]["etcd_snapshots"]
    assert shared["S3 etcd snapshots"].count == pytest.approx(snapshots["retention"] * 0.1)
    assert ("VPC flow logs ingested" in shared) is bool(create)


def test_every_line_is_priced_from_the_table_and_the_total_adds_up(case):
    document, found = case
    region = document["region"]
    assert found.price_source == "offline table 2026-12-04" and not found.unpriced
    total = 0.0
    for item in found.items:
        kind = item.what.split(" ")[0]
        if item.what.endswith("on-demand"):
            assert item.price == prices.INSTANCES[region][kind]
        elif " spot" in item.what:  # the cheapest listed type, 60% off (the stated offline discount)
            pool = next(p for p in document["agent_pools"] if item.group == f"pool {p['name']}")
            cheapest = min(prices.INSTANCES[region][t].usd for t in pool["instance_types"])
            assert item.price.usd == pytest.approx(cheapest * 0.4) == pytest.approx(
                prices.INSTANCES[region][kind].usd * 0.4)
        hours = HOURS if item.price.unit.endswith("-hour") else 1
        monthly = item.count * item.price.usd / item.price.per * hours
        assert item.monthly() == pytest.approx(monthly)
        total += monthly
    assert found.total() == pytest.approx(total)


def test_a_pools_size_changes_exactly_its_lines():
    document = plain_document(REPO / "environments" / "prod.yaml")
    before = bill(document)
    bigger = copy.deepcopy(document)
    general = next(p for p in bigger["agent_pools"] if p["name"] == "general")
    general["desired"] = 5
    after = bill(bigger)
    changed = [(old, new) for old, new in zip(before.items, after.items) if old != new]
    assert len(before.items) == len(after.items)
    assert {old.group for old, _ in changed} == {"pool general"}
    node = next(new for old, new in changed if new.what.endswith("on-demand"))
    assert (node.count, node.count_min, node.count_max) == (5, general["min_size"], general["max_size"])
    extra = 2 * HOURS * prices.INSTANCES["eu-west-1"]["m6i.xlarge"].usd
    extra += 2 * general["root_volume_gb"] * prices.SERVICES["eu-west-1"]["ebs-gp3"].usd
    extra += 2 * 7 * prices.SERVICES["eu-west-1"]["metric"].usd  # 7 metrics an instance (CloudWatch pricing)
    assert after.total() - before.total() == pytest.approx(extra)
    assert after.total("min") == pytest.approx(before.total("min"))


def test_a_network_without_nat_pays_for_interface_endpoints_per_zone():
    document = plain_document(REPO / "environments" / "staging.yaml")
    document["network"]["create"]["nat_gateways"] = "none"
    shared = lines(bill(document), None)
    zones = document["network"]["create"]["availability_zones"]
    assert "NAT gateways" not in shared and "NAT gateway data processed" not in shared
    # no spot pool: no queue; staging leaves node_access to its defaults
    assert "node_access" not in document
    assert shared["interface VPC endpoints"].count == (INTERFACE_SERVICES + NODE_ACCESS_CHANNELS) * zones
    assert shared["interface VPC endpoints"].price.unit == "endpoint-AZ-hour"


def test_spot_takes_the_cheapest_types_current_price_when_online():
    document = plain_document(REPO / "environments" / "prod.yaml")
    table = prices.offline("eu-west-1")
    online = prices.PriceBook("eu-west-1", prices.ONLINE, table.instances, table.services,
                              {"m5.xlarge": prices.Price(0.05, "instance-hour", "test"),
                               "m7i.xlarge": prices.Price(0.07, "instance-hour", "test")})
    found = bill(document, online)
    (spot,) = [i for i in found.items if " spot" in i.what]
    assert spot.what.startswith("m5.xlarge spot") and spot.price.usd == 0.05
    assert "spot-discount" not in dict(found.assumptions)
    assert "spot-discount" in dict(bill(document).assumptions)


def test_a_region_without_table_prices_is_unknown_not_guessed():
    document = plain_document(REPO / "environments" / "dev.yaml")
    found = bill(document, prices.offline("ap-southeast-7"))
    assert {i.what for i in found.unpriced} == {i.what for i in found.items}
    assert found.total() == 0


@pytest.mark.parametrize("spot, size, expected", [
    (None, 4, (4, 0)),
    ({"on_demand_base_capacity": 0, "on_demand_percentage_above_base": 0}, 4, (0, 4)),
    ({"on_demand_base_capacity": 1, "on_demand_percentage_above_base": 50}, 4, (3, 1)),  # 1 + ceil(1.5)
    ({"on_demand_base_capacity": 2, "on_demand_percentage_above_base": 25}, 1, (1, 0)),  # base not yet full
])
def test_split_follows_the_mixed_instances_policy(spot, size, expected):
    pool = AgentPool.model_validate({"name": "pool", "instance_types": ["m5.large"], "min_size": 0, "desired": size,
                                     "max_size": 10, **({"spot": spot} if spot else {})})
    assert cost.split(pool, size) == expected


def test_the_table_prices_every_type_and_region_the_environments_name():
    documents = [plain_document(p) for p in DEPLOYABLE]
    regions = {d["region"] for d in documents} | {"us-east-1", "eu-west-1"}
    kinds = {SERVER_DEFAULTS["instance_type"]} | {d.get("servers", {}).get("instance_type", "t3.medium")
                                                   for d in documents}
    kinds |= {t for d in documents for p in d["agent_pools"] for t in p["instance_types"]}
    for region in regions:
        assert kinds <= set(prices.INSTANCES[region]), region
        assert set(prices.SERVICES[region]) == set(prices.SERVICES["us-east-1"])
    graviton = {k for k in prices.INSTANCES["us-east-1"] if k.split(".")[0].endswith("g")}
    assert graviton and graviton <= set(prices.INSTANCES["eu-west-1"])
    for region_prices in (*prices.INSTANCES.values(), *prices.SERVICES.values()):
        assert all(p.usd > 0 and p.source.startswith("aws.amazon.com/") for p in region_prices.values())
