"""Types and descriptions of every nested-stack Parameter, by interface name.

A child declares a parameter with ``declare(t, NAME)``; the root fills it
from config or from a sibling's Output of the same name.
"""

from __future__ import annotations

from troposphere import Ref

from k3s_infra.components.template import StackTemplate
from k3s_infra.model import addons
from k3s_infra.model import outputs as o

_TYPES: dict[str, tuple[str, str]] = {
    o.VPC_ID: ("AWS::EC2::VPC::Id", "VPC of the cluster"),
    o.VPC_CIDR: ("String", "CIDR block of the VPC"),
    o.SUBNET_IDS: ("List<AWS::EC2::Subnet::Id>", "Subnets of the nodes"),
    o.LOAD_BALANCER_SUBNET_IDS: ("List<AWS::EC2::Subnet::Id>",
                                 "Node subnets of the internal API load balancer, one per Availability Zone"),
    o.FIRST_SERVER_SUBNET_IDS: ("List<AWS::EC2::Subnet::Id>",
                                "Subnets of the cluster-init server: one zone with 3+ servers, else all"),
    o.JOINING_SERVER_SUBNET_IDS: ("List<AWS::EC2::Subnet::Id>",
                                  "Subnets of the joining servers: every zone but the first server's with 3+ servers"),
    o.IMAGE_ID: ("AWS::EC2::Image::Id", "AMI of the nodes (pinned by the deployer, see stacks/root.py)"),
    o.K3S_BINARY_SHA256: ("String", "SHA-256 of the K3s binary the nodes install (staged by the deployer)"),
    o.K3S_IMAGES_SHA256: ("String", "SHA-256 of the K3s airgap images the nodes import (staged by the deployer)"),
    o.SERVER_SECURITY_GROUP: ("AWS::EC2::SecurityGroup::Id", "Security group of K3s servers"),
    o.AGENT_SECURITY_GROUP: ("AWS::EC2::SecurityGroup::Id", "Security group of K3s agents"),
    o.API_LB_SECURITY_GROUP: ("AWS::EC2::SecurityGroup::Id", "Security group of the API load balancer"),
    o.PUBLIC_API_LB_SECURITY_GROUP: ("AWS::EC2::SecurityGroup::Id",
                                     "Security group of the internet-facing API load balancer"),
    o.PUBLIC_SUBNET_IDS: ("List<AWS::EC2::Subnet::Id>", "Public subnets of the internet-facing API load balancer, one per zone"),
    o.PUBLIC_API_DNS_NAME: ("String", "DNS name of the internet-facing K3s API load balancer"),
    o.PUBLIC_API_TARGET_GROUP: ("String", "ARN of the internet-facing K3s API target group"),
    o.API_DNS_NAME: ("String", "DNS name of the K3s API load balancer"),
    o.API_TARGET_GROUP: ("String", "ARN of the K3s API target group"),
    o.TOKEN_SECRET: ("String", "ARN of the K3s server token secret"),
    o.AGENT_TOKEN_SECRET: ("String", "ARN of the K3s agent token secret"),
    o.KUBECONFIG_SECRET: ("String", "ARN of the admin kubeconfig secret"),
    o.CLUSTER_STATE_PARAMETER: ("String", "Name of the SSM parameter marking an initialised cluster"),
    o.RESTORE_REQUEST_PARAMETER: ("String", "Name of the SSM parameter asking the first server to restore a snapshot"),
    o.ROOT_STACK_NAME: ("String", "Name of the root stack (its nested stacks are named <root>-<LogicalId>-<suffix>)"),
    o.SNAPSHOT_BUCKET: ("String", "Name of the etcd snapshot bucket"),
    o.CLUSTER_KEY: ("String", "ARN of the KMS key encrypting the cluster secrets"),
    o.DRAIN_QUEUE_URL: ("String", "URL of the node termination handler's SQS queue"),
    o.DRAIN_QUEUE_ARN: ("String", "ARN of the node termination handler's SQS queue"),
    **{spec.output: ("String", f"ARN of the secret: {spec.description}") for spec in addons.all_secret_specs()},
    o.FIRST_SERVER_INSTANCE_PROFILE: ("String", "ARN of the first server's instance profile"),
    o.SERVER_INSTANCE_PROFILE: ("String", "ARN of the joining servers' instance profile"),
    o.ISSUER_BUCKET: ("String", "Name of the bucket holding the OIDC issuer's documents"),
    o.FIRST_SERVER_ROLE_NAME: ("String", "Name of the first server's IAM role"),
    o.AGENT_INSTANCE_PROFILE: ("String", "ARN of the agent instance profile"),
    o.MIN_SIZE: ("Number", "Minimum number of instances"),
    o.MAX_SIZE: ("Number", "Maximum number of instances"),
    o.DESIRED_CAPACITY: ("Number", "Desired number of instances"),
}


SHA256_PATTERN = "^[0-9a-f]{64}$"


def declare(t: StackTemplate, name: str) -> Ref:
    type_, description = _TYPES[name]
    kwargs = {"MinValue": 0} if type_ == "Number" else {}
    if name in (o.K3S_BINARY_SHA256, o.K3S_IMAGES_SHA256):  # boot.env sources it: hex digits only
        kwargs["AllowedPattern"] = SHA256_PATTERN
    return Ref(t.parameter(name, type_, description, **kwargs))


def declare_all(t: StackTemplate, *names: str) -> dict[str, Ref]:
    return {name: declare(t, name) for name in names}

