"""Default versions and settings, as data. Environment files override them."""

K3S_VERSION = "v1.33.5+k3s1"
K3S_INSTALLER_URL = "https://get.k3s.io"

CLUSTER_CIDR = "10.42.0.0/16"
SERVICE_CIDR = "10.43.0.0/16"
CLUSTER_DNS = "10.43.0.10"
CLUSTER_DOMAIN = "cluster.local"
# servicelb would compete with the AWS cloud controller for LoadBalancer Services.
DISABLED_COMPONENTS = ("traefik", "servicelb")

ETCD_SNAPSHOT_SCHEDULE = "0 */6 * * *"
ETCD_SNAPSHOT_RETENTION = 20
SNAPSHOT_EXPIRE_DAYS = 30

# AWS cloud controller manager (kubernetes/cloud-provider-aws) Helm chart and image.
CCM_CHART_REPO = "https://kubernetes.github.io/cloud-provider-aws"
CCM_CHART_VERSION = "0.0.9"
CCM_IMAGE_TAG = "v1.33.0"

AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"

# Node launch settings that are not worth a config knob.
ROOT_DEVICE_NAME = "/dev/xvda"
ROOT_VOLUME_TYPE = "gp3"
# IMDSv2 answers a PUT for a token with IP TTL = hop limit; each network hop (the pod's
# veth into the node) takes one. Hop limit 1: only host processes and host-network pods
# reach it; 2: every pod on the node can take the instance role. Per role, see
# addons.imds_hop_limit (only a node running an AWS client in the pod network needs 2).
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-v2-how-it-works.html
IMDS_HOP_LIMIT_HOST_ONLY = 1
IMDS_HOP_LIMIT_POD_NETWORK = 2
HEALTH_CHECK_GRACE_SECONDS = 600
TERMINATION_HOOK_TIMEOUT_SECONDS = 300

# Rolling updates of launch template changes (e.g. a new K3s version).
# Servers go one at a time (etcd keeps quorum), waiting for each to join;
# agents go in batches of about a quarter of the pool.
SERVER_ROLL_PAUSE = "PT5M"
AGENT_ROLL_PAUSE = "PT2M"
AGENT_ROLL_BATCH_FRACTION = 4
