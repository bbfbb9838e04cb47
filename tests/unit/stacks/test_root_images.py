"""Graviton (arm64) nodes and the root's image parameters (stacks/root.py: image_parameters,
stack_architecture): each node stack gets the pinned image of its instance types'
architecture, one root parameter per architecture in use.

The expected architecture comes from this file's own table of AWS's Graviton instance
families (https://aws.amazon.com/ec2/graviton/ and
https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-type-names.html: a ``g``
after the generation means Graviton), never from k3s_infra.config.architectures.
"""

from __future__ import annotations

import yaml

from k3s_infra.config import available_environments

from tests.support.rendering import render_changed_dev as _render


ENVIRONMENTS = available_environments()

GRAVITON_FAMILIES = {
    "a1", "t4g", "m6g", "m6gd", "m7g", "m7gd", "m8g", "m8gd", "c6g", "c6gd", "c6gn", "c7g", "c7gd", "c7gn",
    "c8g", "r6g", "r6gd", "r7g", "r7gd", "r8g", "x2gd", "x8g", "im4gn", "is4gen", "i4g", "i8g", "g5g", "hpc7g",
}


# x86_64 families the shipped environments use (a type in neither set fails the test, so the
# table is extended rather than guessed).
X86_FAMILIES = {"t3", "t3a", "m5", "m6i", "m6a", "m7i", "m7a", "c6i", "c7i", "r6i", "r7i"}


# The root's image parameter per architecture: the interface the deployer pins (docs/operations.md, pinned node image).
ROOT_IMAGE = {"x86_64": "ImageId", "arm64": "ImageIdArm64"}


# Amazon Linux 2023's public parameters (https://docs.aws.amazon.com/linux/al2023/ug/ec2.html).
AL2023 = {"x86_64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
          "arm64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"}


def architecture(instance_type: str) -> str:
    family = instance_type.split(".")[0]
    assert family in GRAVITON_FAMILIES | X86_FAMILIES, f"add {family} to a table of this test"
    return "arm64" if family in GRAVITON_FAMILIES else "x86_64"


def node_stacks(r) -> dict[str, list[str]]:
    """Node stack ID -> the instance types the environment file gives it."""
    stacks = {"ServerInit": [r.env.servers.instance_type], "Servers": [r.env.servers.instance_type]}
    for pool in r.env.agent_pools:
        stacks["AgentPool" + "".join(w.capitalize() for w in pool.name.split("-"))] = list(pool.instance_types)
    return stacks


def test_each_node_stack_gets_the_pinned_image_of_its_architecture(r):
    """AWS::SSM::Parameter::Value<...> is re-resolved on every stack update (CloudFormation User Guide,
    cloudformation-supplied-parameter-types.html; API_Parameter ResolvedValue): the
    root takes plain AMI IDs, one per architecture in use, and passes each node stack the
    one its instance types run."""
    nested = r.resources("Root", "AWS::CloudFormation::Stack")
    used = set()
    for stack, types in node_stacks(r).items():
        (arch,) = {architecture(t) for t in types}
        used.add(arch)
        assert nested[stack]["Properties"]["Parameters"]["ImageId"] == {"Ref": ROOT_IMAGE[arch]}, stack
        assert r.templates[stack]["Parameters"]["ImageId"]["Type"] == "AWS::EC2::Image::Id"
        (launch,) = r.resources(stack, "AWS::EC2::LaunchTemplate").values()
        assert launch["Properties"]["LaunchTemplateData"]["ImageId"] == {"Ref": "ImageId"}
    images = {name: p for name, p in r.root["Parameters"].items() if name.startswith("ImageId")}
    assert set(images) == {ROOT_IMAGE[arch] for arch in used}  # none for an architecture not in use
    for arch in used:
        parameter = images[ROOT_IMAGE[arch]]
        assert parameter["Type"] == "AWS::EC2::Image::Id" and "Default" not in parameter
        assert AL2023[arch] in parameter["Description"]  # shipped files keep the defaults


def test_prod_runs_a_graviton_pool(rendered):
    """The prod-like example shows the feature, so the test above is not vacuous for arm64."""
    prod = rendered["prod"]
    assert {architecture(t) for p in prod.env.agent_pools for t in p.instance_types} == {"x86_64", "arm64"}
    assert "ImageIdArm64" in prod.root["Parameters"]


def test_graviton_servers_and_pool_use_only_the_arm64_image(tmp_path):
    def all_arm(d):
        d["servers"]["instance_type"] = "t4g.medium"
        for pool in d["agent_pools"]:
            pool["instance_types"] = ["m7g.large"]
    result = _render(tmp_path, all_arm)
    assert result.returncode == 0, result.stderr
    root = yaml.safe_load((tmp_path / "out" / "root.yaml").read_text())
    assert [n for n in root["Parameters"] if n.startswith("ImageId")] == ["ImageIdArm64"]
    assert {s["Properties"]["Parameters"]["ImageId"]["Ref"] for s in root["Resources"].values()
            if "ImageId" in s["Properties"]["Parameters"]} == {"ImageIdArm64"}


# The root's K3s digests per architecture (the deployer stages the files and resolves them:
# deploy/artifacts.py), named after K3s's architecture names (k3s-io/k3s install.sh: amd64, arm64).
ROOT_K3S = {"x86_64": ("K3sBinarySha256Amd64", "K3sImagesSha256Amd64"),
            "arm64": ("K3sBinarySha256Arm64", "K3sImagesSha256Arm64")}


def test_each_node_stack_gets_the_k3s_digests_of_its_architecture(r):
    """As with the images: plain values the deployer passes, one pair per architecture in use;
    each node stack gets its architecture's pair, and only hex digests pass (they reach boot.env,
    which the boot script sources)."""
    nested = r.resources("Root", "AWS::CloudFormation::Stack")
    stacks = node_stacks(r)
    used = set()
    for stack, types in stacks.items():
        (arch,) = {architecture(t) for t in types}
        used.add(arch)
        parameters = nested[stack]["Properties"]["Parameters"]
        assert (parameters["K3sBinarySha256"], parameters["K3sImagesSha256"]) == tuple(
            {"Ref": name} for name in ROOT_K3S[arch]), stack
        for name in ("K3sBinarySha256", "K3sImagesSha256"):
            assert r.templates[stack]["Parameters"][name]["AllowedPattern"] == "^[0-9a-f]{64}$"
    for stack, resource in nested.items():
        if stack not in stacks:
            assert not [n for n in resource["Properties"]["Parameters"] if n.startswith("K3s")], stack
    declared = {name: p for name, p in r.root["Parameters"].items() if name.startswith("K3s")}
    assert set(declared) == {name for arch in used for name in ROOT_K3S[arch]}
    for parameter in declared.values():
        assert (parameter["Type"], parameter["AllowedPattern"]) == ("String", "^[0-9a-f]{64}$")
        assert "Default" not in parameter
