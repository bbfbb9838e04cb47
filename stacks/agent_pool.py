"""Agent pool stack: one per pool in the config (as eksctl does per nodegroup)."""

from __future__ import annotations

from k3s_infra import bootstrap
from k3s_infra.components import auto_scaling_group, launch_template
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import AgentPool, Environment
from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.model.roles import AGENT
from k3s_infra.stacks.parameters import declare_all


def build(env: Environment, pool: AgentPool) -> StackTemplate:
    kind = "spot" if pool.spot else "on-demand"
    t = StackTemplate(f"k3s-infra {env.name}: agent pool {pool.name} ({kind}, {', '.join(pool.instance_types)})",
                      naming.cluster_tags(env))
    p = declare_all(t, o.SUBNET_IDS, o.IMAGE_ID, o.AGENT_SECURITY_GROUP, o.AGENT_INSTANCE_PROFILE,
                    o.AGENT_TOKEN_SECRET, o.K3S_BINARY_SHA256, o.K3S_IMAGES_SHA256,
                    o.MIN_SIZE, o.MAX_SIZE, o.DESIRED_CAPACITY)
    tags = AGENT.tags(env, pool)
    refs = bootstrap.BootRefs(agent_token_secret=p[o.AGENT_TOKEN_SECRET],
                              k3s_binary_sha256=p[o.K3S_BINARY_SHA256], k3s_images_sha256=p[o.K3S_IMAGES_SHA256])
    launch = launch_template.build(t, "AgentLaunchTemplate", launch_template.LaunchSpec(
        instance_type=pool.instance_types[0], root_volume_gb=pool.root_volume_gb,
        image_id=p[o.IMAGE_ID], security_group_id=p[o.AGENT_SECURITY_GROUP],
        instance_profile_arn=p[o.AGENT_INSTANCE_PROFILE],
        user_data=bootstrap.user_data(env, AGENT, refs, pool), tags=tags))
    group = auto_scaling_group.build(t, AGENT.signal_resource, auto_scaling_group.GroupSpec(
        min_size=p[o.MIN_SIZE], max_size=p[o.MAX_SIZE], desired=p[o.DESIRED_CAPACITY],
        subnet_ids=p[o.SUBNET_IDS], tags={**tags, **naming.autoscaler_tags(env, pool)},
        instance_types=list(pool.instance_types), drain_hook=naming.drain_hook_name(env), spot=pool.spot,
        rolling=auto_scaling_group.agent_rolling_update(pool.desired, pool.max_size),
        size_set_at_run_time=env.autoscaling, starts_empty=pool.desired == 0,
        signal_timeout_seconds=AGENT.signal_timeout_seconds), launch)
    t.output(o.AUTO_SCALING_GROUP, group.name, "Auto scaling group of this agent pool")
    t.output(o.LAUNCH_TEMPLATE, launch.id, "Launch template of this agent pool")
    return t
