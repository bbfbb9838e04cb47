"""Auto scaling groups of the node stacks (k3s_infra/components/auto_scaling_group.py):
CloudFormation judges them by their nodes' own signals (CreationPolicy, rolling updates that
wait on signals: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-creationpolicy.html,
.../aws-attribute-updatepolicy.html), every group by EC2 health after a boot-long grace
(servers judge themselves: bootstrap/watch.sh), spot pools tolerate partial capacity; each group uses its launch template, spot pools
a mixed instances policy; servers roll one at a time (etcd quorum), agents in batches that
keep most capacity; and a deploy leaves the sizes the cluster autoscaler chose alone
(AutoScalingScheduledAction IgnoreUnmodifiedGroupSizeProperties, same page).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from k3s_infra.config import defaults, read_document, validate
from k3s_infra.model import naming

from tests.support.autoscaler import group_resources
from tests.support.oracle_helpers import bundle_files
from tests.support.rendered import node_stacks, pool_stack as _pool_stack


def group(r, stack_id: str) -> dict:
    (asg,) = r.resources(stack_id, "AWS::AutoScaling::AutoScalingGroup").values()
    return asg


def _groups(templates: dict):
    for stack_id, template in templates.items():
        for logical, resource in template.get("Resources", {}).items():
            if resource["Type"] == "AWS::AutoScaling::AutoScalingGroup":
                yield stack_id, logical, resource


ROOT = Path(__file__).resolve().parents[3]


# --- signals and health -------------------------------------------------------------

def _created_empty(env, stack_id: str) -> bool:
    """From the file: one server leaves the Servers group empty; a pool may start at desired 0."""
    if stack_id == naming.STACK_SERVERS:
        return env.servers.count == 1
    return any(stack_id == naming.agent_pool_stack(p.name) and p.desired == 0 for p in env.agent_pools)


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_empty_groups_wait_for_no_signal(rendered, name):
    """Issue 23: a CreationPolicy counting 0 signals has no documented meaning (the CreationPolicy
    reference sets no minimum and says nothing of zero), so a group created empty has none;
    every other group waits for one signal per desired instance."""
    r = rendered[name]
    document = r.env.model_dump(mode="json")
    for pool in document["agent_pools"]:
        pool.update(desired=0, min_size=0)
    from k3s_infra.render import render
    env = validate(document, "test")
    children = {c.stack_id: yaml.safe_load(c.body) for c in render(env).children}
    empty = [s for s in children if _created_empty(env, s)]
    assert len(empty) == len(env.agent_pools) + (env.servers.count == 1), empty
    for stack_id, _, group in _groups(children):
        assert ("CreationPolicy" in group) == (stack_id not in empty), stack_id

def test_every_group_waits_for_its_nodes_signals(templates):
    env, children = templates
    groups = list(_groups(children))
    assert len(groups) == 2 + len(env.agent_pools)
    # The first server 20 minutes; joiners and agents, which a first create starts together
    # with it and whose boot waits for it, 20 more (its whole budget, then their own).
    timeout = {"ServerInit": "PT20M"}
    for stack_id, logical, group in groups:
        rolling = group["UpdatePolicy"]["AutoScalingRollingUpdate"]
        assert rolling["WaitOnResourceSignals"] is True, stack_id
        assert rolling["PauseTime"] == timeout.get(stack_id, "PT40M"), stack_id
        if _created_empty(env, stack_id):  # nothing to wait for (test_empty_groups_wait_for_no_signal)
            continue
        signal = group["CreationPolicy"]["ResourceSignal"]
        # One SUCCESS per desired instance (the same value or parameter as DesiredCapacity).
        desired = group["Properties"]["DesiredCapacity"]
        assert signal["Count"] == (int(desired) if isinstance(desired, str) else desired), stack_id
        assert signal["Timeout"] == timeout.get(stack_id, "PT40M"), stack_id
        # The group's own logical ID is the one boot.sh signals.
        assert logical == (naming.SERVER_GROUP if stack_id.startswith(("ServerInit", "Servers"))
                           else naming.AGENT_GROUP)


def test_no_group_is_judged_by_a_load_balancer_so_one_failing_check_cannot_replace_every_server(templates):
    """ELB health on the server groups would replace every etcd member when every server fails
    /ping at once (issue 21): every group uses EC2 health (HealthCheckType, AWS::AutoScaling::
    AutoScalingGroup reference) and servers judge themselves (bootstrap/watch.sh)."""
    _, children = templates
    for stack_id, _, group in _groups(children):
        properties = group["Properties"]
        assert properties["HealthCheckType"] == "EC2", stack_id
        # Never judged before it could signal (its whole signal timeout).
        assert properties["HealthCheckGracePeriod"] == {"ServerInit": 1200}.get(stack_id, 2400), stack_id
        if stack_id in ("ServerInit", "Servers"):  # still registered: the API load balancers route to them
            assert {"Ref": "ApiTargetGroupArn"} in properties["TargetGroupARNs"]


def test_server_groups_hold_a_terminating_server_for_its_snapshot_agents_only_for_draining(templates):
    """A lone server's roll loses nothing: its group holds it in Terminating:Wait until its
    watch has put an on-demand snapshot in S3 and completes the hook by this name."""
    env, children = templates
    for stack_id, _, group in _groups(children):
        hooks = {h["LifecycleHookName"]: h for h in group["Properties"]["LifecycleHookSpecificationList"]}
        drain = naming.drain_hook_name(env)
        assert drain in hooks, stack_id  # the node termination handler's (catalog)
        if stack_id in ("ServerInit", "Servers"):
            # The hook the server's watch completes is the one its group holds it by.
            # The watch reads the hook's name from its bundle's settings (bundle.env).
            settings = dict(line.split("=", 1) for line in
                            bundle_files(children[stack_id])["/usr/local/lib/k3s-infra/bundle.env"].splitlines())
            assert set(hooks) == {drain, settings["SNAPSHOT_HOOK"].strip("'")}, stack_id
        else:
            assert set(hooks) == {drain}, stack_id
        for hook in hooks.values():
            assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
            assert hook["DefaultResult"] == "CONTINUE"  # a dead watch delays, never blocks, a termination


def test_spot_pools_tolerate_partial_capacity_on_demand_pools_do_not(templates):
    env, children = templates
    spot = {naming.agent_pool_stack(p.name) for p in env.agent_pools if p.spot}
    for stack_id, _, group in _groups(children):
        if _created_empty(env, stack_id):
            continue
        creation = group["CreationPolicy"].get("AutoScalingCreationPolicy")
        if stack_id in spot:
            assert creation == {"MinSuccessfulInstancesPercent": defaults.SPOT_MIN_SUCCESSFUL_PERCENT}
        else:
            assert creation is None, stack_id


# --- launch templates and instance types ---------------------------------------------

def test_every_asg_uses_its_launch_template(r):
    for stack in node_stacks(r):
        (group,) = r.resources(stack, "AWS::AutoScaling::AutoScalingGroup").values()
        p = group["Properties"]
        spec = p.get("LaunchTemplate") or p["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
        (lt_id,) = r.resources(stack, "AWS::EC2::LaunchTemplate")
        assert spec["LaunchTemplateId"] == {"Ref": lt_id}
        assert spec["Version"] == {"Fn::GetAtt": [lt_id, "LatestVersionNumber"]}
        # each server group its own zones (tests/unit/model/test_placement.py), pools every subnet
        subnets = {"ServerInit": "FirstServerSubnetIds", "Servers": "JoiningServerSubnetIds"}.get(stack, "SubnetIds")
        assert p["VPCZoneIdentifier"] == {"Ref": subnets}


def test_spot_pools_use_a_mixed_instances_policy(r):
    for pool in r.env.agent_pools:
        (group,) = r.resources(_pool_stack(pool), "AWS::AutoScaling::AutoScalingGroup").values()
        policy = group["Properties"].get("MixedInstancesPolicy")
        if pool.spot:
            overrides = [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]]
            assert overrides == pool.instance_types
            distribution = policy["InstancesDistribution"]
            assert distribution["OnDemandPercentageAboveBaseCapacity"] == pool.spot.on_demand_percentage_above_base
            assert distribution["SpotAllocationStrategy"] == pool.spot.allocation_strategy
        elif len(pool.instance_types) == 1:
            assert policy is None


# --- rolling updates ------------------------------------------------------------------

@pytest.mark.parametrize("stack_id", ["ServerInit", "Servers"])
def test_servers_roll_one_at_a_time(r, stack_id):
    policy = group(r, stack_id)["UpdatePolicy"]["AutoScalingRollingUpdate"]
    assert policy["MaxBatchSize"] == 1
    # Terminate-first: never two new etcd members at once, never a surge member.
    assert policy["MinInstancesInService"] == 0
    assert policy["PauseTime"].startswith("PT")
    assert "HealthCheck" in policy["SuspendProcesses"]


def test_agent_pools_roll_in_batches_keeping_most_capacity(r):
    for pool in r.env.agent_pools:
        stack_id = next(s for s in r.templates if s.startswith("AgentPool") and
                        r.templates[s]["Description"].split("agent pool ")[1].startswith(pool.name + " "))
        policy = group(r, stack_id)["UpdatePolicy"]["AutoScalingRollingUpdate"]
        assert 1 <= policy["MaxBatchSize"] <= max(1, pool.desired // 2)
        assert policy["MinInstancesInService"] < pool.max_size
        assert policy["MinInstancesInService"] + policy["MaxBatchSize"] >= min(pool.desired, pool.max_size - 1)


def test_agent_batch_sizes_from_pool_size():
    from k3s_infra.components.auto_scaling_group import agent_rolling_update

    assert (agent_rolling_update(8, 12).max_batch, agent_rolling_update(8, 12).min_in_service) == (2, 6)
    assert (agent_rolling_update(1, 3).max_batch, agent_rolling_update(1, 3).min_in_service) == (1, 0)
    assert agent_rolling_update(3, 3).min_in_service == 2  # stays below MaxSize


# --- deploys leave the autoscaler's sizes alone ---------------------------------------

@pytest.mark.parametrize("name", ["dev", "prod"])
def test_a_deploy_does_not_reset_what_the_autoscaler_sized(rendered, name):
    """AWS: "When you update a stack with an Auto Scaling group ... CloudFormation always sets
    the group size property values ... to the values that are defined in the template" unless
    the AutoScalingScheduledAction policy says IgnoreUnmodifiedGroupSizeProperties
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-updatepolicy.html).
    Every pool the autoscaler sizes ignores unmodified sizes; server groups never do."""
    document = read_document(ROOT / "environments" / f"{name}.yaml")
    templates = rendered[name].templates
    for pool in document["agent_pools"]:
        (group,) = group_resources(templates[naming.agent_pool_stack(pool["name"])])
        assert group["UpdatePolicy"]["AutoScalingScheduledAction"] == {"IgnoreUnmodifiedGroupSizeProperties": True}
    for stack_id in ("ServerInit", "Servers"):
        (group,) = group_resources(templates[stack_id])
        assert "AutoScalingScheduledAction" not in group["UpdatePolicy"], stack_id


def test_without_the_autoscaler_a_deploy_sets_the_file_sizes(env_document):
    from k3s_infra.render import render

    document = env_document("dev")
    document["addons"] = {"cluster_autoscaler": {"enabled": False}}
    env = validate(document, "dev.yaml")
    (pool,) = [s for s in render(env).stacks if s.stack_id.startswith("AgentPool")]
    (group,) = group_resources(yaml.safe_load(pool.body))
    assert "AutoScalingScheduledAction" not in group["UpdatePolicy"]
