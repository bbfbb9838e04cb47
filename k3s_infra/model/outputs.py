"""Names of stack Outputs and Parameters: the interface between nested stacks.

A child exports a value under one of these names and its siblings receive it
as a Parameter of the same name, wired by the root with
``GetAtt(<Child>, "Outputs.<Name>")``.
"""

# Security stack
SERVER_SECURITY_GROUP = "ServerSecurityGroupId"
AGENT_SECURITY_GROUP = "AgentSecurityGroupId"
API_LB_SECURITY_GROUP = "ApiLoadBalancerSecurityGroupId"
PUBLIC_API_LB_SECURITY_GROUP = "PublicApiLoadBalancerSecurityGroupId"  # api.scheme internet-facing only

# API endpoint stack
API_DNS_NAME = "ApiDnsName"
API_TARGET_GROUP = "ApiTargetGroupArn"
API_LOAD_BALANCER = "ApiLoadBalancerArn"
# ... and with api.scheme internet-facing, the second (public) door
PUBLIC_API_DNS_NAME = "PublicApiDnsName"
PUBLIC_API_TARGET_GROUP = "PublicApiTargetGroupArn"
PUBLIC_API_LOAD_BALANCER = "PublicApiLoadBalancerArn"

# Network stack (network.create only); otherwise the root sets these from config
PUBLIC_SUBNET_IDS = "PublicSubnetIds"
# ... and the node subnets split per server group (model/placement.py): the first server's
# zone, and every other zone for the joining servers
FIRST_SERVER_SUBNET_IDS = "FirstServerSubnetIds"
JOINING_SERVER_SUBNET_IDS = "JoiningServerSubnetIds"
# One node subnet per zone: the internal API load balancer's (model/placement.py one_per_zone).
LOAD_BALANCER_SUBNET_IDS = "LoadBalancerSubnetIds"

# Cluster data stack
TOKEN_SECRET = "TokenSecretArn"
AGENT_TOKEN_SECRET = "AgentTokenSecretArn"
KUBECONFIG_SECRET = "KubeconfigSecretArn"
SNAPSHOT_BUCKET = "SnapshotBucketName"
CLUSTER_KEY = "ClusterKeyArn"

# From config, not from a stack (root.config_values): SSM parameters the nodes own
# (naming.cluster_state_parameter / restore_request_parameter), never CFN resources,
# and the root stack's own name (node roles may signal only their own nested stacks).
CLUSTER_STATE_PARAMETER = "ClusterStateParameterName"
RESTORE_REQUEST_PARAMETER = "RestoreRequestParameterName"
ROOT_STACK_NAME = "RootStackName"

# Draining stack (only when the node termination handler is on)
DRAIN_QUEUE_URL = "DrainQueueUrl"
DRAIN_QUEUE_ARN = "DrainQueueArn"

# Cluster data stack, per add-on secret: addons.SecretSpec.output (e.g. RancherBootstrapPasswordSecretArn)

# Identity stack: the OIDC issuer of pod IAM
ISSUER_URL = "IssuerUrl"
ISSUER_BUCKET = "IssuerBucketName"
OIDC_PROVIDER = "OidcProviderArn"

# Node IAM stack
FIRST_SERVER_INSTANCE_PROFILE = "FirstServerInstanceProfileArn"
SERVER_INSTANCE_PROFILE = "ServerInstanceProfileArn"
AGENT_INSTANCE_PROFILE = "AgentInstanceProfileArn"
FIRST_SERVER_ROLE = "FirstServerRoleArn"
SERVER_ROLE = "ServerRoleArn"
AGENT_ROLE = "AgentRoleArn"

# Node group stacks
AUTO_SCALING_GROUP = "AutoScalingGroupName"
LAUNCH_TEMPLATE = "LaunchTemplateId"

# Parameters the root sets from config (not outputs of a sibling)
VPC_ID = "VpcId"
VPC_CIDR = "VpcCidr"
SUBNET_IDS = "SubnetIds"
IMAGE_ID = "ImageId"  # every node stack's image; the root passes the one of the stack's architecture
# Root parameters: the pinned image per architecture in use. x86_64 keeps the name of
# before Graviton support, so deployed roots keep their pinned value (deploy/images.py).
IMAGE_IDS = {"x86_64": IMAGE_ID, "arm64": "ImageIdArm64"}
MIN_SIZE = "MinSize"
MAX_SIZE = "MaxSize"
DESIRED_CAPACITY = "DesiredCapacity"
