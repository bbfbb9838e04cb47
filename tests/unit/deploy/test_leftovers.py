"""deploy/leftovers.py against botocore's Stubber: what the cloud controller made is found by its
tag alone (owned, this cluster's exact key, never a stack's own resource; DescribeTags 20 at a
time) and deleted in dependency order, waiting out "in use" for a bounded time."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy import leftovers, protection
from k3s_infra.deploy.leftovers import Leftover, Leftovers

KEY = "kubernetes.io/cluster/k3s-dev"
OWNED = [{"Key": KEY, "Value": "owned"}]
ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:{}/{}"


def _client(service):
    return boto3.client(service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x",
                        endpoint_url=f"https://{service}.invalid")


class FakeAws:
    """What leftovers uses of deploy.aws.Aws, each call recorded as (service, operation)."""

    def __init__(self):
        self.env = load_environment("dev")
        self.elbv2, self.ec2, self.elb = _client("elbv2"), _client("ec2"), _client("elb")
        self.calls: list[tuple[str, str]] = []
        for client in (self.elbv2, self.ec2, self.elb):
            client.meta.events.register("provide-client-params.*.*", self._record)

    def _record(self, params, model, **kwargs):
        self.calls.append((model.service_model.endpoint_prefix, model.name))

    def client(self, service):
        assert service == "elb"
        return self.elb


def _nlb(i):
    return ARN.format("loadbalancer", f"net/a{i}/{i:04x}")


def _sg(group_id, vpc="vpc-1", ingress=()):
    return {"GroupId": group_id, "GroupName": f"name-{group_id}", "VpcId": vpc, "OwnerId": "123456789012",
            "Description": "d", "IpPermissions": [
                {"IpProtocol": "tcp", "FromPort": 30080, "ToPort": 30080, "UserIdGroupPairs": [{"GroupId": g}]}
                for g in ingress]}


def test_find_takes_only_this_clusters_owned_resources_asking_tags_20_at_a_time():
    aws = FakeAws()
    arns = [_nlb(i) for i in range(21)]
    tags = {0: OWNED, 1: [{"Key": "kubernetes.io/cluster/k3s-other", "Value": "owned"}],
            2: [{"Key": KEY, "Value": "shared"}], 3: OWNED + [{"Key": "aws:cloudformation:stack-id", "Value": "x"}],
            4: [{"Key": KEY + "-2", "Value": "owned"}], 20: OWNED}
    target = ARN.format("targetgroup", "k8s-tg/1")
    with Stubber(aws.elbv2) as v2, Stubber(aws.elb) as v1, Stubber(aws.ec2) as ec2:
        v2.add_response("describe_load_balancers", {"LoadBalancers": [
            {"LoadBalancerArn": arn, "LoadBalancerName": arn.split("/")[-2], "VpcId": "vpc-1"} for arn in arns]}, {})
        for batch in (arns[:20], arns[20:]):
            v2.add_response("describe_tags", {"TagDescriptions": [
                {"ResourceArn": arn, "Tags": tags.get(arns.index(arn), [{"Key": "app", "Value": "web"}])} for arn in batch]},
                {"ResourceArns": batch})
        v1.add_response("describe_load_balancers", {"LoadBalancerDescriptions": [
            {"LoadBalancerName": "elb-a", "VPCId": "vpc-1"}, {"LoadBalancerName": "elb-b"}]}, {})
        v1.add_response("describe_tags", {"TagDescriptions": [
            {"LoadBalancerName": "elb-a", "Tags": OWNED},
            {"LoadBalancerName": "elb-b", "Tags": [{"Key": KEY, "Value": "shared"}]}]},
            {"LoadBalancerNames": ["elb-a", "elb-b"]})
        v2.add_response("describe_target_groups", {"TargetGroups": [
            {"TargetGroupArn": target, "TargetGroupName": "k8s-tg", "VpcId": "vpc-1"}]}, {})
        v2.add_response("describe_tags", {"TagDescriptions": [{"ResourceArn": target, "Tags": OWNED}]},
                        {"ResourceArns": [target]})
        ec2.add_response("describe_security_groups", {"SecurityGroups": [
            {**_sg("sg-a"), "Tags": OWNED},
            {**_sg("sg-b"), "Tags": [{"Key": KEY, "Value": "shared"}]}]},  # a filter AWS applies, checked again
            {"Filters": [{"Name": f"tag:{KEY}", "Values": ["owned"]}]})
        ec2.add_response("describe_security_groups", {"SecurityGroups": [
            _sg("sg-a", ingress=["sg-a"]), _sg("sg-node", ingress=["sg-a"])]},
            {"Filters": [{"Name": "vpc-id", "Values": ["vpc-1"]}]})
        found = leftovers.find(aws)
    assert found.tag == f"{KEY}=owned"
    assert [(r.kind, r.id) for r in found.resources] == [
        ("load balancer", arns[0]), ("load balancer", arns[20]), ("classic load balancer", "elb-a"),
        ("target group", target), ("security group", "sg-a")]
    assert found.of("security group")[0].referenced_by == ("sg-node",)  # not itself


class Clock:
    def __init__(self):
        self.now, self.slept = 0.0, []

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


NLB = Leftover("load balancer", _nlb(1), "a1", "vpc-1")
ELB = Leftover("classic load balancer", "elb-a", "elb-a", "vpc-1")
TG = Leftover("target group", ARN.format("targetgroup", "k8s-tg/1"), "k8s-tg", "vpc-1")
SG = Leftover("security group", "sg-a", "k8s-elb-a", "vpc-1", ("sg-node",))
FOUND = Leftovers(f"{KEY}=owned", (NLB, ELB, TG, SG))
RULE = {"IpProtocol": "tcp", "FromPort": 30080, "ToPort": 30080, "UserIdGroupPairs": [{"GroupId": "sg-a"}]}
VPC = {"Filters": [{"Name": "vpc-id", "Values": ["vpc-1"]}]}


def test_delete_goes_load_balancers_then_target_groups_then_security_groups_waiting_out_in_use():
    aws, clock, waits = FakeAws(), Clock(), []
    with Stubber(aws.elbv2) as v2, Stubber(aws.elb) as v1, Stubber(aws.ec2) as ec2:
        v2.add_response("delete_load_balancer", {}, {"LoadBalancerArn": NLB.id})
        v1.add_response("delete_load_balancer", {}, {"LoadBalancerName": "elb-a"})
        v2.add_response("describe_load_balancers", {"LoadBalancers": [{"LoadBalancerArn": NLB.id}]},
                        {"LoadBalancerArns": [NLB.id]})  # still deleting
        v1.add_client_error("describe_load_balancers", "LoadBalancerNotFound", expected_params={
            "LoadBalancerNames": ["elb-a"]})
        v2.add_client_error("describe_load_balancers", "LoadBalancerNotFound", expected_params={
            "LoadBalancerArns": [NLB.id]})
        v2.add_client_error("delete_target_group", "ResourceInUse", expected_params={"TargetGroupArn": TG.id})
        v2.add_response("delete_target_group", {}, {"TargetGroupArn": TG.id})
        ec2.add_response("describe_security_groups", {"SecurityGroups": [_sg("sg-a"), _sg("sg-node", ingress=["sg-a"])]},
                         VPC)
        ec2.add_response("revoke_security_group_ingress", {}, {"GroupId": "sg-node", "IpPermissions": [RULE]})
        ec2.add_client_error("delete_security_group", "DependencyViolation", expected_params={"GroupId": "sg-a"})
        ec2.add_response("describe_security_groups", {"SecurityGroups": [_sg("sg-a"), _sg("sg-node")]}, VPC)
        ec2.add_response("delete_security_group", {}, {"GroupId": "sg-a"})
        cleanup = leftovers.delete(aws, FOUND, poll=10, now=lambda: clock.now, sleep=clock.sleep,
                                   on_wait=lambda pending, waited: waits.append(([p.name for p in pending], waited)))
        for stub in (v2, v1, ec2):
            stub.assert_no_pending_responses()
    assert [op for _, op in aws.calls] == [
        "DeleteLoadBalancer", "DeleteLoadBalancer", "DescribeLoadBalancers", "DescribeLoadBalancers",
        "DescribeLoadBalancers", "DeleteTargetGroup", "DeleteTargetGroup",
        "DescribeSecurityGroups", "RevokeSecurityGroupIngress", "DeleteSecurityGroup",
        "DescribeSecurityGroups", "DeleteSecurityGroup"]
    assert set(cleanup.deleted) == {NLB, ELB, TG, SG} and cleanup.failed == ()
    assert cleanup.revoked == (("sg-node", "sg-a"),) and cleanup.waited == 30
    assert waits == [(["a1"], 0), (["k8s-tg"], 10), (["k8s-elb-a"], 20)]


def test_a_group_still_in_use_is_given_up_after_the_timeout_and_reported():
    aws, clock = FakeAws(), Clock()
    found = Leftovers(FOUND.tag, (Leftover("security group", "sg-a", "k8s-elb-a", "vpc-1"),))
    with Stubber(aws.ec2) as ec2:
        for _ in range(4):  # at 0, 10, 20 and 30 s: then the 30 s are up
            ec2.add_response("describe_security_groups", {"SecurityGroups": [_sg("sg-a")]}, VPC)
            ec2.add_client_error("delete_security_group", "DependencyViolation", expected_params={"GroupId": "sg-a"})
        cleanup = leftovers.delete(aws, found, timeout=30, poll=10, now=lambda: clock.now, sleep=clock.sleep)
        ec2.assert_no_pending_responses()
    assert cleanup.deleted == () and cleanup.failed == ((found.resources[0], "DependencyViolation"),)
    assert clock.slept == [10, 10, 10]


def test_when_a_load_balancer_refuses_the_rest_is_tried_once_without_waiting():
    """A controller load balancer someone protected: its target group and group stay in use."""
    aws, clock = FakeAws(), Clock()
    with Stubber(aws.elbv2) as v2, Stubber(aws.elb) as v1, Stubber(aws.ec2) as ec2:
        v2.add_client_error("delete_load_balancer", "OperationNotPermitted", expected_params={"LoadBalancerArn": NLB.id})
        v1.add_response("delete_load_balancer", {}, {"LoadBalancerName": "elb-a"})
        v1.add_client_error("describe_load_balancers", "LoadBalancerNotFound", expected_params={
            "LoadBalancerNames": ["elb-a"]})
        v2.add_client_error("delete_target_group", "ResourceInUse", expected_params={"TargetGroupArn": TG.id})
        ec2.add_response("describe_security_groups", {"SecurityGroups": []}, VPC)
        ec2.add_client_error("delete_security_group", "DependencyViolation", expected_params={"GroupId": "sg-a"})
        cleanup = leftovers.delete(aws, FOUND, now=lambda: clock.now, sleep=clock.sleep)
    assert cleanup.deleted == (ELB,) and clock.slept == []
    assert dict(cleanup.failed) == {NLB: "OperationNotPermitted", TG: "ResourceInUse", SG: "DependencyViolation"}


@pytest.mark.parametrize("arn, name", [
    ("arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/net/k3s-dev-ApiLo-1A2B/50dc6c495c0c9188", "k3s-dev-ApiLo-1A2B"),
    ("not-an-arn", "not-an-arn")])
def test_load_balancer_names_come_from_their_arn(arn, name):
    assert protection.load_balancer_name(arn) == name


def _nothing_else(v2, v1, ec2, vpc=None):
    """find's remaining listings, all empty."""
    v1.add_response("describe_load_balancers", {"LoadBalancerDescriptions": []}, {})
    v2.add_response("describe_target_groups", {"TargetGroups": []}, {})
    filters = [{"Name": f"tag:{KEY}", "Values": ["owned"]}] + ([{"Name": "vpc-id", "Values": [vpc]}] if vpc else [])
    ec2.add_response("describe_security_groups", {"SecurityGroups": []}, {"Filters": filters})


def test_find_in_a_vpc_asks_only_about_what_is_in_that_vpc():
    aws = FakeAws()
    mine, theirs = _nlb(1), _nlb(2)
    with Stubber(aws.elbv2) as v2, Stubber(aws.elb) as v1, Stubber(aws.ec2) as ec2:
        v2.add_response("describe_load_balancers", {"LoadBalancers": [
            {"LoadBalancerArn": mine, "LoadBalancerName": "a1", "VpcId": "vpc-1"},
            {"LoadBalancerArn": theirs, "LoadBalancerName": "a2", "VpcId": "vpc-2"}]}, {})
        v2.add_response("describe_tags", {"TagDescriptions": [{"ResourceArn": mine, "Tags": OWNED}]},
                        {"ResourceArns": [mine]})
        _nothing_else(v2, v1, ec2, vpc="vpc-1")
        found = leftovers.find(aws, vpc_id="vpc-1")
        for stub in (v2, v1, ec2):
            stub.assert_no_pending_responses()
    assert [r.id for r in found.resources] == [mine]


def test_a_load_balancer_deleted_while_tags_are_read_is_skipped_and_other_errors_are_raised():
    """DescribeTags fails the whole call when one ARN is gone (LoadBalancerNotFound)."""
    aws = FakeAws()
    kept, deleted = _nlb(1), _nlb(2)
    listing = {"LoadBalancers": [{"LoadBalancerArn": kept, "LoadBalancerName": "a1", "VpcId": "vpc-1"},
                                 {"LoadBalancerArn": deleted, "LoadBalancerName": "a2", "VpcId": "vpc-1"}]}
    with Stubber(aws.elbv2) as v2, Stubber(aws.elb) as v1, Stubber(aws.ec2) as ec2:
        v2.add_response("describe_load_balancers", listing, {})
        v2.add_client_error("describe_tags", "LoadBalancerNotFound", expected_params={"ResourceArns": [kept, deleted]})
        v2.add_response("describe_tags", {"TagDescriptions": [{"ResourceArn": kept, "Tags": OWNED}]},
                        {"ResourceArns": [kept]})
        v2.add_client_error("describe_tags", "LoadBalancerNotFound", expected_params={"ResourceArns": [deleted]})
        _nothing_else(v2, v1, ec2)
        assert [r.id for r in leftovers.find(aws).resources] == [kept]
        v2.add_response("describe_load_balancers", listing, {})
        v2.add_client_error("describe_tags", "AccessDenied", expected_params={"ResourceArns": [kept, deleted]})
        with pytest.raises(Exception, match="AccessDenied"):
            leftovers.find(aws)


def test_a_group_another_group_still_uses_is_waited_out_and_one_already_gone_counts_as_deleted():
    """DeleteSecurityGroup: InvalidGroup.InUse while another group's rule names it,
    InvalidGroup.NotFound once it is gone (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)."""
    aws, clock = FakeAws(), Clock()
    in_use, gone = Leftover("security group", "sg-a", "k8s-elb-a", "vpc-1"), Leftover("security group", "sg-b", "b", "vpc-1")
    with Stubber(aws.ec2) as ec2:
        for group, answer in (("sg-a", "InvalidGroup.InUse"), ("sg-b", "InvalidGroup.NotFound"), ("sg-a", None)):
            ec2.add_response("describe_security_groups", {"SecurityGroups": []}, VPC)
            if answer:
                ec2.add_client_error("delete_security_group", answer, expected_params={"GroupId": group})
            else:
                ec2.add_response("delete_security_group", {}, {"GroupId": group})
        cleanup = leftovers.delete(aws, Leftovers(FOUND.tag, (in_use, gone)), poll=10, now=lambda: clock.now,
                                   sleep=clock.sleep)
        ec2.assert_no_pending_responses()
    assert set(cleanup.deleted) == {in_use, gone} and cleanup.failed == () and clock.slept == [10]


def test_a_load_balancer_that_cannot_be_looked_at_after_its_delete_is_reported_not_counted():
    aws, clock = FakeAws(), Clock()
    with Stubber(aws.elbv2) as v2:
        v2.add_response("delete_load_balancer", {}, {"LoadBalancerArn": NLB.id})
        v2.add_client_error("describe_load_balancers", "AccessDenied", expected_params={"LoadBalancerArns": [NLB.id]})
        cleanup = leftovers.delete(aws, Leftovers(FOUND.tag, (NLB,)), now=lambda: clock.now, sleep=clock.sleep)
        v2.assert_no_pending_responses()
    assert cleanup.deleted == () and cleanup.failed == ((NLB, "AccessDenied"),)
