"""Prices from AWS for ``k3s-infra estimate --cost --prices online``: the on-demand prices of
the environment's instance types from the AWS Price List API and the current spot prices of
its spot pools' types from EC2, over the offline table (model/prices.py), which also prices
everything else. A call that fails (no credentials, no network, access denied, throttled, an
answer that does not parse) falls back to the table, and the returned book says why.

Permissions: ``pricing:GetProducts`` (any region's prices, asked in us-east-1) and, for spot
pools, ``ec2:DescribeSpotPriceHistory`` in the environment's region."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timezone

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from k3s_infra.config import Environment
from k3s_infra.deploy.aws import USER_AGENT
from k3s_infra.model import prices
from k3s_infra.model.prices import Price, PriceBook

# The Price List Query API answers in us-east-1, eu-central-1 and ap-south-1 only, for the
# prices of every region (AWS Billing User Guide, "Using the AWS Price List Query API").
PRICING_REGION = "us-east-1"
SPOT_PRODUCT = "Linux/UNIX"
# A lookup must not hold up an estimate: few retries, short timeouts, then the table.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=20,
                 user_agent_extra=USER_AGENT)
_FAILURES = (BotoCoreError, ClientError, ResponseParserError, ValueError, KeyError, TypeError)


def instance_filters(instance_type: str, region: str) -> list[dict[str, str]]:
    """GetProducts filters naming exactly one product: on-demand Linux in shared tenancy,
    without pre-installed software, capacity that is used (not a reservation's unused share).
    Attribute names: the AmazonEC2 price list's product attributes (Billing User Guide, "Offer
    file definitions"; DescribeServices lists them)."""
    terms = {"instanceType": instance_type, "regionCode": region, "operatingSystem": "Linux",
             "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}
    return [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in terms.items()]


def on_demand(client, instance_type: str, region: str) -> Price | None:
    """The hourly on-demand price of one type, or None when the answer names none or several.

    Each PriceList entry is a JSON document as a string (GetProducts, PriceList: "The list of
    products that match your filters"; the API reference's example): product.sku, then
    terms.OnDemand.<offer>.priceDimensions.<rate>.pricePerUnit.USD with unit "Hrs"."""
    found: dict[float, str] = {}
    for page in client.get_paginator("get_products").paginate(
            ServiceCode="AmazonEC2", Filters=instance_filters(instance_type, region), FormatVersion="aws_v1"):
        for text in page.get("PriceList", []):
            product = json.loads(text)
            for term in product["terms"].get("OnDemand", {}).values():
                for dimension in term["priceDimensions"].values():
                    usd = float(dimension["pricePerUnit"]["USD"])
                    if dimension.get("unit") == "Hrs" and usd > 0:
                        found[usd] = f"{product['product'].get('sku', '?')}, published {product.get('publicationDate', '?')}"
    if len(found) != 1:
        return None
    ((usd, what),) = found.items()
    return Price(usd, "instance-hour", f"Price List API GetProducts (AmazonEC2 {what})")


def spot(client, instance_types: Iterable[str], zones: set[str], now: datetime) -> dict[str, Price]:
    """Each type's spot price now, the mean over ``zones`` (every zone when empty).

    DescribeSpotPriceHistory with StartTime = EndTime = now answers the price in effect then in
    each zone ("It also returns the last price change before the start time, which is the
    effective price as of the start time": EC2 API Reference, DescribeSpotPriceHistory)."""
    latest: dict[tuple[str, str], tuple[datetime, float]] = {}
    for page in client.get_paginator("describe_spot_price_history").paginate(
            InstanceTypes=sorted(instance_types), ProductDescriptions=[SPOT_PRODUCT], StartTime=now, EndTime=now):
        for record in page["SpotPriceHistory"]:
            zone = record["AvailabilityZone"]
            if zones and zone not in zones:
                continue
            key = (record["InstanceType"], zone)
            if key not in latest or record["Timestamp"] > latest[key][0]:
                latest[key] = (record["Timestamp"], float(record["SpotPrice"]))
    result = {}
    for kind in sorted({k for k, _ in latest}):
        values = [price for (k, _), (_, price) in latest.items() if k == kind]
        result[kind] = Price(round(sum(values) / len(values), 6), "instance-hour",
                             f"EC2 DescribeSpotPriceHistory ({SPOT_PRODUCT}), mean of {len(values)} "
                             f"zone{'s' * (len(values) > 1)} at {now:%Y-%m-%d %H:%M} UTC")
    return result


def price_book(env: Environment, session: boto3.Session | None = None, now: datetime | None = None) -> PriceBook:
    """The environment's prices: online where AWS answers, the offline table elsewhere (the
    book's ``source`` says which priced the instances, its ``note`` what fell back and why)."""
    session = session or boto3.Session()
    table = prices.offline(env.region)
    types = sorted({env.servers.instance_type, *(t for p in env.agent_pools for t in p.instance_types)})
    try:
        client = session.client("pricing", region_name=PRICING_REGION, config=_CONFIG)
        found = {kind: on_demand(client, kind, env.region) for kind in types}
    except _FAILURES as exc:
        return prices.offline(env.region, note=f"the Price List API call failed ({_reason(exc)}); "
                                               f"instance prices from the {prices.OFFLINE}")
    notes = [f"no Price List API price for {kind} in {env.region}: the table's" for kind, p in found.items()
             if p is None]
    spot_types = sorted({t for p in env.agent_pools if p.spot for t in p.instance_types})
    spot_prices: dict[str, Price] = {}
    if spot_types:
        zones = {s.az for s in env.network.subnets if s.az}
        try:
            ec2 = session.client("ec2", region_name=env.region, config=_CONFIG)
            spot_prices = spot(ec2, spot_types, zones, now or datetime.now(timezone.utc))
        except _FAILURES as exc:
            notes.append(f"the spot price history call failed ({_reason(exc)}): spot at the stated discount")
    instances = {**table.instances, **{kind: p for kind, p in found.items() if p}}
    return PriceBook(env.region, prices.ONLINE, instances, table.services, spot_prices, "; ".join(notes))


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
    return str(exc) or type(exc).__name__
