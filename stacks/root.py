"""Root stack: one nested stack per child, wired only through Parameters and
``GetAtt <Child>.Outputs.<Name>``.

Each child parameter is filled either from config (``config_values``) or from
the one sibling that exports an Output of the same name.
"""

from __future__ import annotations

from troposphere import GetAtt, Join, Ref
from troposphere.cloudformation import Stack

from k3s_infra.components.template import StackTemplate
from k3s_infra.config import Environment, architectures
from k3s_infra.model import naming, placement
from k3s_infra.model import outputs as o
from k3s_infra.stacks import servers
from k3s_infra.stacks.parameters import SHA256_PATTERN

# Outputs of the root: what a person needs after a deploy.
ROOT_OUTPUTS = {
    o.API_DNS_NAME: (naming.STACK_API_ENDPOINT, "DNS name of the internal K3s API (port 6443)"),
    o.KUBECONFIG_SECRET: (naming.STACK_CLUSTER_DATA, "Secret holding the admin kubeconfig"),
    o.SNAPSHOT_BUCKET: (naming.STACK_CLUSTER_DATA, "Bucket of etcd snapshots"),
    o.ISSUER_URL: (naming.STACK_IDENTITY, "OIDC issuer of service account tokens (pod IAM)"),
    o.OIDC_PROVIDER: (naming.STACK_IDENTITY, "IAM OIDC provider the service account roles trust"),
    o.ISSUER_BUCKET: (naming.STACK_IDENTITY, "Bucket of the issuer's documents (emptied by destroy)"),
}


def image_parameters(env: Environment) -> dict[str, str]:
    """Root parameter -> SSM path of the public image it is resolved from, one per
    architecture in use (an x86-only cluster has only ``ImageId``). The root takes plain
    AMI IDs, not ``AWS::SSM::Parameter::Value<...>``: CloudFormation re-resolves those on every update,
    so a newly published image would replace every node on an unrelated deploy
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/parameters-section-structure.html
    #aws-ssm-parameter-types). The deployer resolves and pins the IDs (k3s_infra/deploy/images.py)."""
    return {o.IMAGE_IDS[arch]: getattr(env.nodes.ami_parameter, arch) for arch in architectures.in_use(env)}


def stack_architecture(env: Environment, stack_id: str) -> str | None:
    """Architecture of a node stack's instances (None for stacks without nodes)."""
    if stack_id in (naming.STACK_SERVER_INIT, naming.STACK_SERVERS):
        return architectures.of_servers(env)
    return next((architectures.of_pool(p) for p in env.agent_pools
                 if stack_id == naming.agent_pool_stack(p.name)), None)


def config_values(env: Environment, stack_id: str) -> dict[str, object]:
    """Parameter values a child gets from config rather than from a sibling."""
    values: dict[str, object] = {
        # Owned by the nodes and the CLI, never by CloudFormation (see naming).
        o.CLUSTER_STATE_PARAMETER: naming.cluster_state_parameter(env),
        o.RESTORE_REQUEST_PARAMETER: naming.restore_request_parameter(env),
        o.ROOT_STACK_NAME: Ref("AWS::StackName"),
    }
    arch = stack_architecture(env, stack_id)
    if arch:  # each node stack's ImageId is the root's image of its architecture
        values[o.IMAGE_ID] = Ref(o.IMAGE_IDS[arch])
        # ... and its K3s files' digests (staged by the deployer: deploy/artifacts.py)
        values[o.K3S_BINARY_SHA256] = Ref(o.K3S_BINARY_SHA256S[arch])
        values[o.K3S_IMAGES_SHA256] = Ref(o.K3S_IMAGES_SHA256S[arch])
    if not env.network.managed:  # a created network: the Network stack's outputs of the same names
        split = placement.server_subnets(env.network.subnets, lambda s: s.az, env.servers.count)
        values.update({
            o.VPC_ID: env.network.vpc_id,
            o.VPC_CIDR: env.network.vpc_cidr,
            o.SUBNET_IDS: Join(",", [s.id for s in env.network.subnets]),
            o.LOAD_BALANCER_SUBNET_IDS: Join(",", [s.id for s in placement.one_per_zone(env.network.subnets,
                                                                                       lambda s: s.az)]),
            o.PUBLIC_SUBNET_IDS: Join(",", [s.id for s in env.network.public_subnets]),
            o.FIRST_SERVER_SUBNET_IDS: Join(",", [s.id for s in split.first]),
            o.JOINING_SERVER_SUBNET_IDS: Join(",", [s.id for s in split.joining]),
        })
    if stack_id == naming.STACK_SERVERS:
        count = servers.joining_count(env)
        # CloudFormation fails a rolling update whose MinInstancesInService (0 for servers) is
        # not below the group's MaxSize ("must be less than the MaxSize of the Auto Scaling
        # group": UserGuide aws-attribute-updatepolicy.html, AutoScalingRollingUpdate): a
        # one-server cluster's empty Servers group keeps MaxSize 1 with nothing desired.
        values.update({o.MIN_SIZE: str(count), o.MAX_SIZE: str(max(count, 1)), o.DESIRED_CAPACITY: str(count)})
    for pool in env.agent_pools:
        if stack_id == naming.agent_pool_stack(pool.name):
            values.update({o.MIN_SIZE: str(pool.min_size), o.MAX_SIZE: str(pool.max_size),
                           o.DESIRED_CAPACITY: str(pool.desired)})
    return values


def wiring(env: Environment, children: dict[str, StackTemplate]) -> dict[str, dict[str, object]]:
    """Parameters of every child: from config, else from the sibling exporting that name."""
    producers: dict[str, str] = {}
    for stack_id, child in children.items():
        for name in child.template.outputs:
            producers.setdefault(name, stack_id)
    result = {}
    for stack_id, child in children.items():
        from_config = config_values(env, stack_id)
        parameters: dict[str, object] = {}
        for name in child.template.parameters:
            if name in from_config:
                parameters[name] = from_config[name]
            elif name in producers and producers[name] != stack_id:
                parameters[name] = GetAtt(producers[name], f"Outputs.{name}")
            else:
                raise ValueError(f"stack {stack_id}: nothing provides parameter {name}")
        result[stack_id] = parameters
    return result


def roll_order(stack_id: str) -> list[str]:
    """Stacks that must finish first in an update, so version upgrades roll servers before
    agents (K3s supports agents older than servers, never newer) and the two server groups
    never replace a member at the same time. A stack's first create has no such order (the
    ``creating`` root): joining servers and agents start with the first server and their boot
    waits, bounded, for its published token and API (boot.sh prepare_join, fetch_tokens), and a
    joiner never initialises (roles.SERVER), so starting early cannot make a second cluster.
    CloudFormation orders an update by the template it is given
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-dependson.html:
    a dependent resource is created or updated after the one it depends on), and every update
    sends the ordered root."""
    if stack_id == naming.STACK_SERVER_INIT:
        # Its boot publishes the OIDC issuer's documents (first_server.sh publish_issuer) with
        # the IssuerAccess stack's policy: a role's user waits for its external policies (IAM
        # AWS::IAM::Role, Policies: "use the DependsOn attribute"). Updates only: on a first
        # create the first server publishes only after the issuer exists.
        return [naming.STACK_ISSUER_ACCESS]
    if stack_id == naming.STACK_SERVERS:
        return [naming.STACK_SERVER_INIT]
    if stack_id.startswith(naming.agent_pool_stack("")):
        return [naming.STACK_SERVERS]
    return []


def build(env: Environment, children: dict[str, StackTemplate], template_urls: dict[str, str],
          creating: bool = False) -> StackTemplate:
    """The root; ``creating``: the one for the stack's first create (no roll order)."""
    t = StackTemplate(f"k3s-infra {env.name}: highly available K3s cluster {naming.cluster_name(env)}",
                      naming.cluster_tags(env))
    images = image_parameters(env)
    for arch, name in o.IMAGE_IDS.items():
        if name in images:
            who = "the nodes" if len(images) == 1 else f"the {arch} nodes"
            t.parameter(name, "AWS::EC2::Image::Id", f"AMI of {who}, resolved from {images[name]} by the deployer")
    for arch in architectures.in_use(env):  # plain digests, pinned by the deployer like the images
        for name, what in ((o.K3S_BINARY_SHA256S[arch], "binary"), (o.K3S_IMAGES_SHA256S[arch], "airgap images")):
            t.parameter(name, "String", f"SHA-256 of the K3s {what} of the {arch} nodes, staged in the artifact "
                        "bucket by the deployer", AllowedPattern=SHA256_PATTERN)
    for stack_id, parameters in wiring(env, children).items():
        stack = Stack(stack_id, TemplateURL=template_urls[stack_id], Parameters=parameters, TimeoutInMinutes=60)
        order = [] if creating else roll_order(stack_id)
        if order:
            stack.DependsOn = order
        t.add(stack)
    for name, (stack_id, description) in ROOT_OUTPUTS.items():
        t.output(name, GetAtt(stack_id, f"Outputs.{name}"), description)
    if o.PUBLIC_API_DNS_NAME in children[naming.STACK_API_ENDPOINT].template.outputs:
        t.output(o.PUBLIC_API_DNS_NAME, GetAtt(naming.STACK_API_ENDPOINT, f"Outputs.{o.PUBLIC_API_DNS_NAME}"),
                 "DNS name of the internet-facing K3s API (port 6443, api.allowed_cidrs only)")
    return t
