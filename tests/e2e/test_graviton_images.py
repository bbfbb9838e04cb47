"""A cluster with x86_64 servers and a Graviton pool deploys into moto with one image
pinned per architecture: the root gets both, each node stack the one of its instance
types, and the plan shows each. The images are moto's own Amazon images of each
architecture (pre-flight checks them), published at test-owned SSM paths as AWS
publishes the AL2023 ones."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

STACK = "k3s-graviton"
PATHS = {"x86_64": "/test/k3s-graviton/al2023-x86_64", "arm64": "/test/k3s-graviton/al2023-arm64"}
IMAGES = SimpleNamespace(x86_64="", arm64="")
POOLS = [
    {"name": "general", "instance_types": ["t3.small"], "min_size": 1, "desired": 1, "max_size": 2},
    {"name": "arm", "instance_types": ["m7g.large", "c7g.large"], "min_size": 1, "desired": 1, "max_size": 2},
]


@pytest.fixture(scope="module")
def config(write_env, aws):
    for arch in PATHS:
        images = aws.ec2.describe_images(Owners=["amazon"], Filters=[
            {"Name": "architecture", "Values": [arch]}, {"Name": "state", "Values": ["available"]}])["Images"]
        image = sorted(i["ImageId"] for i in images)[0]
        setattr(IMAGES, arch, image)
        aws.ssm.put_parameter(Name=PATHS[arch], Value=image, Type="String", DataType="aws:ec2:image", Overwrite=True)
    return str(write_env("graviton.yaml", agent_pools=POOLS, nodes={"ami_parameter": dict(PATHS)},
                         deploy={"stack_name": STACK}))


def parameters(aws, stack_name: str) -> dict[str, str]:
    stack = aws.cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


def node_stack_images(aws) -> dict[str, str]:
    found = {}
    for res in aws.cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]:
        if res["ResourceType"] == "AWS::CloudFormation::Stack":
            image = parameters(aws, res["PhysicalResourceId"]).get("ImageId")
            if image:
                found[res["LogicalResourceId"]] = image
    return found


def test_plan_shows_one_image_per_architecture(cli, config):
    plan = cli("plan", "--config", config)
    assert plan.code == 0, plan
    for arch, path in PATHS.items():
        assert f"{getattr(IMAGES, arch)} (resolved from {path}; pinned from now on)" in plan.out


def test_deploy_pins_both_images_and_each_stack_gets_its_own(cli, config, aws):
    result = cli("deploy", "--config", config, "--yes")
    assert result.code == 0, result
    root = parameters(aws, STACK)
    assert (root["ImageId"], root["ImageIdArm64"]) == (IMAGES.x86_64, IMAGES.arm64)
    assert node_stack_images(aws) == {"ServerInit": IMAGES.x86_64, "Servers": IMAGES.x86_64,
                                      "AgentPoolGeneral": IMAGES.x86_64, "AgentPoolArm": IMAGES.arm64}


def test_a_newer_arm64_image_is_kept_out_until_asked(cli, config, aws):
    newer = sorted(i["ImageId"] for i in aws.ec2.describe_images(Owners=["amazon"], Filters=[
        {"Name": "architecture", "Values": ["arm64"]}])["Images"])[1]
    aws.ssm.put_parameter(Name=PATHS["arm64"], Value=newer, Type="String", DataType="aws:ec2:image", Overwrite=True)
    plan = cli("plan", "--config", config)
    assert plan.code == 0, plan
    assert f"image ImageIdArm64: {IMAGES.arm64} kept; a newer image {newer} is published at {PATHS['arm64']}" \
        in plan.out
    assert f"image: {IMAGES.x86_64} (pinned)" in plan.out
    plan = cli("plan", "--config", config, "--update-image")
    assert f"image ImageIdArm64: {IMAGES.arm64} -> {newer}" in plan.out, plan


def test_destroy(cli, config, aws):
    assert cli("destroy", "--config", config, "--yes").code == 0
