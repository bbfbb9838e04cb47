"""Logical IDs, physical names and tags: made here and nowhere else.

Everything is derived from the environment's content (never a list position),
so the same config always gives the same identifiers, and reordering a list
in the config does not replace resources.
"""

from __future__ import annotations

import hashlib
import re

from k3s_infra.config import Environment, rules
from k3s_infra.config.text import camel, kebab

_LOGICAL_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,254}$")

TAG_PREFIX = "k3s-infra"
# Tag keys on every resource (cluster_tags) and on nodes (roles.Role.tags).
CLUSTER_TAG = f"{TAG_PREFIX}:cluster"
ENVIRONMENT_TAG = f"{TAG_PREFIX}:environment"
ROLE_TAG = f"{TAG_PREFIX}:role"
POOL_TAG = f"{TAG_PREFIX}:pool"
# The last step of a node's boot (servers after their etcd checks, agents once their Node
# exists): it tags its own instance READY_TAG=READY_VALUE; deploy waits for it
# (deploy/readiness.py), the node roles may set only this tag on their own instance (iam.py).
READY_TAG = f"{TAG_PREFIX}:ready"
READY_VALUE = "true"

# Nested stacks: logical ID in the root and template file name.
STACK_NETWORK = "Network"  # network.create only
STACK_SECURITY = "Security"
STACK_API_ENDPOINT = "ApiEndpoint"
STACK_CLUSTER_DATA = "ClusterData"
STACK_NODE_IAM = "NodeIam"
STACK_SERVER_INIT = "ServerInit"
STACK_SERVERS = "Servers"
STACK_DRAINING = "Draining"
STACK_IDENTITY = "Identity"  # the OIDC issuer and the pods' IAM roles
STACK_ISSUER_ACCESS = "IssuerAccess"  # the first server's right to publish the issuer's documents
# The auto scaling group of each node stack (nodes signal it by this logical ID).
SERVER_GROUP = "ServerGroup"
AGENT_GROUP = "AgentGroup"
ROOT = "Root"
# The root of a stack's first create: no roll order between the node stacks (stacks/root.py).
ROOT_CREATE = "RootCreate"


def logical_id(*parts: str | int) -> str:
    value = "".join(camel(str(p)) for p in parts)
    check_logical_id(value)
    return value


def check_logical_id(value: str) -> str:
    if not _LOGICAL_ID.match(value):
        raise ValueError(f"invalid CloudFormation logical ID {value!r}")
    return value


def agent_pool_stack(pool_name: str) -> str:
    return logical_id("AgentPool", pool_name)


def template_file(stack_id: str, fmt: str) -> str:
    """'AgentPoolSpotWorkers' -> 'agent-pool-spot-workers.yaml'."""
    return f"{kebab(stack_id)}.{fmt}"


def cluster_name(env: Environment) -> str:
    """The cluster's identity in AWS: the root stack name (unique per account and region)."""
    return env.stack_name


def drain_hook_name(env: Environment) -> str:
    """The termination hook the node termination handler completes, named after this cluster
    (unique per account and region): the draining rule matches it exactly
    (components/drain_queue.py), so another cluster's groups never reach this queue."""
    return f"drain-before-terminate-{cluster_name(env)}"


def cluster_key_alias(cluster: str) -> str:
    return f"alias/{TAG_PREFIX}/{cluster}"


def secret_name(env: Environment, what: str) -> str:
    return f"{TAG_PREFIX}/{cluster_name(env)}/{what}"


def addon_secret_name(env: Environment, addon: str, value_key: str) -> str:
    """'rancher', 'bootstrapPassword' -> k3s-infra/<cluster>/addons/rancher-bootstrap-password."""
    return secret_name(env, f"addons/{addon.replace('_', '-')}-{kebab(value_key)}")


def cluster_state_parameter(env: Environment) -> str:
    """SSM parameter the first server creates (create-if-absent) once it has initialised the
    cluster, naming its own stack's ID ('initialised' from earlier releases; boot.sh
    ensure_marker). Never a CloudFormation resource (an update would rewrite it); nodes own
    it, templates only grant access to its name, destroy deletes it."""
    return f"/{TAG_PREFIX}/{cluster_name(env)}/cluster-state"


def restore_request_parameter(env: Environment) -> str:
    """SSM parameter `k3s-infra restore` writes: the snapshot to restore, the first-server
    instances it replaces and an expiry (format: k3s_infra/deploy/restore_request.py). A
    replacing first server that finds it valid restores that snapshot (cluster-reset), then
    deletes it; the CLI waits for it to disappear. Never a CloudFormation resource."""
    return f"/{TAG_PREFIX}/{cluster_name(env)}/restore-request"


def fact_parameter(env: Environment, fact: str) -> str:
    """SSM parameter a stack writes (an AWS::SSM::Parameter resource) with a fact nodes read at
    boot instead of as a node-stack parameter ('issuer_url' -> .../facts/issuer-url): a node
    stack that would wait for that stack's slow resources (a CloudFront distribution) starts
    with the others, and the boot waits, bounded, only where it uses the fact (roles.Role.late)."""
    return f"/{TAG_PREFIX}/{cluster_name(env)}/facts/{fact.replace('_', '-')}"


def node_bundle_parameter(env: Environment, role_name: str) -> str:
    """SSM parameter of a server node stack holding the rest of its boot (bootstrap/bundle.py)."""
    return f"/{TAG_PREFIX}/{cluster_name(env)}/node-bundle/{role_name}"


# IAM role names: at most 64 characters of [\w+=,.@-], unique per account, not per region
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html#reference_iam-quotas-names).
ROLE_NAME_MAX = 64
WORKLOAD_ROLE_PATH = f"/{TAG_PREFIX}/"


def workload_role_name(env: Environment, service_account: str) -> str:
    """'payments/api' -> '<cluster>.<region>.payments.api': the region keeps two clusters of one
    name in two regions apart. Too long: the readable start and an 8-hex digest of the whole."""
    return _bounded(f"{cluster_name(env)}.{env.region}.{service_account.replace('/', '.')}")


def _bounded(full: str) -> str:
    if len(full) <= ROLE_NAME_MAX:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[:ROLE_NAME_MAX - 9].rstrip('.-')}-{digest}"


def issuer_access_control_name(env: Environment) -> str:
    """CloudFront origin access control names are unique per account, at most 64 characters."""
    return _bounded(f"{cluster_name(env)}.{env.region}.oidc-issuer")


def workload_role_arn(env: Environment, service_account: str) -> str:
    """Known at render time, so charts and people can name it before the stack exists."""
    partition = rules.partition_of(env.region)[0]
    return (f"arn:{partition}:iam::{env.account_id}:role{WORKLOAD_ROLE_PATH}"
            f"{workload_role_name(env, service_account)}")


def workload_role_id(service_account: str) -> str:
    """Logical ID from the service account alone ('payments/api' -> WorkloadRolePaymentsApi...),
    with a digest so 'a-b/c' and 'a/b-c' stay two resources."""
    digest = hashlib.sha256(service_account.encode()).hexdigest()[:8]
    return logical_id("WorkloadRole", camel(service_account)[:100], digest)


def snapshot_folder(env: Environment) -> str:
    return f"etcd/{env.name}"


def artifact_key(env: Environment, file_name: str, digest: str) -> str:
    """Content-addressed key of a child template in the artifact bucket."""
    return f"{cluster_name(env)}/templates/{digest[:20]}/{file_name}"


# In China some interface endpoint services are named cn.com.amazonaws.<region>.<service>, the
# others (and the S3 gateway) com.amazonaws.<region>.<service> (DescribeVpcEndpointServices in
# cn-north-1; the AWS CDK's InterfaceVpcEndpointAwsService keeps the same list). Data, not a rule:
# only the services the managed network uses.
CHINA_PREFIXED_ENDPOINT_SERVICES = frozenset({"ec2", "sts", "autoscaling", "cloudformation", "sqs"})


def endpoint_service_name(region: str, service: str, gateway: bool = False) -> str:
    """The VPC endpoint service name of ``service`` in ``region``."""
    china = rules.partition_of(region)[0] == "aws-cn"
    prefix = "cn.com.amazonaws" if china and not gateway and service in CHINA_PREFIXED_ENDPOINT_SERVICES \
        else "com.amazonaws"
    return f"{prefix}.{region}.{service}"


def addons_prefix(env: Environment) -> str:
    return f"{cluster_name(env)}/addons"


def addons_key(env: Environment, digest: str) -> str:
    """Content-addressed key of the enabled add-ons' manifests in the artifact bucket."""
    return f"{addons_prefix(env)}/{digest}.yaml"


def lock_key(env: Environment) -> str:
    """The deploy lock (deploy/lock.py): under the cluster's prefix, so destroy's cleanup of
    the artifact bucket takes it too."""
    return f"{cluster_name(env)}/lock.json"


def k3s_artifacts_prefix(env: Environment) -> str:
    """Where the deployer stages the K3s release files the nodes install (deploy/artifacts.py)."""
    return f"{cluster_name(env)}/k3s"


def k3s_artifact_key(env: Environment, digest: str, file_name: str) -> str:
    """<stack>/k3s/<sha256>/<release file name>: content-addressed, so a node finds its file from
    the digest its stack pins (boot.sh install_k3s) and an upload is skipped when present; the
    name keeps a listing readable. No version in the key: its '+' is among the characters S3
    says may need special handling (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html)."""
    return f"{k3s_artifacts_prefix(env)}/{digest}/{file_name}"


def k3s_binary_name(k3s_arch: str) -> str:
    """The release's binary for a K3s architecture name (amd64 -> k3s, arm64 -> k3s-arm64):
    k3s-io/k3s install.sh, setup_verify_arch."""
    return "k3s" if k3s_arch == "amd64" else f"k3s-{k3s_arch}"


def k3s_checksums_name(k3s_arch: str) -> str:
    """The release's checksum file of an architecture (sha256sum-amd64.txt)."""
    return f"sha256sum-{k3s_arch}.txt"


def k3s_images_name(k3s_arch: str) -> str:
    """The release's airgap images tarball, zstd (https://docs.k3s.io/installation/airgap)."""
    return f"k3s-airgap-images-{k3s_arch}.tar.zst"


# Restore drills (deploy/drill.py): a throwaway stack beside the cluster, named from its stack,
# carrying the tag that says whose drill it is (a stack of that name without it is never
# touched), and the ConfigMap a drill looks for in the restored cluster.
DRILL_SUFFIX = "-drill"
DRILL_TAG = f"{TAG_PREFIX}:drill-of"
DRILL_MARKER_NAMESPACE = "kube-system"
DRILL_MARKER_NAME = "k3s-infra-drill-marker"


def drill_stack_name(stack_name: str) -> str:
    """'k3s-prod' -> 'k3s-prod-drill': never the stack's own name (it is longer)."""
    return stack_name + DRILL_SUFFIX


def template_url(env: Environment, key: str) -> str:
    """The bucket's regional virtual-hosted endpoint: the global one (bucket.s3.amazonaws.com)
    answers 307 Temporary Redirect for up to 24 hours after a bucket is created outside
    us-east-1, and CloudFormation does not follow it
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html#VirtualHostingBackwardsCompatibility,
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingRouting.html#Redirects)."""
    return f"https://{env.artifact_bucket}.s3.{env.region}.{rules.partition_of(env.region)[1]}/{key}"


def cluster_tags(env: Environment) -> dict[str, str]:
    """Tags on every taggable resource (and the stacks themselves, which propagate them to
    every resource), sorted for stable output. Never the cloud controller's cluster tag:
    see ccm_discovery_tags."""
    tags = {
        CLUSTER_TAG: cluster_name(env),
        ENVIRONMENT_TAG: env.name,
        **env.deploy.tags,
    }
    return dict(sorted(tags.items()))


# The AWS cloud controller's cluster tag: kubernetes.io/cluster/<cluster> (cloud-provider-aws
# pkg/providers/v1/tags.go).
CCM_CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"


def ccm_cluster_tag_key(env: Environment) -> str:
    return CCM_CLUSTER_TAG_PREFIX + cluster_name(env)


def ccm_discovery_tags(env: Environment) -> dict[str, str]:
    """Only on what the cloud controller must find: node instances (describeInstances keeps
    tagged ones) and node security groups (it adds its load balancers' ingress rules there).
    It checks the key only (tags.go hasClusterTag), so `shared` works for discovery, while its
    IAM mutations need `owned`, which it puts on what it creates itself: CloudFormation's
    resources stay out of its reach, and the API load balancer carries no cluster tag."""
    return {ccm_cluster_tag_key(env): "shared"}


# Subnet roles Service load balancers are placed by: the AWS cloud controller
# (cloud-provider-aws pkg/providers/v1/aws.go, findELBSubnets) and the AWS Load Balancer
# Controller (docs: "Subnet auto-discovery") read the same keys, value "1" or empty.
ELB_SUBNET_ROLE_TAG = "kubernetes.io/role/elb"
INTERNAL_ELB_SUBNET_ROLE_TAG = "kubernetes.io/role/internal-elb"


def subnet_discovery_tags(env: Environment, public: bool) -> dict[str, str]:
    """Tags of a managed network's subnets: public ones for internet-facing Service load
    balancers, private ones for internal ones, both this cluster's (`shared`: the subnet
    is CloudFormation's, never the controller's to change)."""
    role = ELB_SUBNET_ROLE_TAG if public else INTERNAL_ELB_SUBNET_ROLE_TAG
    return {**ccm_discovery_tags(env), role: "1"}


def name_tag(logical: str) -> str:
    """Value of the Name tag: ${AWS::StackName}/<logical id> (resolved with Fn::Sub)."""
    return "${AWS::StackName}/" + logical


def cidr_id(cidr: str) -> str:
    """'10.0.0.0/16' -> 'Cidr10x0x0x0m16': a logical-ID-safe spelling of a CIDR."""
    return "Cidr" + cidr.replace(".", "x").replace(":", "c").replace("/", "m")


# AWS Auto Scaling tag limits: a key is 1-128 characters, a value 0-256, any printable
# Unicode (API Reference, Tag: https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Tag.html);
# at most 50 tags per group (https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-tagging.html).
TAG_KEY_MAX = 128
GROUP_TAGS_MAX = 50
AUTOSCALER_TAG_PREFIX = "k8s.io/cluster-autoscaler"


def autoscaler_discovery_tags(env: Environment) -> dict[str, str]:
    """The tags the cluster autoscaler's ASG auto-discovery looks for (the chart's default
    autoDiscovery.tags; only the keys matter). Also the IAM condition on scaling actions."""
    return {f"{AUTOSCALER_TAG_PREFIX}/enabled": "true", autoscaler_cluster_tag(env): "owned"}


def autoscaler_cluster_tag(env: Environment) -> str:
    """k8s.io/cluster-autoscaler/<cluster>: the discovery tag naming this cluster."""
    return f"{AUTOSCALER_TAG_PREFIX}/{cluster_name(env)}"


def autoscaler_tags(env: Environment, pool) -> dict[str, str]:
    """Discovery tags plus one node-template tag per label and taint, so the autoscaler
    can scale a pool up from zero nodes ({} when the autoscaler is off). Format from
    kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md ("Auto-Discovery
    Setup"): label/<key> = value, taint/<key> = value:Effect (read by aws_manager.go
    extractLabelsFromAsg / extractTaintsFromAsg, which take everything after the prefix as
    the key, so prefixed keys like example.com/tier work). No kubernetes.io/arch tag for
    Graviton pools: the autoscaler derives it from the instance type (aws_manager.go
    buildGenericLabels sets LabelArchStable from template.InstanceType.Architecture)."""
    if not env.autoscaling:
        return {}
    tags = dict(autoscaler_discovery_tags(env))
    template = f"{AUTOSCALER_TAG_PREFIX}/node-template"
    for key, value in pool.labels.items():
        tags[f"{template}/label/{key}"] = value
    for taint in pool.taints:
        key_value, effect = taint.rsplit(":", 1)
        key, _, value = key_value.partition("=")
        tags[f"{template}/taint/{key}"] = f"{value}:{effect}"
    return tags
