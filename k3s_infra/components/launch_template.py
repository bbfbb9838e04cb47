"""Launch template of a node group: IMDSv2 only, encrypted gp3 root volume,
instance profile, node security group, tags on instances and volumes."""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import AWSHelperFn, GetAtt, Ref, Tags
from troposphere.ec2 import (
    EBSBlockDevice,
    IamInstanceProfile,
    LaunchTemplate,
    LaunchTemplateBlockDeviceMapping,
    LaunchTemplateData,
    MetadataOptions,
    Monitoring,
    TagSpecifications,
)

from k3s_infra.components.template import StackTemplate
from k3s_infra.config import defaults


@dataclass(frozen=True)
class LaunchSpec:
    instance_type: str
    root_volume_gb: int
    image_id: Ref
    security_group_id: Ref
    instance_profile_arn: Ref
    user_data: AWSHelperFn
    tags: dict[str, str]
    # Resources the instances read at boot that the user data pins (a server's bundle): a
    # new template version exists only once they hold what it pins.
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class LaunchTemplateRefs:
    id: Ref
    version: GetAtt


def build(t: StackTemplate, logical: str, spec: LaunchSpec) -> LaunchTemplateRefs:
    tags = Tags(**t.tags_for(spec.tags))
    template = t.add(LaunchTemplate(logical, LaunchTemplateData=LaunchTemplateData(
        ImageId=spec.image_id,
        InstanceType=spec.instance_type,
        IamInstanceProfile=IamInstanceProfile(Arn=spec.instance_profile_arn),
        SecurityGroupIds=[spec.security_group_id],
        MetadataOptions=MetadataOptions(
            HttpEndpoint="enabled", HttpTokens="required",
            HttpPutResponseHopLimit=defaults.IMDS_HOP_LIMIT, InstanceMetadataTags="disabled"),
        BlockDeviceMappings=[LaunchTemplateBlockDeviceMapping(
            DeviceName=defaults.ROOT_DEVICE_NAME,
            Ebs=EBSBlockDevice(VolumeType=defaults.ROOT_VOLUME_TYPE, VolumeSize=spec.root_volume_gb,
                               Encrypted=True, DeleteOnTermination=True))],
        Monitoring=Monitoring(Enabled=True),
        TagSpecifications=[TagSpecifications(ResourceType=kind, Tags=tags) for kind in ("instance", "volume")],
        UserData=spec.user_data,
    ), **({"DependsOn": list(spec.depends_on)} if spec.depends_on else {})))
    return LaunchTemplateRefs(id=Ref(template), version=GetAtt(template, "LatestVersionNumber"))
