"""The node image is pinned across deploys and the quorum guard refuses unsafe
scale-ins, through the real CLI on the session's moto server. The image is
resolved from an SSM path the environment file names; the test publishes
"new images" there as AWS does for the public AL2023 parameter."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

STACK = "k3s-pin"
PATH = "/test/k3s-pin/al2023-ami"
# Three of moto's own x86_64 Amazon images (pre-flight checks that the image exists and
# matches the instance types, as it would on AWS): filled once by the fixture below.
IMAGES = SimpleNamespace(old="", new="", explicit="")


@pytest.fixture(scope="module")
def configs(write_env, aws):
    images = aws.ec2.describe_images(Owners=["amazon"], Filters=[
        {"Name": "architecture", "Values": ["x86_64"]}, {"Name": "state", "Values": ["available"]}])["Images"]
    IMAGES.old, IMAGES.new, IMAGES.explicit = sorted(i["ImageId"] for i in images)[:3]
    aws.ssm.put_parameter(Name=PATH, Value=IMAGES.old, Type="String", DataType="aws:ec2:image")
    common = {"deploy": {"stack_name": STACK}}
    return {
        "three": str(write_env("pin3.yaml", servers={"count": 3}, nodes={"ami_parameter": {"x86_64": PATH}},
                               **common)),
        "one": str(write_env("pin1.yaml", servers={"count": 1}, nodes={"ami_parameter": {"x86_64": PATH}}, **common)),
        "explicit": str(write_env("pin-explicit.yaml", servers={"count": 3},
                                  nodes={"ami_parameter": {"x86_64": PATH}, "ami_id": {"x86_64": IMAGES.explicit}},
                                  **common)),
    }


def root_image(aws) -> str:
    root = aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in root["Parameters"]}["ImageId"]


def node_stack_images(aws) -> set[str]:
    cfn = aws.cloudformation
    found = set()
    for res in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]:
        if res["LogicalResourceId"] in ("ServerInit", "Servers"):
            stack = cfn.describe_stacks(StackName=res["PhysicalResourceId"])["Stacks"][0]
            found |= {p["ParameterValue"] for p in stack["Parameters"] if p["ParameterKey"] == "ImageId"}
    return found


def test_first_deploy_pins_the_resolved_image(cli, configs, aws):
    result = cli("deploy", "--config", configs["three"], "--yes")
    assert result.code == 0, result
    assert root_image(aws) == IMAGES.old and node_stack_images(aws) == {IMAGES.old}
    assert f"image: {IMAGES.old} (resolved from {PATH}" in result.out


def test_a_newer_image_is_not_taken_unasked(cli, configs, aws):
    aws.ssm.put_parameter(Name=PATH, Value=IMAGES.new, Type="String", DataType="aws:ec2:image", Overwrite=True)
    plan = cli("plan", "--config", configs["three"])
    assert plan.code == 0, plan
    assert f"image: {IMAGES.old} kept; a newer image {IMAGES.new} is published at {PATH}" in plan.out
    assert "--update-image" in plan.out and "no changes" in plan.out, plan
    again = cli("deploy", "--config", configs["three"], "--yes")
    assert again.code == 0 and "up to date" in again.out, again
    assert root_image(aws) == IMAGES.old and node_stack_images(aws) == {IMAGES.old}


def test_plan_with_update_image_shows_old_to_new(cli, configs, aws):
    plan = cli("plan", "--config", configs["three"], "--update-image")
    assert plan.code == 0, plan
    assert f"image: {IMAGES.old} -> {IMAGES.new}" in plan.out
    assert root_image(aws) == IMAGES.old  # plan executes nothing


def test_update_image_takes_the_new_one(cli, configs, aws):
    result = cli("deploy", "--config", configs["three"], "--yes", "--update-image")
    assert result.code == 0, result
    assert root_image(aws) == IMAGES.new and node_stack_images(aws) == {IMAGES.new}


def test_explicit_ami_id_wins_over_the_parameter(cli, configs, aws):
    plan = cli("plan", "--config", configs["explicit"])
    assert plan.code == 0, plan
    assert f"image: {IMAGES.new} -> {IMAGES.explicit} (from nodes.ami_id.x86_64)" in plan.out


def test_scale_in_below_quorum_is_refused_before_any_upload(cli, configs, aws):
    before = aws.s3.list_objects_v2(Bucket="k3s-infra-123456789012-eu-west-1").get("KeyCount")
    change_sets = aws.cloudformation.list_change_sets(StackName=STACK)["Summaries"]
    result = cli("deploy", "--config", configs["one"], "--yes")
    assert result.code == 2, result
    assert "3 -> 1" in result.err and "k3s-infra restore" in result.err
    assert "Traceback" not in result.err
    assert aws.s3.list_objects_v2(Bucket="k3s-infra-123456789012-eu-west-1").get("KeyCount") == before
    assert aws.cloudformation.list_change_sets(StackName=STACK)["Summaries"] == change_sets
    assert aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    plan = cli("plan", "--config", configs["one"])
    assert plan.code == 2 and "3 -> 1" in plan.err, plan


def test_destroy(cli, configs, aws):
    assert cli("destroy", "--config", configs["three"], "--yes").code == 0
