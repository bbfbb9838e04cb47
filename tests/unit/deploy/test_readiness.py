"""deploy waits for the nodes a size change asks for (k3s_infra/deploy/readiness.py, issue 21.7):
CloudFormation completes a size-only update without waiting for any node (its CreationPolicy
applies at create, AutoScalingRollingUpdate to a new launch template or subnets: AWS
CloudFormation User Guide, "UpdatePolicy attribute"), so the deployer waits until each group
runs DesiredCapacity InService instances and every instance launched since the deploy started
tagged itself k3s-infra:ready=true. Against botocore's Stubber: every call's parameters are
checked, and a call nobody expected fails the test."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.deploy import DeployError, readiness
from k3s_infra.deploy.progress import NodesReady, WaitingForNodes

REGION = "eu-west-1"
ROOT = f"arn:aws:cloudformation:{REGION}:111122223333:stack/k3s-dev/0a1b"
POOL = f"arn:aws:cloudformation:{REGION}:111122223333:stack/k3s-dev-AgentPoolGeneral-X/0c1d"
SECURITY = f"arn:aws:cloudformation:{REGION}:111122223333:stack/k3s-dev-Security-Y/0e1f"
GROUP = "k3s-dev-AgentPoolGeneral-X-AgentGroup-1"
SINCE = datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)
BEFORE, AFTER = SINCE - timedelta(days=3), SINCE + timedelta(minutes=1)
READY = [{"Key": "k3s-infra:ready", "Value": "true"}]


class Clock:
    """time.monotonic and time.sleep of the module under test: sleeping advances the clock."""

    def __init__(self):
        self.now, self.slept = 0.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(readiness, "time", fake)
    return fake


def client(service: str):
    return boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x",
                        endpoint_url=f"https://{service}.invalid")


@pytest.fixture
def aws():
    clients = SimpleNamespace(cloudformation=client("cloudformation"), autoscaling=client("autoscaling"),
                              ec2=client("ec2"), env=SimpleNamespace(region=REGION))
    stubs = [Stubber(clients.cloudformation), Stubber(clients.autoscaling), Stubber(clients.ec2)]
    for stub in stubs:
        stub.activate()
    clients.cfn_stub, clients.asg_stub, clients.ec2_stub = stubs
    _expect_node_groups(clients.cfn_stub)
    yield clients
    for stub in stubs:
        stub.assert_no_pending_responses()
        stub.deactivate()


def _expect_node_groups(stub: Stubber) -> None:
    """The root's nested stacks: a node group (AutoScalingGroupName output) and one that is not."""
    summary = lambda logical, physical: {  # noqa: E731
        "LogicalResourceId": logical, "PhysicalResourceId": physical, "ResourceType": "AWS::CloudFormation::Stack",
        "LastUpdatedTimestamp": BEFORE, "ResourceStatus": "UPDATE_COMPLETE"}
    stub.add_response("list_stack_resources", {"StackResourceSummaries": [
        summary("Security", SECURITY), summary("AgentPoolGeneral", POOL)]}, {"StackName": ROOT})
    for arn, outputs in ((SECURITY, [{"OutputKey": "ServerSecurityGroupId", "OutputValue": "sg-1"}]),
                         (POOL, [{"OutputKey": "AutoScalingGroupName", "OutputValue": GROUP}])):
        stub.add_response("describe_stacks", {"Stacks": [{
            "StackName": arn.split("/")[1], "StackId": arn, "CreationTime": BEFORE, "StackStatus": "UPDATE_COMPLETE",
            "Outputs": outputs}]}, {"StackName": arn})


def expect_group(aws, desired: int, *members: tuple[str, str], **extra) -> None:
    """One DescribeAutoScalingGroups: the group with ``members`` (instance ID, lifecycle state)."""
    instances = [{"InstanceId": i, "AvailabilityZone": f"{REGION}a", "LifecycleState": state,
                  "HealthStatus": "Healthy", "ProtectedFromScaleIn": False} for i, state in members]
    aws.asg_stub.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [{
        "AutoScalingGroupName": GROUP, "MinSize": 0, "MaxSize": 6, "DesiredCapacity": desired,
        "DefaultCooldown": 300, "AvailabilityZones": [f"{REGION}a"], "HealthCheckType": "EC2",
        "CreatedTime": BEFORE, "Instances": instances, **extra}]}, {"AutoScalingGroupNames": [GROUP]})


def expect_instances(aws, *instances: tuple[str, datetime, list]) -> None:
    """One DescribeInstances by instance-id filter: (ID, LaunchTime, Tags) each."""
    aws.ec2_stub.add_response("describe_instances", {"Reservations": [{"Instances": [
        {"InstanceId": i, "LaunchTime": launched, "Tags": tags} for i, launched, tags in instances]}]},
        {"Filters": [{"Name": "instance-id", "Values": [i for i, _, _ in instances]}]})


def wait(aws, messages: list, **kwargs):
    return readiness.wait_for_nodes(aws, ROOT, since=SINCE, on_progress=messages.append, poll=5, **kwargs)


def test_a_resize_from_one_to_three_waits_until_both_new_nodes_tag_themselves(aws, clock):
    expect_group(aws, 3, ("i-old", "InService"), ("i-new1", "Pending"), ("i-new2", "Pending"))
    expect_instances(aws, ("i-old", BEFORE, []), ("i-new1", AFTER, []), ("i-new2", AFTER, []))
    expect_group(aws, 3, ("i-old", "InService"), ("i-new1", "InService"), ("i-new2", "InService"))
    expect_instances(aws, ("i-new1", AFTER, READY), ("i-new2", AFTER, []))  # only what is not known ready
    expect_group(aws, 3, ("i-old", "InService"), ("i-new1", "InService"), ("i-new2", "InService"))
    expect_instances(aws, ("i-new2", AFTER, READY))
    messages: list = []
    result = wait(aws, messages)
    assert messages[:2] == [WaitingForNodes("AgentPoolGeneral", 1, 3, 0, ("i-new1", "i-new2")),
                            WaitingForNodes("AgentPoolGeneral", 2, 3, 5, ("i-new2",))]
    assert result == messages[-1] == NodesReady(1, ("i-new1", "i-new2"), 10)
    assert clock.slept == [5, 5]


def test_a_node_that_never_tags_itself_fails_the_deploy_naming_it_and_its_console(aws, clock):
    expect_group(aws, 2, ("i-new1", "InService"), ("i-new2", "InService"))
    expect_instances(aws, ("i-new1", AFTER, READY), ("i-new2", AFTER, []))
    for _ in range(3):
        expect_group(aws, 2, ("i-new1", "InService"), ("i-new2", "InService"))
        expect_instances(aws, ("i-new2", AFTER, []))
    messages: list = []
    with pytest.raises(DeployError) as failure:
        wait(aws, messages, timeout=12)
    text = str(failure.value)
    assert "AgentPoolGeneral" in text and "1 of 2 ready" in text
    assert (f"i-new2 (AgentPoolGeneral): aws ec2 get-console-output --instance-id i-new2 --region {REGION} "
            f"--latest --output text") in text
    assert "i-new1" not in text  # it reported ready
    assert not any(isinstance(m, NodesReady) for m in messages)


def test_an_untagged_node_from_before_the_deploy_does_not_block_and_one_look_suffices(aws, clock):
    """A group whose size did not change and that launched nothing: one DescribeAutoScalingGroups,
    one DescribeInstances, no wait (its nodes booted before nodes tagged themselves)."""
    expect_group(aws, 2, ("i-old1", "InService"), ("i-old2", "InService"))
    expect_instances(aws, ("i-old1", BEFORE, []), ("i-old2", SINCE.replace(microsecond=0) - timedelta(seconds=1), []))
    messages: list = []
    assert wait(aws, messages) == NodesReady(1, (), 0)
    assert messages == [NodesReady(1, (), 0)] and clock.slept == []


def test_launch_time_counts_in_whole_seconds(aws, clock):
    """LaunchTime carries whole seconds: one launched in the second the deploy started is new."""
    expect_group(aws, 1, ("i-new", "InService"))
    expect_instances(aws, ("i-new", SINCE.replace(microsecond=0), READY))
    assert wait(aws, []) == NodesReady(1, ("i-new",), 0)


def test_until_desired_capacity_is_in_service_it_keeps_waiting(aws, clock):
    expect_group(aws, 3, ("i-old1", "InService"), ("i-old2", "InService"))  # the third not launched yet
    expect_instances(aws, ("i-old1", BEFORE, []), ("i-old2", BEFORE, []))
    expect_group(aws, 3, ("i-old1", "InService"), ("i-old2", "InService"), ("i-new", "Pending"))
    expect_instances(aws, ("i-new", AFTER, []))
    expect_group(aws, 3, ("i-old1", "InService"), ("i-old2", "InService"), ("i-new", "InService"))
    expect_instances(aws, ("i-new", AFTER, READY))
    messages: list = []
    assert wait(aws, messages) == NodesReady(1, ("i-new",), 10)
    assert messages[0] == WaitingForNodes("AgentPoolGeneral", 2, 3, 0, ())


def test_too_few_instances_at_the_timeout_point_at_the_scaling_activities(aws, clock):
    for _ in range(2):
        expect_group(aws, 2, ("i-old", "InService"))
    expect_instances(aws, ("i-old", BEFORE, []))
    with pytest.raises(DeployError, match=f"1 of 2 ready; too few instances: 'aws autoscaling "
                                          f"describe-scaling-activities --auto-scaling-group-name {GROUP}"):
        wait(aws, [], timeout=4)


def test_a_replaced_node_that_never_reported_ready_is_named_too(aws, clock):
    """A new node that failed its boot and was replaced still has its console output."""
    expect_group(aws, 1, ("i-first", "InService"))
    expect_instances(aws, ("i-first", AFTER, []))
    expect_group(aws, 1, ("i-first", "Terminating"), ("i-second", "Pending"))
    expect_instances(aws, ("i-second", AFTER, []))
    with pytest.raises(DeployError) as failure:
        wait(aws, [], timeout=4)
    assert "--instance-id i-first " in str(failure.value) and "--instance-id i-second " in str(failure.value)


def test_a_spot_pool_needs_the_share_cloudformation_accepts(aws, clock):
    """Spot pools may come up short of capacity: their CreationPolicy accepts 50 % of the
    instances (components/auto_scaling_group.py); every new instance there must be ready."""
    spot = {"MixedInstancesPolicy": {"InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 0}}}
    expect_group(aws, 3, ("i-new1", "InService"), ("i-new2", "Pending"), **spot)
    expect_instances(aws, ("i-new1", AFTER, READY), ("i-new2", AFTER, []))
    expect_group(aws, 3, ("i-new1", "InService"), ("i-new2", "InService"), **spot)
    expect_instances(aws, ("i-new2", AFTER, READY))
    messages: list = []
    assert wait(aws, messages) == NodesReady(1, ("i-new1", "i-new2"), 5)  # 2 of 3: ceil(50 % of 3)
    assert messages[0] == WaitingForNodes("AgentPoolGeneral", 1, 3, 0, ("i-new2",))


@pytest.mark.parametrize("poll, looks", [(2700, 3), (2701, 2)])
def test_by_default_the_wait_gives_up_once_more_than_45_minutes_passed(aws, clock, poll, looks):
    """docs/operations.md "Deploying": after 45 minutes (the joiners' 40-minute signal timeout, and 5 more)
    it exits 1. A look at exactly 45 minutes still waits."""
    for _ in range(looks):
        expect_group(aws, 1, ("i-new", "Pending"))
        expect_instances(aws, ("i-new", AFTER, []))
    with pytest.raises(DeployError, match="not ready after 2700s"):
        readiness.wait_for_nodes(aws, ROOT, since=SINCE, poll=poll)


def test_an_instance_whose_launch_hook_is_proceeding_is_waited_for(aws, clock):
    """Pending:Proceed: a lifecycle hook let it go on, it is not in service yet
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html)."""
    expect_group(aws, 1, ("i-new", "Pending:Proceed"))
    expect_instances(aws, ("i-new", AFTER, []))
    expect_group(aws, 1, ("i-new", "InService"))
    expect_instances(aws, ("i-new", AFTER, READY))
    messages: list = []
    assert wait(aws, messages) == NodesReady(1, ("i-new",), 5)
    assert messages[0] == WaitingForNodes("AgentPoolGeneral", 0, 1, 0, ("i-new",))


def _spot(on_demand_percent: int) -> dict:
    return {"MixedInstancesPolicy": {"InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": on_demand_percent}}}


@pytest.mark.parametrize("desired, in_service, on_demand, enough", [
    (3, 2, 99, True),      # 1 % on spot is a spot pool: ceil(50 % of 3) = 2
    (3, 2, 100, False),    # all on demand: all 3
    (2, 1, 0, True),       # ceil(50 % of 2) = 1
    (101, 50, 0, False),   # ceil(50 % of 101) = 51: rounded up, as CloudFormation rounds
    (101, 51, 0, True),
])
def test_a_spot_pool_needs_half_its_desired_capacity_rounded_up(aws, clock, desired, in_service, on_demand, enough):
    """MinSuccessfulInstancesPercent 50 for pools with any spot capacity (docs/operations.md "Deploying", nodes ready);
    instances from before the deploy count as they are, so one look decides."""
    members = [(f"i-{n:03}", "InService") for n in range(in_service)]
    expect_group(aws, desired, *members, **_spot(on_demand))
    expect_instances(aws, *((i, BEFORE, []) for i, _ in members))
    if enough:
        assert wait(aws, [], timeout=-1) == NodesReady(1, (), 0)
    else:
        with pytest.raises(DeployError, match=f"{in_service} of {desired} ready"):
            wait(aws, [], timeout=-1)


def test_enough_instances_not_yet_ready_are_not_blamed_on_scaling(aws, clock):
    expect_group(aws, 2, ("i-old", "InService"), ("i-new", "InService"))
    expect_instances(aws, ("i-old", BEFORE, []), ("i-new", AFTER, []))
    with pytest.raises(DeployError) as failure:
        wait(aws, [], timeout=-1)
    assert "1 of 2 ready" in str(failure.value) and "too few instances" not in str(failure.value)
