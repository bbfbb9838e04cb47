"""Every node launch template, rendered in the test itself (not through the session fixture,
so mutation testing links these checks to the code they cover): detailed monitoring on,
instances and their volumes tagged with the environment file's deploy.tags. Expected
values: the environment files (read with plain PyYAML, tests/oracle_helpers.py) and the
AWS docs cited below."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from oracle_helpers import DEPLOYABLE, launch_template_data, node_stack_ids, plain_document

from k3s_infra.config import load_environment
from k3s_infra.render import build_templates


# Function scope on purpose: mutmut links a test to the code it calls itself, and a shared
# fixture would credit only the first test of the module.
@pytest.fixture
def prod() -> tuple[dict, dict[str, dict]]:
    path = next(p for p in DEPLOYABLE if p.stem == "prod")
    templates = {k: t.to_dict() for k, t in build_templates(load_environment("prod")).items()}
    return plain_document(path), templates


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
    schema = json.loads((Path(__file__).resolve().parent.parent / "environments" / "schema.json").read_text())
    default = schema["$defs"]["AgentPool"]["properties"]["root_volume_gb"]["default"]
    for pool in document["agent_pools"]:
        sizes["AgentPool" + "".join(w.capitalize() for w in pool["name"].split("-"))] = \
            pool.get("root_volume_gb", default)
    assert sorted(node_stack_ids(templates)) == sorted(sizes)
    for stack_id, size in sizes.items():
        (mapping,) = launch_template_data(templates[stack_id])["BlockDeviceMappings"]
        assert mapping == {"DeviceName": "/dev/xvda", "Ebs": {
            "VolumeType": "gp3", "VolumeSize": size, "Encrypted": True, "DeleteOnTermination": True}}, stack_id
