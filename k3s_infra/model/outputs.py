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
FIRST_SERVER_ROLE_NAME = "FirstServerRoleName"  # IssuerAccess attaches the issuer's publish policy to it
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
# Every node stack's K3s release files (deploy/artifacts.py): the SHA-256 of the binary and of
# the airgap images tarball its nodes install from the artifact bucket, where the key names the
# digest (naming.k3s_artifact_key); the root passes the ones of the stack's architecture.
K3S_BINARY_SHA256 = "K3sBinarySha256"
K3S_IMAGES_SHA256 = "K3sImagesSha256"
# Root parameters per architecture in use, resolved by the deployer as IMAGE_IDS are.
K3S_BINARY_SHA256S = {"x86_64": "K3sBinarySha256Amd64", "arm64": "K3sBinarySha256Arm64"}
K3S_IMAGES_SHA256S = {"x86_64": "K3sImagesSha256Amd64", "arm64": "K3sImagesSha256Arm64"}
MIN_SIZE = "MinSize"
MAX_SIZE = "MaxSize"
DESIRED_CAPACITY = "DesiredCapacity"
