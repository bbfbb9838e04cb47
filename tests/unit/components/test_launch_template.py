"""Node launch templates (k3s_infra/components/launch_template.py): IMDS on with tokens
required (IMDSv2 only: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html),
detailed monitoring (checkov CKV_AWS_126), instances and their volumes tagged with the file's
deploy.tags, and the root volume encrypted gp3 under Amazon Linux's root device name, sized by
the file and deleted with its instance (LaunchTemplateData,
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-ec2-launchtemplate-launchtemplatedata.html).
Some tests render in the test itself (not through the session fixture), so mutation testing
links these checks to the code they cover; expected values come from the environment files
read with plain PyYAML (tests/support/oracle_helpers.py) and the AWS docs cited.
"""

from __future__ import annotations

import json

import pytest
from troposphere import Base64, Ref

from k3s_infra.components import launch_template
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import load_environment
from k3s_infra.render import build_templates
from tests.support.oracle_helpers import (
    DEPLOYABLE,
    REPO,
    launch_template_data,
    node_stack_ids,
    plain_document,
)
from tests.support.rendered import node_stacks
from tests.support.rendered import pool_stack as _pool_stack
from tests.support.rendering import component_resources as _resources


# Function scope on purpose: mutmut links a test to the code it calls itself, and a shared
# fixture would credit only the first test of the module.
@pytest.fixture
def prod() -> tuple[dict, dict[str, dict]]:
    path = next(p for p in DEPLOYABLE if p.stem == "prod")
    templates = {k: t.to_dict() for k, t in build_templates(load_environment("prod")).items()}
    return plain_document(path), templates


def _launch_data() -> dict:
    t = StackTemplate("test", {})
    spec = launch_template.LaunchSpec(instance_type="t3.small", root_volume_gb=30, image_id=Ref("ImageId"),
                                      security_group_id=Ref("Sg"), instance_profile_arn=Ref("Profile"),
                                      user_data=Base64("#cloud-config\n"), tags={"a": "b"})
    launch_template.build(t, "NodeLaunchTemplate", spec)
    return _resources(t)["NodeLaunchTemplate"]["Properties"]["LaunchTemplateData"]


def test_launch_template_keeps_imds_on_and_requires_tokens():
    """HttpEndpoint disabled would cut nodes off the metadata service (no role credentials,
    no instance ID); HttpTokens required is IMDSv2 only
    (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html)."""
    options = _launch_data()["MetadataOptions"]
    assert options["HttpEndpoint"] == "enabled"
    assert options["HttpTokens"] == "required"
    assert options["HttpPutResponseHopLimit"] in (1, 2)  # 2 only for pods that need it (model.roles)


def test_launch_template_root_volume_is_encrypted():
    (volume,) = _launch_data()["BlockDeviceMappings"]
    assert volume["Ebs"]["Encrypted"] is True and volume["Ebs"]["VolumeSize"] == 30


def test_launch_templates_require_imdsv2_and_encrypt_volumes(r):
    for stack in node_stacks(r):
        templates = r.resources(stack, "AWS::EC2::LaunchTemplate")
        assert len(templates) == 1
        data = next(iter(templates.values()))["Properties"]["LaunchTemplateData"]
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["MetadataOptions"]["HttpPutResponseHopLimit"] in (1, 2)  # per role: tests/properties/test_hardening.py
        (volume,) = data["BlockDeviceMappings"]
        assert volume["Ebs"]["Encrypted"] is True and volume["Ebs"]["VolumeType"] == "gp3"
        assert data["ImageId"] == {"Ref": "ImageId"}
        assert "Arn" in data["IamInstanceProfile"]
        assert {spec["ResourceType"] for spec in data["TagSpecifications"]} == {"instance", "volume"}


def test_detailed_monitoring_is_on_for_every_node(prod):
    # 1-minute instance metrics (checkov CKV_AWS_126; "Monitoring" in
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-ec2-launchtemplate-launchtemplatedata.html).
    _, templates = prod
    for stack_id in node_stack_ids(templates):
        assert launch_template_data(templates[stack_id])["Monitoring"] == {"Enabled": True}, stack_id


def test_instances_and_their_volumes_carry_the_files_tags(prod):
    # A launch template's TagSpecifications tag what it launches; the ASG's own tags do
    # not reach EBS volumes (LaunchTemplateData TagSpecifications, same page).
    document, templates = prod
    wanted = document["deploy"]["tags"]
    assert wanted  # prod.yaml sets tags: the check below is not vacuous
    for stack_id in node_stack_ids(templates):
        specs = launch_template_data(templates[stack_id])["TagSpecifications"]
        assert sorted(s["ResourceType"] for s in specs) == ["instance", "volume"], stack_id
        for spec in specs:
            tags = {t["Key"]: t["Value"] for t in spec["Tags"]}
            assert wanted.items() <= tags.items(), (stack_id, spec["ResourceType"])


def test_the_root_volume_is_encrypted_gp3_sized_by_the_file_and_goes_with_its_instance(prod):
    # A mapping applies to the root volume only under the image's root device name: /dev/xvda
    # for Amazon Linux (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/device_naming.html).
    # Without VolumeType EC2 picks gp2 (LaunchTemplate Ebs "VolumeType",
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-ec2-launchtemplate-ebs.html);
    # without DeleteOnTermination a scale-in could leave the volume behind, paid for.
    document, templates = prod
    assert all("al2023" in path for path in document["nodes"]["ami_parameter"].values())  # one per architecture
    sizes = {"ServerInit": document["servers"]["root_volume_gb"], "Servers": document["servers"]["root_volume_gb"]}
    # A pool that says nothing gets the documented default (environments/schema.json).
    schema = json.loads((REPO / "environments" / "schema.json").read_text())
    default = schema["$defs"]["AgentPool"]["properties"]["root_volume_gb"]["default"]
    for pool in document["agent_pools"]:
        sizes["AgentPool" + "".join(w.capitalize() for w in pool["name"].split("-"))] = \
            pool.get("root_volume_gb", default)
    assert sorted(node_stack_ids(templates)) == sorted(sizes)
    for stack_id, size in sizes.items():
        (mapping,) = launch_template_data(templates[stack_id])["BlockDeviceMappings"]
        assert mapping == {"DeviceName": "/dev/xvda", "Ebs": {
            "VolumeType": "gp3", "VolumeSize": size, "Encrypted": True, "DeleteOnTermination": True}}, stack_id


def test_root_volume_sizes_come_from_config(r):
    def size(stack):
        data = next(iter(r.resources(stack, "AWS::EC2::LaunchTemplate").values()))["Properties"]
        return data["LaunchTemplateData"]["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"]

    assert size("ServerInit") == size("Servers") == r.env.servers.root_volume_gb
    for pool in r.env.agent_pools:
        assert size(_pool_stack(pool)) == pool.root_volume_gb
