"""The moto shims are as strict as the AWS behaviour each one mirrors (see its docstring)."""

from __future__ import annotations

import json
import string
from types import SimpleNamespace

import pytest

from tests.support import moto_shims


@pytest.mark.parametrize("length", [8, 32, 64])
def test_generated_secret_honours_length_and_exclude_punctuation(length):
    for _ in range(20):
        value = moto_shims.generated_secret_string({"PasswordLength": length, "ExcludePunctuation": True})
        assert len(value) == length
        assert set(value) <= set(string.ascii_letters + string.digits)


def test_generated_secret_includes_punctuation_by_default_as_aws_does():
    # RequireEachIncludedType defaults to true: every generated value has a punctuation mark.
    values = [moto_shims.generated_secret_string({}) for _ in range(10)]
    assert all(len(v) == 32 for v in values)
    assert all(set(v) & set(string.punctuation) for v in values)


def test_generated_secret_never_contains_excluded_characters():
    excluded = "\"'\\$`"
    for _ in range(50):
        value = moto_shims.generated_secret_string({"PasswordLength": 64, "ExcludeCharacters": excluded,
                                                    "ExcludePunctuation": "false"})
        assert not set(value) & set(excluded)


def test_generated_secret_fills_the_template_key():
    value = moto_shims.generated_secret_string(
        {"SecretStringTemplate": '{"username": "admin"}', "GenerateStringKey": "password", "PasswordLength": 20})
    document = json.loads(value)
    assert document["username"] == "admin" and len(document["password"]) == 20


class _Undeletable:
    logical_resource_id = "SnapshotBucket"


class _ResourceMap:
    """A moto resource map whose delete fails on one resource, as moto's does (it raises the
    last error after its retry passes and leaves the resource in _parsed_resources)."""

    def __init__(self):
        self._parsed_resources = {"SnapshotBucket": _Undeletable(), "Gone": None}
        self._resource_json_map = {"SnapshotBucket": {"Type": "AWS::S3::Bucket"}, "Gone": {"Type": "AWS::SQS::Queue"}}

    def delete(self):
        raise RuntimeError("The bucket you tried to delete is not empty")


def _stack(resource_map):
    return SimpleNamespace(name="k3s-x", stack_id="arn:stack/k3s-x", events=[], status="CREATE_IN_PROGRESS",
                           resource_map=resource_map)


def _events(stack):
    return [(e.logical_resource_id, e.resource_status, e.resource_status_reason) for e in stack.events]


def test_rollback_that_cannot_delete_ends_rollback_failed():
    stack = _stack(_ResourceMap())
    moto_shims._roll_back(stack, ["ApiTargetGroup"])
    assert stack.status == "ROLLBACK_FAILED"
    events = _events(stack)
    assert ("SnapshotBucket", "DELETE_FAILED", "The bucket you tried to delete is not empty") in events
    assert events[-1][:2] == ("k3s-x", "ROLLBACK_FAILED") and "[SnapshotBucket]" in events[-1][2]
    assert not any(e[0] == "Gone" for e in events)


def test_rollback_that_deletes_everything_completes():
    resource_map = SimpleNamespace(delete=lambda: None, _parsed_resources={}, _resource_json_map={"A": {}})
    stack = _stack(resource_map)
    moto_shims._roll_back(stack, ["ApiTargetGroup"])
    assert stack.status == "ROLLBACK_COMPLETE" and _events(stack)[-1][1] == "ROLLBACK_COMPLETE"


def test_a_nested_stack_stuck_in_rollback_fails_its_parents_rollback():
    resource_map = SimpleNamespace(delete=lambda: None, _parsed_resources={}, _resource_json_map={})
    stack = _stack(resource_map)
    moto_shims._roll_back(stack, ["ClusterData"], stuck=("ClusterData",))
    assert stack.status == "ROLLBACK_FAILED" and "[ClusterData]" in _events(stack)[-1][2]


# --- moto_shims_elb: refusals while load balancers and security groups are in use -------------

def _code(call, **kwargs) -> str | None:
    from botocore.exceptions import ClientError

    try:
        call(**kwargs)
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return None


@pytest.fixture
def vpc(aws):
    """A VPC of its own with two subnets (the session network's must stay deletable)."""
    ec2 = aws.ec2
    vpc_id = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.99.{i}.0/24", AvailabilityZone=f"eu-west-1{z}")
               ["Subnet"]["SubnetId"] for i, z in enumerate("ab")]
    return vpc_id, subnets


def test_a_load_balancer_with_deletion_protection_is_not_deleted(aws, vpc):
    elbv2 = aws.elbv2
    arn = elbv2.create_load_balancer(Name="shim-guarded", Subnets=vpc[1], Type="network")["LoadBalancers"][0][
        "LoadBalancerArn"]
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "true"}])
    assert _code(elbv2.delete_load_balancer, LoadBalancerArn=arn) == "OperationNotPermitted"
    assert elbv2.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"]
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "false"}])
    assert _code(elbv2.delete_load_balancer, LoadBalancerArn=arn) is None


def test_subnets_groups_and_vpcs_in_use_are_not_deleted(aws, vpc):
    ec2, elb = aws.ec2, aws.elb
    vpc_id, subnets = vpc
    lb_group = ec2.create_security_group(GroupName="shim-elb", Description="d", VpcId=vpc_id)["GroupId"]
    node_group = ec2.create_security_group(GroupName="shim-node", Description="d", VpcId=vpc_id)["GroupId"]
    rule = {"IpProtocol": "tcp", "FromPort": 30080, "ToPort": 30080, "UserIdGroupPairs": [{"GroupId": lb_group}]}
    ec2.authorize_security_group_ingress(GroupId=node_group, IpPermissions=[rule])
    elb.create_load_balancer(LoadBalancerName="shim-classic", Subnets=subnets, SecurityGroups=[lb_group],
                             Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}])
    assert _code(ec2.delete_subnet, SubnetId=subnets[0]) == "DependencyViolation"      # the ELB's interfaces
    assert _code(ec2.delete_security_group, GroupId=lb_group) == "DependencyViolation"  # the ELB uses it
    elb.delete_load_balancer(LoadBalancerName="shim-classic")
    assert _code(ec2.delete_security_group, GroupId=lb_group) == "DependencyViolation"  # the node rule names it
    assert _code(ec2.delete_vpc, VpcId=vpc_id) == "DependencyViolation"                  # groups left in it
    ec2.revoke_security_group_ingress(GroupId=node_group, IpPermissions=[rule])
    for group in (lb_group, node_group):
        assert _code(ec2.delete_security_group, GroupId=group) is None
    for subnet in subnets:
        assert _code(ec2.delete_subnet, SubnetId=subnet) is None
    assert _code(ec2.delete_vpc, VpcId=vpc_id) is None


def test_a_stack_whose_resource_cannot_go_ends_delete_failed_and_a_retry_finishes_it(aws, vpc):
    """CloudFormation keeps the stack DELETE_FAILED with what it could not delete; its template's
    LoadBalancerAttributes (deletion protection) are set as real CloudFormation sets them."""
    import json

    cfn, elbv2 = aws.cloudformation, aws.elbv2
    body = {"Resources": {"Nlb": {"Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": {
        "Type": "network", "Subnets": vpc[1], "LoadBalancerAttributes": [
            {"Key": "deletion_protection.enabled", "Value": "true"}]}}}}
    stack = cfn.create_stack(StackName="shim-delete-failed", TemplateBody=json.dumps(body))["StackId"]
    (resource,) = cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    arn = resource["PhysicalResourceId"]
    assert {"Key": "deletion_protection.enabled", "Value": "true"} in \
        elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    cfn.delete_stack(StackName=stack)  # accepted, as CloudFormation accepts it
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "DELETE_FAILED"
    failed = [(e["LogicalResourceId"], e["ResourceStatus"]) for e in cfn.describe_stack_events(StackName=stack)[
        "StackEvents"] if e["ResourceStatus"] == "DELETE_FAILED"]
    assert ("Nlb", "DELETE_FAILED") in failed and ("shim-delete-failed", "DELETE_FAILED") in failed
    assert [r["LogicalResourceId"] for r in cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]] \
        == ["Nlb"]
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "false"}])
    cfn.delete_stack(StackName=stack)
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    assert _code(elbv2.describe_load_balancers, LoadBalancerArns=[arn]) == "LoadBalancerNotFound"
