"""deploy/protection.py against botocore's Stubber (the real request and response shapes):
while an update of a protected environment runs, its API load balancers lose their deletion
protection, so an update that removes one (api.scheme internet-facing -> internal) can delete it
("You can't delete a load balancer if deletion protection is enabled", ELB API Reference,
DeleteLoadBalancer) instead of leaving it outside every stack; afterwards, however the update
ended, the file's protection is set on what is left. moto's nested-stack updates cannot run that
scenario end to end (they delete and recreate every nested stack)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.deploy import protection

ROOT = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-prod/1"
API = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-prod-ApiEndpoint-X/2"
LB = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/{}/0123456789abcdef"
INTERNAL, PUBLIC = LB.format("k3s-Api-1"), LB.format("k3s-Publ-2")


def _client(service):
    return boto3.client(service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x",
                        endpoint_url=f"https://{service}.invalid")


def _api_stack(c, v2, arns, protected, others=()):
    """The ApiEndpoint stack holding load balancers ``arns`` (and ``others``: (type, physical ID))."""
    c.add_response("describe_stack_resource", {"StackResourceDetail": {
        "LogicalResourceId": "ApiEndpoint", "PhysicalResourceId": API, "ResourceType": "AWS::CloudFormation::Stack",
        "LastUpdatedTimestamp": "2026-12-04T00:00:00Z", "ResourceStatus": "UPDATE_COMPLETE"}},
        {"StackName": ROOT, "LogicalResourceId": "ApiEndpoint"})
    c.add_response("describe_stacks", {"Stacks": [{"StackName": "k3s-prod-ApiEndpoint-X", "StackId": API,
                                                   "CreationTime": "2026-12-04T00:00:00Z",
                                                   "StackStatus": "UPDATE_COMPLETE"}]}, {"StackName": API})
    c.add_response("list_stack_resources", {"StackResourceSummaries": [
        {"LogicalResourceId": f"Lb{n}", "PhysicalResourceId": arn, "ResourceType": protection.LOAD_BALANCER_TYPE,
         "LastUpdatedTimestamp": "2026-12-04T00:00:00Z", "ResourceStatus": "CREATE_COMPLETE"}
        for n, arn in enumerate(arns)] + [
        {"LogicalResourceId": f"Other{n}", "PhysicalResourceId": physical, "ResourceType": type_,
         "LastUpdatedTimestamp": "2026-12-04T00:00:00Z", "ResourceStatus": "CREATE_COMPLETE"}
        for n, (type_, physical) in enumerate(others)]}, {"StackName": API})
    for arn in sorted(protected):
        v2.add_response("describe_load_balancer_attributes", {"Attributes": [
            {"Key": "deletion_protection.enabled", "Value": str(protected[arn]).lower()}]}, {"LoadBalancerArn": arn})


@pytest.mark.parametrize("update_fails", [False, True])
def test_protection_is_lifted_while_an_update_runs_and_set_on_what_is_left(update_fails):
    cfn, elbv2 = _client("cloudformation"), _client("elbv2")
    with Stubber(cfn) as c, Stubber(elbv2) as v2:
        _api_stack(c, v2, [INTERNAL, PUBLIC], {INTERNAL: True, PUBLIC: True})
        for arn in sorted([INTERNAL, PUBLIC]):  # lifted before the change set runs
            v2.add_response("modify_load_balancer_attributes", {}, {"LoadBalancerArn": arn, "Attributes": [
                {"Key": "deletion_protection.enabled", "Value": "false"}]})
        # after it: termination protection already on; the public door is gone, the internal one
        # gets its protection back
        c.add_response("describe_stacks", {"Stacks": [{"StackName": "k3s-prod", "StackId": ROOT,
                                                       "CreationTime": "2026-12-04T00:00:00Z",
                                                       "StackStatus": "UPDATE_COMPLETE",
                                                       "EnableTerminationProtection": True}]}, {"StackName": ROOT})
        _api_stack(c, v2, [INTERNAL], {})
        v2.add_response("describe_load_balancer_attributes", {"Attributes": [
            {"Key": "deletion_protection.enabled", "Value": "false"}]}, {"LoadBalancerArn": INTERNAL})
        v2.add_response("modify_load_balancer_attributes", {}, {"LoadBalancerArn": INTERNAL, "Attributes": [
            {"Key": "deletion_protection.enabled", "Value": "true"}]})

        class Aws:
            cloudformation = cfn

        Aws.elbv2 = elbv2
        with pytest.raises(RuntimeError) if update_fails else _nothing():
            with protection.lifted_during_update(Aws, {"StackId": ROOT}, protected=True):
                if update_fails:
                    raise RuntimeError("the change set failed")
        c.assert_no_pending_responses()
        v2.assert_no_pending_responses()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_apply_names_what_it_changed_skipping_a_load_balancer_gone_meanwhile():
    """DescribeLoadBalancerAttributes answers LoadBalancerNotFound for a deleted one; the API
    stack's other resources (its target group, also an ARN) are not load balancers."""
    cfn, elbv2 = _client("cloudformation"), _client("elbv2")
    target_group = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/k3s-Api/0123456789abcdef"
    with Stubber(cfn) as c, Stubber(elbv2) as v2:
        c.add_response("describe_stacks", {"Stacks": [{"StackName": "k3s-prod", "StackId": ROOT,
                                                       "CreationTime": "2026-12-04T00:00:00Z",
                                                       "StackStatus": "UPDATE_COMPLETE",
                                                       "EnableTerminationProtection": False}]}, {"StackName": ROOT})
        c.add_response("update_termination_protection", {"StackId": ROOT},
                       {"StackName": ROOT, "EnableTerminationProtection": True})
        _api_stack(c, v2, [INTERNAL, PUBLIC], {INTERNAL: False},
                   [("AWS::ElasticLoadBalancingV2::TargetGroup", target_group)])
        v2.add_client_error("describe_load_balancer_attributes", "LoadBalancerNotFound",
                            expected_params={"LoadBalancerArn": PUBLIC})
        v2.add_response("modify_load_balancer_attributes", {}, {"LoadBalancerArn": INTERNAL, "Attributes": [
            {"Key": "deletion_protection.enabled", "Value": "true"}]})

        class Aws:
            cloudformation = cfn

        Aws.elbv2 = elbv2
        assert protection.apply(Aws, ROOT, protected=True) == ("k3s-Api-1",)
        c.assert_no_pending_responses()
        v2.assert_no_pending_responses()


def test_a_load_balancer_whose_protection_cannot_be_read_is_an_error():
    elbv2 = _client("elbv2")

    class Aws:
        pass

    Aws.elbv2 = elbv2
    with Stubber(elbv2) as v2:
        v2.add_client_error("describe_load_balancer_attributes", "AccessDenied", expected_params={"LoadBalancerArn": INTERNAL})
        with pytest.raises(Exception, match="AccessDenied"):
            protection._protected(Aws, INTERNAL)
