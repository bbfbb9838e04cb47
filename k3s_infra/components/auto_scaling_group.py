"""Auto scaling group of a node group, optionally on spot with several types."""

from __future__ import annotations

from dataclasses import dataclass, field

from troposphere import AWSHelperFn, Ref
from troposphere.autoscaling import (
    AutoScalingGroup,
    InstancesDistribution,
    LaunchTemplate,
    LaunchTemplateOverrides,
    LaunchTemplateSpecification,
    LifecycleHookSpecification,
    MixedInstancesPolicy,
)
from troposphere.policies import (
    AutoScalingCreationPolicy,
    AutoScalingRollingUpdate,
    AutoScalingScheduledAction,
    CreationPolicy,
    ResourceSignal,
    UpdatePolicy,
)

from k3s_infra.components.launch_template import LaunchTemplateRefs
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import Spot, defaults


@dataclass(frozen=True)
class RollingUpdate:
    """How a launch template change rolls through the group (CloudFormation UpdatePolicy)."""

    max_batch: int
    min_in_service: AWSHelperFn | int


def server_rolling_update() -> RollingUpdate:
    """One server at a time, terminate first: with an odd count, etcd keeps quorum
    (a surge instance would make a single-server etcd depend on two members)."""
    return RollingUpdate(max_batch=1, min_in_service=0)


def agent_rolling_update(desired: int, max_size: int) -> RollingUpdate:
    batch = max(1, desired // defaults.AGENT_ROLL_BATCH_FRACTION)
    return RollingUpdate(max_batch=batch, min_in_service=max(0, min(desired - batch, max_size - 1)))


@dataclass(frozen=True)
class GroupSpec:
    min_size: AWSHelperFn | int
    max_size: AWSHelperFn | int
    desired: AWSHelperFn | int
    subnet_ids: Ref
    tags: dict[str, str]
    instance_types: list[str]
    drain_hook: str  # naming.drain_hook_name: the node termination handler completes it
    spot: Spot | None = None
    target_group_arns: list[Ref] = field(default_factory=list)
    rolling: RollingUpdate | None = None
    # Servers: their watch completes this second termination hook once a lone server's
    # on-demand etcd snapshot is in S3 (bootstrap/watch.sh before_termination).
    snapshot_hook: bool = False
    # Created with no instance (one server's empty Servers group, a pool of desired 0): no
    # CreationPolicy, which would wait for zero signals (see build).
    starts_empty: bool = False
    # How long CloudFormation waits for the nodes' signals (roles.Role.signal_timeout_seconds),
    # and the health-check grace: a booting node is never judged before it could signal.
    signal_timeout_seconds: int = defaults.NODE_SIGNAL_TIMEOUT_SECONDS
    # The cluster autoscaler moves the group's size between min and max: a deploy must not
    # reset it to the template's DesiredCapacity.
    size_set_at_run_time: bool = False


@dataclass(frozen=True)
class GroupRefs:
    name: Ref


def _launch(spec: GroupSpec, launch: LaunchTemplateRefs) -> dict:
    template = LaunchTemplateSpecification(LaunchTemplateId=launch.id, Version=launch.version)
    if spec.spot is None and len(spec.instance_types) == 1:
        return {"LaunchTemplate": template}
    spot = spec.spot
    distribution = InstancesDistribution(
        OnDemandBaseCapacity=spot.on_demand_base_capacity,
        OnDemandPercentageAboveBaseCapacity=spot.on_demand_percentage_above_base,
        SpotAllocationStrategy=spot.allocation_strategy,
    ) if spot else InstancesDistribution(OnDemandPercentageAboveBaseCapacity=100)
    return {"MixedInstancesPolicy": MixedInstancesPolicy(
        InstancesDistribution=distribution,
        LaunchTemplate=LaunchTemplate(
            LaunchTemplateSpecification=template,
            Overrides=[LaunchTemplateOverrides(InstanceType=kind) for kind in spec.instance_types]))}


def _duration(seconds: int) -> str:
    """ISO 8601, as CreationPolicy Timeout and PauseTime take it (PT20M)."""
    minutes, rest = divmod(seconds, 60)
    return f"PT{minutes}M{f'{rest}S' if rest else ''}"


def build(t: StackTemplate, logical: str, spec: GroupSpec, launch: LaunchTemplateRefs) -> GroupRefs:
    group = t.add(AutoScalingGroup(
        logical,
        MinSize=_text(spec.min_size), MaxSize=_text(spec.max_size), DesiredCapacity=_text(spec.desired),
        VPCZoneIdentifier=spec.subnet_ids,
        # EC2 health for every group, servers included: a load balancer's health check can
        # fail on every server at once (a K3s restart everywhere, one bad security-group
        # rule), and ELB health would then replace every etcd member. A server's watch asks
        # for its own replacement only when that cannot take quorum (bootstrap/watch.sh).
        HealthCheckType="EC2",
        HealthCheckGracePeriod=spec.signal_timeout_seconds,
        CapacityRebalance=spec.spot is not None,
        # A hook holds a terminating instance in Terminating:Wait until it is completed or
        # its timeout ends (then DefaultResult CONTINUE): the drain (the node termination
        # handler) and, on servers, the snapshot (the server's watch) each have their own
        # (https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks-overview.html).
        LifecycleHookSpecificationList=[LifecycleHookSpecification(
            LifecycleHookName=name, LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
            DefaultResult="CONTINUE", HeartbeatTimeout=timeout) for name, timeout in _hooks(spec)],
        **({"TargetGroupARNs": spec.target_group_arns} if spec.target_group_arns else {}),
        **_launch(spec, launch),
    ), tags=spec.tags)
    # CloudFormation judges the group by its instances' own SignalResource calls (boot.sh):
    # CREATE_COMPLETE only once `desired` nodes have K3s up and joined. A Ref to the
    # DesiredCapacity parameter is valid here (AWS's sample templates do it:
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-creationpolicy.html).
    # An empty group gets none: the CreationPolicy reference gives Count no meaning at 0 (no
    # minimum, no statement that zero signals complete the resource), so nothing relies on it;
    # an empty group is CREATE_COMPLETE once it exists and has nothing to wait for.
    partial = {"MinSuccessfulInstancesPercent": defaults.SPOT_MIN_SUCCESSFUL_PERCENT} if spec.spot else {}
    if not spec.starts_empty:
        group.CreationPolicy = CreationPolicy(
            ResourceSignal=ResourceSignal(Count=spec.desired, Timeout=_duration(spec.signal_timeout_seconds)),
            **({"AutoScalingCreationPolicy": AutoScalingCreationPolicy(**partial)} if partial else {}))
    if spec.rolling:
        group.UpdatePolicy = UpdatePolicy(AutoScalingRollingUpdate=AutoScalingRollingUpdate(
            MaxBatchSize=spec.rolling.max_batch, MinInstancesInService=spec.rolling.min_in_service,
            # Each batch must signal SUCCESS within PauseTime, else the update fails and
            # CloudFormation rolls the group back to the previous launch template.
            WaitOnResourceSignals=True, PauseTime=_duration(spec.signal_timeout_seconds), **partial,
            # Keep the ASG from fighting the roll (replacing or rebalancing mid-update). While
            # HealthCheck/ReplaceUnhealthy are suspended a node reported Unhealthy is not
            # replaced; its FAILURE signal fails the roll instead, and the rollback resumes them.
            SuspendProcesses=["HealthCheck", "ReplaceUnhealthy", "AZRebalance", "AlarmNotification",
                              "ScheduledActions"]))
    if spec.size_set_at_run_time:
        # Without it every stack update sets MinSize/MaxSize/DesiredCapacity back to the
        # template's values (AWS: UpdatePolicy attribute, AutoScalingScheduledAction policy:
        # "CloudFormation always sets the group size property values ... to the values that are
        # defined in the template"; aws/aws-cdk#5507 saw scaled-out groups reset on deploy).
        # With IgnoreUnmodifiedGroupSizeProperties the sizes change only when the file changes them.
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-updatepolicy.html
        policy = group.UpdatePolicy if spec.rolling else UpdatePolicy()
        policy.AutoScalingScheduledAction = AutoScalingScheduledAction(IgnoreUnmodifiedGroupSizeProperties=True)
        group.UpdatePolicy = policy
    return GroupRefs(name=Ref(group))


def _hooks(spec: GroupSpec) -> list[tuple[str, int]]:
    hooks = [(spec.drain_hook, defaults.TERMINATION_HOOK_TIMEOUT_SECONDS)]
    if spec.snapshot_hook:
        hooks.append((defaults.SNAPSHOT_HOOK, defaults.SNAPSHOT_HOOK_TIMEOUT_SECONDS))
    return hooks


def _text(value: AWSHelperFn | int) -> AWSHelperFn | str:
    return str(value) if isinstance(value, int) else value
