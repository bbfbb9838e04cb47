"""Prices as data: the offline table behind ``k3s-infra estimate --cost`` (model/cost.py),
and the assumptions the cost model states instead of knowing.

Every row names the AWS pricing page it was read from (US dollars, on-demand, the Linux
rates, no free tier, no tax). ``DATE`` is the day the table was last compared with those
pages; README "What it costs" says how to refresh it. ``--prices online`` replaces the
instance rows with the AWS Price List API's (deploy/pricing.py) and every other row stays
the table's. A region or instance type missing here is priced as unknown, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DATE = "2026-12-04"
OFFLINE = f"offline table {DATE}"
ONLINE = "price-list-api"
# The AWS pricing pages and the AWS Pricing Calculator turn hourly rates into monthly ones
# with 730 hours a month (24 x 365 / 12).
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str        # what one unit of usage is: "instance-hour", "GB-month", "request", ...
    source: str
    per: int = 1     # the price is for this many units ("$0.03 per 10,000 requests")

    @property
    def hourly(self) -> bool:
        return self.unit.endswith("-hour")


@dataclass(frozen=True)
class PriceBook:
    """The prices of one region: instance type -> on-demand hourly price, instance type ->
    spot hourly price (empty offline: the stated discount applies), service key -> price."""
    region: str
    source: str                                   # ONLINE or OFFLINE: where the instance prices came from
    instances: Mapping[str, Price]
    services: Mapping[str, Price]
    spot: Mapping[str, Price] = field(default_factory=dict)
    note: str = ""                                # why the table was used when online prices were asked


# --- EC2 instances: on-demand, Linux, shared tenancy ----------------------------------------

EC2_PAGE = ("aws.amazon.com/ec2/pricing/on-demand/ (Linux, shared tenancy); Price List API AmazonEC2 "
            "instanceType, regionCode, operatingSystem=Linux, tenancy=Shared, preInstalledSw=NA, capacitystatus=Used")

# Every type of environments/*.yaml and the servers' default (t3.medium), amd64 and Graviton
# (tests/unit/model/test_cost.py fails when an environment names a type missing here).
_HOURLY: dict[str, dict[str, float]] = {
    "us-east-1": {
        "t3.small": 0.0208, "t3.medium": 0.0416, "t3.large": 0.0832,
        "t4g.small": 0.0168, "t4g.medium": 0.0336, "t4g.large": 0.0672,
        "m5.large": 0.096, "m5.xlarge": 0.192,
        "m6i.large": 0.096, "m6i.xlarge": 0.192,
        "m6a.large": 0.0864, "m6a.xlarge": 0.1728,
        "m7i.large": 0.1008, "m7i.xlarge": 0.2016,
        "m7g.large": 0.0816, "m7g.xlarge": 0.1632,
        "c7g.large": 0.0725, "c7g.xlarge": 0.145,
    },
    "eu-west-1": {
        "t3.small": 0.0228, "t3.medium": 0.0456, "t3.large": 0.0912,
        "t4g.small": 0.0184, "t4g.medium": 0.0368, "t4g.large": 0.0736,
        "m5.large": 0.107, "m5.xlarge": 0.214,
        "m6i.large": 0.107, "m6i.xlarge": 0.214,
        "m6a.large": 0.0963, "m6a.xlarge": 0.1926,
        "m7i.large": 0.1124, "m7i.xlarge": 0.2247,
        "m7g.large": 0.0912, "m7g.xlarge": 0.1824,
        "c7g.large": 0.0821, "c7g.xlarge": 0.1642,
    },
}
INSTANCES: dict[str, dict[str, Price]] = {
    region: {kind: Price(usd, "instance-hour", EC2_PAGE) for kind, usd in rows.items()}
    for region, rows in _HOURLY.items()}


# --- everything else --------------------------------------------------------------------------

EBS_PAGE = "aws.amazon.com/ebs/pricing/ (gp3 storage; 3,000 IOPS and 125 MB/s included)"
ELB_PAGE = "aws.amazon.com/elasticloadbalancing/pricing/ (Network Load Balancer)"
VPC_PAGE = "aws.amazon.com/vpc/pricing/"
KMS_PAGE = "aws.amazon.com/kms/pricing/"
S3_PAGE = "aws.amazon.com/s3/pricing/ (S3 Standard)"
SECRETS_PAGE = "aws.amazon.com/secrets-manager/pricing/"
CLOUDWATCH_PAGE = "aws.amazon.com/cloudwatch/pricing/"


def _services(gp3: float, nlb: float, nat: float, logs: float, endpoint: float) -> dict[str, Price]:
    """One region's rows; the arguments are the rates that differ between the regions shipped."""
    return {
        "ebs-gp3": Price(gp3, "GB-month", EBS_PAGE),
        "nlb": Price(nlb, "load-balancer-hour", ELB_PAGE),
        "nlcu": Price(0.006, "NLCU-hour", ELB_PAGE),
        "nat": Price(nat, "gateway-hour", f"{VPC_PAGE} (NAT gateway)"),
        "nat-data": Price(nat, "GB", f"{VPC_PAGE} (NAT gateway, data processed)"),
        "public-ipv4": Price(0.005, "address-hour", f"{VPC_PAGE} (public IPv4 address, in use)"),
        "endpoint": Price(endpoint, "endpoint-AZ-hour", f"{VPC_PAGE} (PrivateLink interface endpoint, per AZ)"),
        "kms-key": Price(1.0, "key-month", f"{KMS_PAGE} (customer managed key)"),
        "kms-requests": Price(0.03, "request", f"{KMS_PAGE} (symmetric key requests)", per=10_000),
        "s3": Price(0.023, "GB-month", f"{S3_PAGE} (first 50 TB)"),
        "s3-requests": Price(0.005, "request", f"{S3_PAGE} (PUT, COPY, POST, LIST requests)", per=1_000),
        "secret": Price(0.40, "secret-month", SECRETS_PAGE),
        "logs-ingest": Price(logs, "GB", f"{CLOUDWATCH_PAGE} (vended logs to CloudWatch Logs, first 10 TB)"),
        "logs-storage": Price(0.03, "GB-month", f"{CLOUDWATCH_PAGE} (logs storage)"),
        "metric": Price(0.30, "metric-month", f"{CLOUDWATCH_PAGE} (metrics, first 10,000; detailed monitoring "
                                              "is 7 metrics an instance in the page's EC2 example)"),
    }


SERVICES: dict[str, dict[str, Price]] = {
    "us-east-1": _services(gp3=0.08, nlb=0.0225, nat=0.045, logs=0.50, endpoint=0.01),
    "eu-west-1": _services(gp3=0.088, nlb=0.0252, nat=0.048, logs=0.57, endpoint=0.011),
}


def offline(region: str, note: str = "") -> PriceBook:
    """The table's prices for ``region`` (empty for a region not shipped: every line unknown)."""
    return PriceBook(region, OFFLINE, INSTANCES.get(region, {}), SERVICES.get(region, {}), note=note)


# --- what the model assumes instead of knowing -------------------------------------------------

@dataclass(frozen=True)
class Assumption:
    value: float
    unit: str
    why: str


ASSUMPTIONS: dict[str, Assumption] = {
    "spot-discount": Assumption(
        60, "percent off the on-demand price",
        "offline, spot capacity is priced at 40% of on-demand: AWS states spot saves 'up to 90%' "
        "(aws.amazon.com/ec2/spot/pricing/), the Spot Instance Advisor lists the saving per type; "
        "--prices online uses the current spot price instead (EC2 DescribeSpotPriceHistory)"),
    "nlcu": Assumption(
        1, "NLCU per load balancer and hour",
        "one NLCU is 800 new TCP flows a second, 100,000 active flows or 1 GB an hour "
        "(aws.amazon.com/elasticloadbalancing/pricing/); the API traffic of a small cluster stays under it"),
    "nat-data": Assumption(
        100, "GB a month through the NAT gateways",
        "container images and charts from public registries and AWS API calls; K3s itself comes "
        "from the artifact bucket through the S3 gateway endpoint (free)"),
    "snapshot": Assumption(
        0.1, "GB per etcd snapshot",
        "an etcd database of a small cluster; S3 keeps k3s.etcd_snapshots.retention of them"),
    "s3-requests": Assumption(
        10_000, "S3 PUT/LIST requests a month", "snapshot uploads, K3s's retention listings, boot reads"),
    "kms-requests": Assumption(
        10_000, "KMS requests a month", "secret reads at boot and Secrets Manager's own calls"),
    "flow-logs": Assumption(
        5, "GB of VPC flow logs a month", "ALL traffic of a small cluster's VPC (managed network only)"),
    "metrics-per-instance": Assumption(
        7, "detailed monitoring metrics per instance", "the EC2 example of aws.amazon.com/cloudwatch/pricing/"),
}
