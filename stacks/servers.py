"""Server stacks: the cluster-init server (an ASG of exactly one) and the
other servers (an ASG of servers.count - 1, sized by parameter so growing
from one to three servers changes a value, not the shape of the root)."""

from __future__ import annotations

from k3s_infra import bootstrap
from k3s_infra.bootstrap import bundle
from k3s_infra.components import auto_scaling_group, launch_template, node_bundle
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import Environment
from k3s_infra.model import naming, roles
from k3s_infra.model import outputs as o
from k3s_infra.model.roles import Role
from k3s_infra.stacks.parameters import declare_all

_SHARED = (o.IMAGE_ID, o.SERVER_SECURITY_GROUP, o.API_TARGET_GROUP, o.TOKEN_SECRET,
           o.AGENT_TOKEN_SECRET, o.SNAPSHOT_BUCKET, o.K3S_BINARY_SHA256, o.K3S_IMAGES_SHA256)
# Only the first server publishes the kubeconfig and the issuer's keys (to the bucket it reads
# at boot, roles.Role.late), and keeps the cluster-state marker; it has a role of its own.
_INIT_ONLY = (o.FIRST_SERVER_INSTANCE_PROFILE, o.KUBECONFIG_SECRET, o.CLUSTER_STATE_PARAMETER,
              o.RESTORE_REQUEST_PARAMETER)


def _build(env: Environment, role: Role, description: str, sized_by_parameter: bool) -> StackTemplate:
    t = StackTemplate(f"k3s-infra {env.name}: {description}", naming.cluster_tags(env))
    public = role.public_api(env)
    # Each group its own zones, so no zone holds a majority of the servers (model/placement.py).
    subnets = o.FIRST_SERVER_SUBNET_IDS if role.initialises else o.JOINING_SERVER_SUBNET_IDS
    p = declare_all(t, subnets, *_SHARED, *(_INIT_ONLY if role.initialises else (o.SERVER_INSTANCE_PROFILE,)),
                    *((o.MIN_SIZE, o.MAX_SIZE, o.DESIRED_CAPACITY) if sized_by_parameter else ()),
                    *((o.PUBLIC_API_TARGET_GROUP,) if public else ()),
                    *bootstrap.addon_parameters(env, role))
    tags = role.tags(env)
    refs = bootstrap.BootRefs(
        token_secret=p[o.TOKEN_SECRET], agent_token_secret=p[o.AGENT_TOKEN_SECRET],
        kubeconfig_secret=p.get(o.KUBECONFIG_SECRET), cluster_state_parameter=p.get(o.CLUSTER_STATE_PARAMETER),
        restore_request_parameter=p.get(o.RESTORE_REQUEST_PARAMETER), api_target_group=p[o.API_TARGET_GROUP],
        snapshot_bucket=p[o.SNAPSHOT_BUCKET], addon={name: p[name] for name in bootstrap.addon_parameters(env, role)},
        k3s_binary_sha256=p[o.K3S_BINARY_SHA256], k3s_images_sha256=p[o.K3S_IMAGES_SHA256])
    # The rest of the server's boot; its user data pins the digest (bootstrap/bundle.py).
    bundle_ids = node_bundle.build(t, bundle.parameter_names(env, role), bundle.chunks(env, role))
    launch = launch_template.build(t, "ServerLaunchTemplate", launch_template.LaunchSpec(
        instance_type=env.servers.instance_type, root_volume_gb=env.servers.root_volume_gb,
        image_id=p[o.IMAGE_ID], security_group_id=p[o.SERVER_SECURITY_GROUP],
        instance_profile_arn=p[o.FIRST_SERVER_INSTANCE_PROFILE if role.initialises else o.SERVER_INSTANCE_PROFILE],
        user_data=bootstrap.user_data(env, role, refs), tags=tags,
        depends_on=bundle_ids))
    sizes = (p[o.MIN_SIZE], p[o.MAX_SIZE], p[o.DESIRED_CAPACITY]) if sized_by_parameter else (1, 1, 1)
    group = auto_scaling_group.build(t, role.signal_resource, auto_scaling_group.GroupSpec(
        min_size=sizes[0], max_size=sizes[1], desired=sizes[2], subnet_ids=p[subnets], tags=tags,
        instance_types=[env.servers.instance_type], drain_hook=naming.drain_hook_name(env),
        target_group_arns=[p[o.API_TARGET_GROUP], *([p[o.PUBLIC_API_TARGET_GROUP]] if public else [])],
        rolling=auto_scaling_group.server_rolling_update(), snapshot_hook=True,
        signal_timeout_seconds=role.signal_timeout_seconds,
        starts_empty=sized_by_parameter and joining_count(env) == 0), launch)
    t.output(o.AUTO_SCALING_GROUP, group.name, "Auto scaling group of this server set")
    t.output(o.LAUNCH_TEMPLATE, launch.id, "Launch template of this server set")
    return t


def build_init(env: Environment) -> StackTemplate:
    return _build(env, roles.SERVER_INIT, "the cluster-init K3s server (exactly one)", sized_by_parameter=False)


def build_joining(env: Environment) -> StackTemplate:
    return _build(env, roles.SERVER, "K3s servers that join the cluster through the API endpoint",
                  sized_by_parameter=True)


def joining_count(env: Environment) -> int:
    return env.servers.count - 1
