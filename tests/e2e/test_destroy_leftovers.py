"""Destroy leaves nothing and never sticks (issue 23.4, 23.6), through the real CLI on the
session's moto server. A protected environment with a managed network (the Network stack
makes its VPC) gets, as the AWS cloud controller manager would make them for Services of
type LoadBalancer: an NLB with a listener and target group, a classic ELB with its security
group, which a node group's rule names. All tagged kubernetes.io/cluster/<cluster>=owned.
Decoys carry another cluster's key, a longer key sharing the prefix, or ``shared``.

moto models none of the refusals that make this matter on AWS; k3s_infra/emulator/shims_elb.py
adds them (subnets and security groups in use, deletion protection, DELETE_FAILED), so a
destroy that skipped its cleanup or the protection lift fails here as it would on AWS."""

from __future__ import annotations

import pytest

from tests.support.emulated_account import REGION, nested_outputs, FIRST_DEPLOY_STATUS

STACK = "k3s-leftovers"
OWNED = {"Key": f"kubernetes.io/cluster/{STACK}", "Value": "owned"}
DECOY_TAGS = [{"Key": "kubernetes.io/cluster/k3s-other", "Value": "owned"},
              {"Key": f"kubernetes.io/cluster/{STACK}-2", "Value": "owned"},
              {"Key": f"kubernetes.io/cluster/{STACK}", "Value": "shared"}]
POOL = {"name": "general", "instance_types": ["t3.small"], "min_size": 1, "desired": 1, "max_size": 1,
        "root_volume_gb": 30}


@pytest.fixture(scope="module")
def config(write_env):
    return str(write_env("leftovers.yaml", base="staging", protected=True, agent_pools=[POOL],
                         servers={"count": 1, "instance_type": "t3.small"}, deploy={"stack_name": STACK}))


def _nested_outputs(aws, logical: str) -> dict[str, str]:
    return nested_outputs(aws, STACK, logical)


def _controller_made(aws, vpc: str, subnets: list[str], tags: list[dict], label: str) -> dict[str, str]:
    """What the cloud controller makes for one Service: an NLB (listener, target group) and a
    classic ELB with its own security group. Returns kind -> ID."""
    elbv2, elb, ec2 = aws.elbv2, aws.elb, aws.ec2
    group = ec2.create_security_group(GroupName=f"k8s-elb-{label}", Description="controller", VpcId=vpc,
                                      TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])["GroupId"]
    nlb = elbv2.create_load_balancer(Name=f"nlb-{label}", Subnets=subnets, Type="network", Scheme="internet-facing",
                                     Tags=tags)["LoadBalancers"][0]["LoadBalancerArn"]
    target = elbv2.create_target_group(Name=f"k8s-tg-{label}", Protocol="TCP", Port=30080, VpcId=vpc,
                                       TargetType="instance", Tags=tags)["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(LoadBalancerArn=nlb, Protocol="TCP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": target}])
    elb.create_load_balancer(LoadBalancerName=f"elb-{label}", Subnets=subnets, SecurityGroups=[group], Tags=tags,
                             Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30081}])
    return {"nlb": nlb, "target": target, "elb": f"elb-{label}", "group": group}


def _exists(aws, kind: str, ident: str) -> bool:
    try:
        if kind == "nlb":
            aws.elbv2.describe_load_balancers(LoadBalancerArns=[ident])
        elif kind == "target":
            aws.elbv2.describe_target_groups(TargetGroupArns=[ident])
        elif kind == "elb":
            return bool(aws.elb.describe_load_balancers(LoadBalancerNames=[ident])["LoadBalancerDescriptions"])
        else:
            aws.ec2.describe_security_groups(GroupIds=[ident])
    except aws.ec2.exceptions.ClientError:
        return False
    return True


def _live_stacks(aws) -> list[str]:
    return [s["StackName"] for s in aws.cloudformation.list_stacks()["StackSummaries"]
            if s["StackName"].startswith(STACK) and s["StackStatus"] != "DELETE_COMPLETE"]


def test_destroy_deletes_what_the_cloud_controller_made_and_nothing_else(cli, config, aws, network):
    assert cli("deploy", "--config", config, "--yes").code == 0
    net = _nested_outputs(aws, "Network")
    vpc, public = net["VpcId"], net["PublicSubnetIds"].split(",")
    owned = _controller_made(aws, vpc, public, [OWNED], "mine")
    # the node group opens the NodePort to the ELB's group, as the controller does
    node_group = _nested_outputs(aws, "Security")["ServerSecurityGroupId"]
    aws.ec2.authorize_security_group_ingress(GroupId=node_group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 30081, "ToPort": 30081, "UserIdGroupPairs": [{"GroupId": owned["group"]}]}])
    decoys = [_controller_made(aws, network["vpc_id"], network["public_subnets"], [tag], f"decoy{i}")
              for i, tag in enumerate(DECOY_TAGS)]
    # this cluster's exact tag, but in another VPC: another tool's cluster of the same name
    # (an EKS or kops cluster tags the same key) is never this destroy's to delete
    decoys.append(_controller_made(aws, network["vpc_id"], network["public_subnets"], [OWNED], "elsewhere"))
    # the API load balancer of a protected environment has deletion protection (deploy/protection.py)
    api = _nested_outputs(aws, "ApiEndpoint")["PublicApiLoadBalancerArn"]
    attributes = aws.elbv2.describe_load_balancer_attributes(LoadBalancerArn=api)["Attributes"]
    assert {"Key": "deletion_protection.enabled", "Value": "true"} in attributes

    plan = cli("destroy", "--config", config, "--dry-run")
    assert plan.code == 0, plan
    assert "destroy refuses without --allow-protected" in plan.out and "nothing deleted (dry run)" in plan.out
    assert "lift the stack's termination protection (needs --allow-protected)" in plan.out
    (lift,) = [line for line in plan.out.splitlines() if "lift the deletion protection of the load balancers" in line]
    assert api.split("/")[-2] in lift and lift.endswith("(needs --allow-protected)")
    assert f"(tagged kubernetes.io/cluster/{STACK}=owned), 4 resources:" in plan.out
    for ident in (owned["nlb"], owned["target"], "elb-mine", owned["group"]):
        assert ident in plan.out, plan
    assert f"rules of {node_group} name it" in plan.out
    assert not any(ident in plan.out for decoy in decoys for ident in decoy.values()), plan
    assert "empty the OIDC issuer bucket" in plan.out and "keep (DeletionPolicy Retain)" in plan.out
    assert all(_exists(aws, kind, ident) for kind, ident in owned.items())  # nothing deleted
    assert aws.cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == FIRST_DEPLOY_STATUS

    destroyed = cli("destroy", "--config", config, "--yes", "--allow-protected")
    assert destroyed.code == 0, destroyed
    assert "deletion protection removed from the load balancers" in destroyed.out
    assert "deleted 4 resources of the cloud controller, revoked 1 rule naming them" in destroyed.out
    assert not any(_exists(aws, kind, ident) for kind, ident in owned.items()), destroyed
    assert all(_exists(aws, kind, ident) for decoy in decoys for kind, ident in decoy.items())
    assert _live_stacks(aws) == []
    assert aws.ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Vpcs"] == []
    # tidy the shared server: the decoys, and the data a protected environment keeps
    for decoy in decoys:
        aws.elb.delete_load_balancer(LoadBalancerName=decoy["elb"])
        aws.elbv2.delete_load_balancer(LoadBalancerArn=decoy["nlb"])
        aws.elbv2.delete_target_group(TargetGroupArn=decoy["target"])
        aws.ec2.delete_security_group(GroupId=decoy["group"])
    for secret in aws.secretsmanager.list_secrets()["SecretList"]:
        if f"/{STACK}/" in secret["Name"]:
            aws.secretsmanager.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)


def test_a_dry_run_of_an_absent_stack_deletes_nothing(cli, write_env):
    path = str(write_env("never-deployed.yaml", deploy={"stack_name": "k3s-never-deployed"}))
    result = cli("destroy", "--config", path, "--dry-run")
    assert result.code == 0, result
    assert "k3s-never-deployed in 123456789012/" + REGION in result.out and "no such stack" in result.out
