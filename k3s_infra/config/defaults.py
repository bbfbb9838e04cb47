"""Default versions and settings, as data. Environment files override them."""

K3S_VERSION = "v1.33.5+k3s1"
# Where the deployer downloads the K3s release files it stages for the nodes (a mirror may
# replace it; same layout: <release_url>/<version, "+" as %2B>/<file>: deploy/artifacts.py).
K3S_RELEASE_URL = "https://github.com/k3s-io/k3s/releases/download"
# The published checksums (sha256sum-<arch>.txt) always come from the official release, never
# from a mirror (k3s-io/k3s:install.sh, download_hash), unless --artifacts DIR brings them.
K3S_OFFICIAL_RELEASE_URL = "https://github.com/k3s-io/k3s/releases/download"
# TimeoutStartSec of a node's first K3s start (a runtime drop-in; later boots keep the
# official unit's TimeoutStartSec=0): install + etcd join fit well inside it.
K3S_FIRST_START_TIMEOUT = 300

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

# Amazon Linux 2023's public image parameters, one per architecture ("Launching AL2023 using
# the SSM parameter": https://docs.aws.amazon.com/linux/al2023/ug/ec2.html).
AMI_PARAMETERS = {
    "x86_64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    "arm64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
}

# Node launch settings that are not worth a config knob.
ROOT_DEVICE_NAME = "/dev/xvda"
ROOT_VOLUME_TYPE = "gp3"
# IMDSv2 answers a PUT for a token with IP TTL = hop limit; each network hop (the pod's
# veth into the node) takes one. Hop limit 1 on every node: only host processes and
# host-network pods reach it, so no pod in the pod network can take a node's role; pods that
# call AWS get roles of their own (model/workload_identity.py).
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-v2-how-it-works.html
IMDS_HOP_LIMIT = 1
TERMINATION_HOOK_TIMEOUT_SECONDS = 300

# A node signals CloudFormation (SignalResource) once K3s on it is up and joined.
# A K3s boot: packages + install (2-4 min), etcd join or agent registration (1-3 min);
# the boot gives up by BOOT_DEADLINE_SECONDS, inside the signal timeout, and the ASG
# health-check grace equals it so a booting node is never judged before it has had the
# chance to signal.
# The boot's bounded waits (boot.sh reads them from boot.env): back-off doubles from
# RETRY_BASE to RETRY_MAX seconds (jittered) between attempts. Each is bounded on its own
# (a first create starts joiners and agents together with the first server (stacks/root.py),
# so the waits that depend on it — the API (JOIN_ATTEMPTS), its published token
# (TOKEN_ATTEMPTS), a fact another stack writes (FACT_ATTEMPTS: the OIDC issuer's URL once
# CloudFront deployed it, boot.sh bind_facts) — have attempts for over 30 minutes and the
# boot's deadline decides; the first start K3S_FIRST_START_TIMEOUT, readiness ~5 min
# (READY_ATTEMPTS); AWS API calls (and
# the IMDS token) get AWS_ATTEMPTS, metadata reads, downloads, packages and the signal
# FETCH_ATTEMPTS), and all of them together by BOOT_DEADLINE_SECONDS: their worst cases add
# up to more than the signal timeout.
BOOT_WAITS = {"RETRY_BASE": 5, "RETRY_MAX": 30, "JOIN_ATTEMPTS": 80, "PROBE_ATTEMPTS": 6, "READY_ATTEMPTS": 20,
              "TOKEN_ATTEMPTS": 80, "AWS_ATTEMPTS": 10, "FETCH_ATTEMPTS": 5, "FACT_ATTEMPTS": 80}
NODE_SIGNAL_TIMEOUT_SECONDS = 1200
# One deadline bounds the whole boot (no wait starts past it), so a node that gives up
# still signals FAILURE before CloudFormation's signal timeout runs out: 3 minutes short of
# it, for cloud-init's start before the script and the FAILURE signal's own attempts
# (SIGNAL_ALLOWANCE past the deadline).
BOOT_DEADLINE_SECONDS = NODE_SIGNAL_TIMEOUT_SECONDS - 180
SIGNAL_ALLOWANCE_SECONDS = 90
# Joining servers and agents start together with the first server on a first create
# (stacks/root.py) and their boot waits for its API and token: their budget is the first
# server's whole budget plus their own, for the signal timeout, the boot's deadline (the
# same 3 minutes short) and the health-check grace alike.
JOINER_SIGNAL_TIMEOUT_SECONDS = 2 * NODE_SIGNAL_TIMEOUT_SECONDS

# The servers' watch (bootstrap/watch.sh): how often it looks, and how long K3s must be
# down before a server asks to be replaced (long enough for a K3s restart or upgrade,
# short next to an hour of lost redundancy).
WATCH_INTERVAL_SECONDS = 10
UNHEALTHY_AFTER_SECONDS = 300
# Server groups hold a terminating instance (Terminating:Wait) until its watch completes
# this hook: time for a lone server's on-demand etcd snapshot to reach S3.
SNAPSHOT_HOOK = "snapshot-before-terminate"
SNAPSHOT_HOOK_TIMEOUT_SECONDS = 300
SNAPSHOT_TIMEOUT_SECONDS = 240
# An on-demand snapshot taken before a lone server's termination is named
# <PRE_TERMINATION_SNAPSHOT>-<instance ID>-<node name>-<unix time> (K3s appends the last two).
PRE_TERMINATION_SNAPSHOT = "pre-termination"
# A restore request a lone server leaves for its replacement expires after this long.
PRE_TERMINATION_REQUEST_SECONDS = 3600
# Spot pools may come up short of capacity: CloudFormation accepts the group when at
# least this share of its instances signalled SUCCESS (rounded up by CloudFormation).
SPOT_MIN_SUCCESSFUL_PERCENT = 50

# Rolling updates of launch template changes (e.g. a new K3s version) wait for each
# batch's signals (PauseTime = the group's signal timeout: roles.Role.signal_timeout_seconds). Servers go one at a time (etcd
# keeps quorum); agents go in batches of about a quarter of the pool.
AGENT_ROLL_BATCH_FRACTION = 4

# Pod IAM (stacks/identity.py). The audience of the tokens the webhook projects for STS
# (aws/amazon-eks-pod-identity-webhook, --token-audience default) and of the OIDC provider.
TOKEN_AUDIENCE = "sts.amazonaws.com"
# CloudFront's managed cache policy "CachingDisabled": a rotated key is served at once
# (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/using-managed-cache-policies.html).
CLOUDFRONT_CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
# Partitions where the issuer sits behind CloudFront with origin access control; elsewhere the
# bucket serves it (components/oidc_issuer.py public_issuer).
CLOUDFRONT_PARTITIONS = ("aws",)
# A thumbprint for AWS::IAM::OIDCProvider (components/oidc_issuer.py _provider: not used for
# certificates from CAs IAM trusts; given so that creating the provider reads nothing).
OIDC_THUMBPRINT = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"
# aws/amazon-eks-pod-identity-webhook v0.6.17, pinned by the digest of its multi-arch manifest
# list. AWS publishes it at public.ecr.aws/eks/amazon-eks-pod-identity-webhook (its issue
# #273: Docker Hub stopped at v0.6.7); the digest is as resolved with `docker buildx
# imagetools inspect` in a public manifest (sivchari/fjord internal/cluster/irsa.go), not by
# AWS: confirm with `crane digest <image>:v0.6.17` when bumping (docs/pod-iam.md).
POD_IDENTITY_WEBHOOK_IMAGE = ("public.ecr.aws/eks/amazon-eks-pod-identity-webhook@sha256:"
                              "3071570e8e8cba6d5aff01e86d52bc91025a0578782aa9cd2b681480845b0a50")
