"""The managed-network environment (environments/staging.yaml: network.create, an
internet-facing API) on the session's moto server, through the real CLI: pre-flight passes,
the Network stack creates the VPC, nodes land in its private subnets, destroy removes it."""

from __future__ import annotations

import pytest

from tests.support.emulated_account import nested_outputs

STACK = "k3s-managed"
POOL = {"name": "general", "instance_types": ["t3.small"], "min_size": 1, "desired": 1, "max_size": 2,
        "root_volume_gb": 30}


@pytest.fixture(scope="module")
def config(write_env):
    return str(write_env("managed.yaml", base="staging", agent_pools=[POOL],
                         servers={"count": 1, "instance_type": "t3.small"},
                         deploy={"stack_name": STACK, "tags": {"managed-by": "k3s-infra"}}))


def _vpcs(aws) -> list[str]:
    return [v["VpcId"] for v in aws.ec2.describe_vpcs(Filters=[
        {"Name": "tag:k3s-infra:cluster", "Values": [STACK]}])["Vpcs"]]


def _nested_outputs(aws, logical: str) -> dict[str, str]:
    return nested_outputs(aws, STACK, logical)


def _nested_resources(aws, logical: str, type_: str) -> dict[str, str]:
    cfn = aws.cloudformation
    (resource,) = [r for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
                   if r["LogicalResourceId"] == logical]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in
            cfn.list_stack_resources(StackName=resource["PhysicalResourceId"])["StackResourceSummaries"]
            if r["ResourceType"] == type_}


def test_managed_network_deploys_with_nodes_in_private_subnets(cli, config, aws):
    result = cli("deploy", "--config", config, "--yes")
    assert result.code == 0, result
    (vpc,) = _vpcs(aws)
    network = _nested_outputs(aws, "Network")
    assert network["VpcId"] == vpc
    private, public = network["SubnetIds"].split(","), network["PublicSubnetIds"].split(",")
    assert len(private) == len(public) == 3 and not set(private) & set(public)
    subnets = {s["SubnetId"]: s for s in aws.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]}
    assert set(subnets) == set(private) | set(public)
    assert len({subnets[s]["AvailabilityZone"] for s in private}) == 3
    reservations = aws.ec2.describe_instances(Filters=[
        {"Name": "tag:k3s-infra:cluster", "Values": [STACK]},
        {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert instances and all(i["SubnetId"] in private for i in instances)
    # private route tables leave through the NAT gateway, the public one through the internet gateway.
    # (moto 5.2.5 creates AWS::EC2::SubnetRouteTableAssociation without recording the association,
    # so the tables are found through the Network stack's resources; the associations themselves
    # are asserted on the template in tests/unit/stacks/test_api_endpoint.py.)
    tables = _nested_resources(aws, "Network", "AWS::EC2::RouteTable")
    assert len(tables) == 4
    for logical, table_id in tables.items():
        (table,) = aws.ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"]
        (route,) = [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        kind = "igw-" if logical.startswith("Public") else "nat-"
        assert (route.get("NatGatewayId") or route.get("GatewayId")).startswith(kind), (logical, route)
    assert "PublicApiDnsName" in result.out


def test_destroy_leaves_no_vpc_behind(cli, config, aws):
    result = cli("destroy", "--config", config, "--yes")
    assert result.code == 0, result
    assert _vpcs(aws) == []
