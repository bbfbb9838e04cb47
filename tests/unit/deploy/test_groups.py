"""DescribeAutoScalingGroups takes at most 50 names a call
(https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingGroups.html):
the deployer batches, against botocore's Stubber, which checks every call's parameters."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from k3s_infra.deploy.groups import describe_groups


def test_more_than_fifty_groups_are_described_in_batches():
    client = boto3.client("autoscaling", region_name="eu-west-1", aws_access_key_id="x",
                          aws_secret_access_key="x", endpoint_url="https://autoscaling.invalid")
    names = [f"k3s-group-{i:03}" for i in range(120)]

    def group(name):
        return {"AutoScalingGroupName": name, "MinSize": 0, "MaxSize": 1, "DesiredCapacity": 0,
                "DefaultCooldown": 300, "AvailabilityZones": ["eu-west-1a"], "HealthCheckType": "EC2",
                "CreatedTime": "2026-01-01T00:00:00Z"}

    with Stubber(client) as stub:
        for start in (0, 50, 100):
            batch = names[start:start + 50]
            stub.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [group(n) for n in batch]},
                              {"AutoScalingGroupNames": batch})
        found = describe_groups(client, names + names[:3])  # duplicates are asked once
        stub.assert_no_pending_responses()
    assert sorted(found) == names
