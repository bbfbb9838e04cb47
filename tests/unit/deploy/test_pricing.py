"""Online prices (k3s_infra/deploy/pricing.py) against botocore Stubber responses shaped like
the real APIs: GetProducts as the AWS Price List Service API Reference's example answers it
(each PriceList entry a JSON document in a string; the same example ships in botocore's
data/pricing/2017-10-15/examples-1.json, "To retrieve a list of products"), with NextToken
pages; DescribeSpotPriceHistory as the EC2 API Reference describes its SpotPriceHistory items.
Any failure falls back to the offline table and says why."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy import pricing
from k3s_infra.model import prices

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
# The filters that name one on-demand Linux product (AmazonEC2
# product attributes: instanceType, regionCode, operatingSystem, tenancy, preInstalledSw,
# capacitystatus; Billing User Guide, "Offer file definitions").
FILTERS = {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}


def price_list_item(instance_type: str, region: str, usd: str, sku: str = "NDXXQ6KY8ZZ9M5JN") -> str:
    """One PriceList entry as GetProducts returns it: the API reference example's structure
    (product.attributes/sku, serviceCode, terms.OnDemand.<sku>.<offer>.priceDimensions,
    version, publicationDate) with a compute instance's attributes."""
    offer, rate = f"{sku}.JRTCKXETXF", f"{sku}.JRTCKXETXF.6YS6EN2CT7"
    return json.dumps({
        "product": {"productFamily": "Compute Instance", "sku": sku, "attributes": {
            "instanceType": instance_type, "regionCode": region, "location": "EU (Ireland)",
            "locationType": "AWS Region", "operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA",
            "capacitystatus": "Used", "licenseModel": "No License required", "usagetype": f"EU-BoxUsage:{instance_type}",
            "operation": "RunInstances", "servicecode": "AmazonEC2", "servicename": "Amazon Elastic Compute Cloud"}},
        "serviceCode": "AmazonEC2",
        "terms": {"OnDemand": {offer: {"priceDimensions": {rate: {
            "unit": "Hrs", "endRange": "Inf", "beginRange": "0", "appliesTo": [], "rateCode": rate,
            "description": f"${usd} per On Demand Linux {instance_type} Instance Hour",
            "pricePerUnit": {"USD": usd}}},
            "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z", "offerTermCode": "JRTCKXETXF", "termAttributes": {}}}},
        "version": "20261120011442", "publicationDate": "2026-11-20T01:14:42Z"})


def products_request(instance_type: str, region: str, token: str | None = None) -> dict:
    terms = {"instanceType": instance_type, "regionCode": region, **FILTERS}
    request = {"ServiceCode": "AmazonEC2", "FormatVersion": "aws_v1",
               "Filters": [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in terms.items()]}
    return {**request, "NextToken": token} if token else request


def client(service: str, region: str):
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        service, region_name=region)


class Session:
    """Hands out the stubbed clients, checking the region each is asked for."""

    def __init__(self, **clients):
        self.clients, self.asked = clients, []

    def client(self, service, region_name=None, config=None):
        self.asked.append((service, region_name))
        return self.clients[service]


@pytest.fixture
def stubbed():
    made = {}

    def make(service: str, region: str) -> Stubber:
        made[service] = Stubber(client(service, region))
        made[service].activate()
        return made[service]

    yield make
    for stub in made.values():
        stub.assert_no_pending_responses()
        stub.deactivate()


def test_the_on_demand_price_is_read_from_the_price_list_document(stubbed):
    stub = stubbed("pricing", "us-east-1")
    stub.add_response("get_products", {"FormatVersion": "aws_v1",
                                       "PriceList": [price_list_item("m6i.large", "eu-west-1", "0.1070000000")]},
                      products_request("m6i.large", "eu-west-1"))
    found = pricing.on_demand(stub.client, "m6i.large", "eu-west-1")
    assert (found.usd, found.unit) == (0.107, "instance-hour")
    assert "NDXXQ6KY8ZZ9M5JN" in found.source and "2026-11-20" in found.source


def test_pages_are_followed_by_next_token(stubbed):
    stub = stubbed("pricing", "us-east-1")
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [], "NextToken": "page-2"},
                      products_request("m7g.large", "eu-west-1"))
    stub.add_response("get_products", {"FormatVersion": "aws_v1",
                                       "PriceList": [price_list_item("m7g.large", "eu-west-1", "0.0912000000")]},
                      products_request("m7g.large", "eu-west-1", token="page-2"))
    assert pricing.on_demand(stub.client, "m7g.large", "eu-west-1").usd == 0.0912


def test_two_different_prices_for_one_type_are_not_chosen_between(stubbed):
    stub = stubbed("pricing", "us-east-1")
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "NextToken": "page-2",
                                       "PriceList": [price_list_item("t3.small", "eu-west-1", "0.0228000000")]},
                      products_request("t3.small", "eu-west-1"))
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [
        price_list_item("t3.small", "eu-west-1", "0.0300000000", sku="ZZZZQ6KY8ZZ9M5JN")]},
                      products_request("t3.small", "eu-west-1", token="page-2"))
    assert pricing.on_demand(stub.client, "t3.small", "eu-west-1") is None


def spot_record(kind: str, zone: str, usd: str, at: datetime) -> dict:
    return {"AvailabilityZone": zone, "InstanceType": kind, "ProductDescription": "Linux/UNIX",
            "SpotPrice": usd, "Timestamp": at}


def spot_request(kinds: list[str], token: str | None = None) -> dict:
    request = {"InstanceTypes": kinds, "ProductDescriptions": ["Linux/UNIX"], "StartTime": NOW, "EndTime": NOW}
    return {**request, "NextToken": token} if token else request


def test_spot_is_the_latest_price_per_zone_averaged_over_the_clusters_zones(stubbed):
    stub = stubbed("ec2", "eu-west-1")
    earlier = NOW - timedelta(hours=3)
    stub.add_response("describe_spot_price_history", {"NextToken": "more", "SpotPriceHistory": [
        spot_record("m5.xlarge", "eu-west-1a", "0.080000", NOW - timedelta(minutes=5)),
        spot_record("m5.xlarge", "eu-west-1a", "0.120000", earlier)]}, spot_request(["m5.xlarge"]))
    stub.add_response("describe_spot_price_history", {"NextToken": "", "SpotPriceHistory": [
        spot_record("m5.xlarge", "eu-west-1b", "0.060000", earlier),
        spot_record("m5.xlarge", "eu-west-1z", "0.010000", earlier)]}, spot_request(["m5.xlarge"], token="more"))
    found = pricing.spot(stub.client, ["m5.xlarge"], {"eu-west-1a", "eu-west-1b"}, NOW)
    assert found["m5.xlarge"].usd == pytest.approx(0.07)  # (0.08 + 0.06) / 2; 1z is not the cluster's
    assert "mean of 2 zones" in found["m5.xlarge"].source


def test_online_prices_replace_the_tables_instance_rows_and_keep_the_rest(stubbed):
    env = load_environment("prod")
    kinds = sorted({env.servers.instance_type, *(t for p in env.agent_pools for t in p.instance_types)})
    spot_kinds = sorted(next(p for p in env.agent_pools if p.spot).instance_types)
    products = stubbed("pricing", "us-east-1")
    for kind in kinds:
        products.add_response("get_products", {"FormatVersion": "aws_v1",
                                               "PriceList": [price_list_item(kind, "eu-west-1", "1.5000000000")]},
                              products_request(kind, "eu-west-1"))
    ec2 = stubbed("ec2", "eu-west-1")
    ec2.add_response("describe_spot_price_history", {"SpotPriceHistory": [
        spot_record("m6a.xlarge", "eu-west-1a", "0.500000", NOW)]}, spot_request(spot_kinds))
    session = Session(pricing=products.client, ec2=ec2.client)
    book = pricing.price_book(env, session, now=NOW)
    assert session.asked == [("pricing", "us-east-1"), ("ec2", "eu-west-1")]
    assert book.source == "price-list-api" and book.note == ""
    assert {k: book.instances[k].usd for k in kinds} == dict.fromkeys(kinds, 1.5)
    assert book.spot["m6a.xlarge"].usd == 0.5
    assert book.services == prices.SERVICES["eu-west-1"]


def test_a_refused_call_falls_back_to_the_table_and_says_why(stubbed):
    env = load_environment("dev")
    products = stubbed("pricing", "us-east-1")
    products.add_client_error("get_products", "AccessDeniedException", "User is not authorized to perform: "
                              "pricing:GetProducts", 400, expected_params=products_request("t3.small", "eu-west-1"))
    book = pricing.price_book(env, Session(pricing=products.client))
    assert book.source == "offline table 2026-12-04"
    assert book.instances == prices.INSTANCES["eu-west-1"]
    assert "GetProducts: AccessDeniedException" in book.note and "offline table" in book.note


def test_no_credentials_fall_back_to_the_table(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # botocore: skip the instance metadata provider
    book = pricing.price_book(load_environment("dev"), boto3.Session())
    assert book.source == prices.OFFLINE and "Unable to locate credentials" in book.note


def test_a_failed_spot_lookup_keeps_online_on_demand_prices_and_the_stated_discount(stubbed):
    env = load_environment("prod")
    kinds = sorted({env.servers.instance_type, *(t for p in env.agent_pools for t in p.instance_types)})
    products = stubbed("pricing", "us-east-1")
    for kind in kinds:
        products.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [
            price_list_item(kind, "eu-west-1", "0.2000000000")]}, products_request(kind, "eu-west-1"))
    ec2 = stubbed("ec2", "eu-west-1")
    ec2.add_client_error("describe_spot_price_history", "UnauthorizedOperation", "You are not authorized", 403)
    book = pricing.price_book(env, Session(pricing=products.client, ec2=ec2.client), now=NOW)
    assert book.source == prices.ONLINE and book.spot == {}
    assert "UnauthorizedOperation" in book.note and "stated discount" in book.note


def test_a_zero_rate_next_to_the_hourly_price_is_no_second_price(stubbed):
    """The price list also carries $0.00 rates (free tiers, reservation-covered usage); a rate of
    0 is not what an instance hour costs, so it does not make the answer ambiguous."""
    item = json.loads(price_list_item("t3.small", "eu-west-1", "0.0228000000"))
    (offer,) = item["terms"]["OnDemand"].values()
    offer["priceDimensions"]["FREE.JRTCKXETXF.6YS6EN2CT7"] = {
        "unit": "Hrs", "endRange": "750", "beginRange": "0", "appliesTo": [], "rateCode": "FREE.JRTCKXETXF.6YS6EN2CT7",
        "description": "$0.00 per Linux t3.small Instance Hour (free tier)", "pricePerUnit": {"USD": "0.0000000000"}}
    stub = stubbed("pricing", "us-east-1")
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": [json.dumps(item)]},
                      products_request("t3.small", "eu-west-1"))
    assert pricing.on_demand(stub.client, "t3.small", "eu-west-1").usd == 0.0228


def test_the_spot_mean_keeps_the_spot_prices_precision(stubbed):
    """SpotPrice is quoted to the millionth of a dollar (e.g. "0.010400"): the mean over the
    zones is kept to that precision, not rounded coarser."""
    stub = stubbed("ec2", "eu-west-1")
    stub.add_response("describe_spot_price_history", {"SpotPriceHistory": [
        spot_record("t3.small", zone, usd, NOW) for zone, usd in
        (("eu-west-1a", "0.010400"), ("eu-west-1b", "0.010500"), ("eu-west-1c", "0.010700"))]},
                      spot_request(["t3.small"]))
    found = pricing.spot(stub.client, ["t3.small"], set(), NOW)
    assert found["t3.small"].usd == 0.010533  # 0.0316 / 3, to the millionth


def test_a_price_list_api_that_hangs_holds_an_estimate_up_briefly():
    """The lookups' clients: few retries and short timeouts, so an endpoint that never answers
    costs at most 4 x (5 + 20) s before the table. botocore's ``retries.max_attempts`` counts
    the retries after the first request, ``total_max_attempts`` (what botocore turns it into,
    botocore/args.py _compute_retry_max_attempts) every request."""
    configs = []

    class Recording:
        def client(self, service, region_name=None, config=None):
            configs.append(config)
            raise pricing.BotoCoreError()  # then the table: what is asked here is only how

    book = pricing.price_book(load_environment("dev"), Recording())
    assert book.source == prices.OFFLINE
    (config,) = configs
    retries = config.retries
    attempts = retries["total_max_attempts"] if "total_max_attempts" in retries else retries["max_attempts"] + 1
    assert attempts <= 4 and config.connect_timeout <= 5 and config.read_timeout <= 20
