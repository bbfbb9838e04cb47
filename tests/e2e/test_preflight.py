"""Pre-flight on the session's moto server: a file that names a network, zone, instance type
or image AWS does not have is refused by ``plan``/``deploy`` with exit 2, all problems at
once, before anything is created (no artifact bucket, no stack)."""

from __future__ import annotations

import boto3
import pytest
import yaml

from k3s_infra.config import load_environment
from k3s_infra.deploy import preflight
from tests.support.emulated_account import AMI_PARAMETER, REGION

STACK = "k3s-preflight"


def bucket_and_stacks(aws) -> tuple[list[str], list[str]]:
    buckets = [b["Name"] for b in aws.s3.list_buckets().get("Buckets", [])]
    stacks = [s["StackName"] for s in aws.cloudformation.list_stacks()["StackSummaries"]
              if s["StackName"].startswith(STACK) and s["StackStatus"] != "DELETE_COMPLETE"]
    return buckets, stacks


@pytest.fixture
def untouched(aws):
    """Asserts the test created no bucket and no stack."""
    before = bucket_and_stacks(aws)
    yield
    assert bucket_and_stacks(aws) == before


def networked(write_env, name: str, **overrides):
    return str(write_env(name, deploy={"stack_name": STACK}, **overrides))


def test_the_harness_network_passes(write_env, moto_endpoint):
    env = load_environment(path=networked(write_env, "preflight-ok.yaml"))
    assert preflight.check(env, boto3.Session(region_name=REGION)) == []


@pytest.mark.parametrize("command", ["plan", "deploy"])
def test_a_subnet_that_does_not_exist_is_refused_before_anything_is_created(cli, write_env, network, aws,
                                                                            untouched, command):
    path = networked(write_env, "preflight-subnet.yaml")
    text = open(path).read().replace(network["subnets"][1], "subnet-0123456789abcdef0")
    open(path, "w").write(text)
    result = cli(command, "--config", path, *(["--yes"] if command == "deploy" else []))
    assert result.code == 2, result
    assert f"{path}: " in result.err
    assert "network.subnets[1].id: subnet-0123456789abcdef0 does not exist" in result.err
    assert "Traceback" not in result.err and "packaged" not in result.out


def test_wrong_zone_and_foreign_vpc_are_named(cli, write_env, network, aws, untouched):
    other_vpc = aws.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    foreign = aws.ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.9.0.0/24",
                                    AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    path = networked(write_env, "preflight-zone.yaml")
    env = load_environment(path=path).network
    document = open(path).read()
    document = document.replace(f"id: {env.subnets[0].id}\n    az: {REGION}a", f"id: {env.subnets[0].id}\n    az: {REGION}c")
    document = document.replace(env.subnets[1].id, foreign)
    open(path, "w").write(document)
    result = cli("plan", "--config", path)
    assert result.code == 2, result
    assert f"network.subnets[0].az: {env.subnets[0].id} is in {REGION}a, not {REGION}c" in result.err
    assert f"network.subnets[1].id: {foreign} belongs to {other_vpc}, not {env.vpc_id}" in result.err
    # the harness talks to moto through AWS_ENDPOINT_URL: the way past an emulator's gaps is named
    assert "--skip-preflight skips these checks" in result.err


def test_type_not_offered_and_wrong_vpc_cidr_are_refused_with_every_problem(cli, write_env, network, aws,
                                                                          untouched):
    # moto 5.2.5's offerings data (from AWS): m8id.2xlarge is offered in eu-west-1b, not in 1a.
    pools = [{"name": "general", "instance_types": ["m8id.2xlarge"], "min_size": 1, "desired": 1, "max_size": 1}]
    path = networked(write_env, "preflight-types.yaml", agent_pools=pools)
    text = open(path).read()
    assert "vpc_cidr: 10.0.0.0/16" in text
    open(path, "w").write(text.replace("vpc_cidr: 10.0.0.0/16", "vpc_cidr: 10.1.0.0/16"))
    result = cli("deploy", "--config", path, "--yes")
    assert result.code == 2, result
    assert f"agent_pools[general].instance_types: m8id.2xlarge is not offered in the nodes' zones {REGION}a" \
        in result.err
    assert f"network.vpc_cidr: {network['vpc_id']} has CIDR 10.0.0.0/16, not 10.1.0.0/16" in result.err


def test_an_image_of_the_wrong_architecture_is_refused(cli, write_env, network, aws, untouched):
    """The file names an arm64 image parameter for the Graviton types, but the parameter
    holds an x86_64 image: only the account can tell, pre-flight does (for each image)."""
    x86_image = aws.ssm.get_parameter(Name=AMI_PARAMETER)["Parameter"]["Value"]
    arm_parameter = "/k3s-infra-test/images/al2023-arm64"
    aws.ssm.put_parameter(Name=arm_parameter, Value=x86_image, Type="String", Overwrite=True)
    pools = [{"name": "arm", "instance_types": ["t4g.small"], "min_size": 1, "desired": 1, "max_size": 1}]
    path = networked(write_env, "preflight-arch.yaml", agent_pools=pools,
                     servers={"count": 1, "instance_type": "t4g.medium"},
                     nodes={"ami_parameter": {"arm64": arm_parameter}})
    result = cli("plan", "--config", path)
    assert result.code == 2, result
    assert f"nodes.ami_parameter.arm64: image {x86_image} (from {arm_parameter}) is x86_64, not arm64" in result.err
    assert "agent_pools[arm].instance_types: t4g.small runs arm64, but image" in result.err
    assert "is x86_64" in result.err


def test_private_subnets_without_a_route_out_are_refused(write_env, network, aws, moto_endpoint):
    vpc = aws.ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    isolated = [aws.ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.8.{i}.0/24", AvailabilityZone=f"{REGION}{z}")
                ["Subnet"]["SubnetId"] for i, z in enumerate("ab")]
    path = networked(write_env, "preflight-isolated.yaml")
    env = load_environment(path=path)
    env = env.model_copy(update={"network": env.network.model_copy(update={
        "vpc_id": vpc, "vpc_cidr": "10.8.0.0/16",
        "subnets": [s.model_copy(update={"id": i}) for s, i in zip(env.network.subnets, isolated)]})})
    problems = dict(preflight.check(env, boto3.Session(region_name=REGION)))
    assert "no route out" in problems["network.subnets[0].id"] and "secretsmanager" in problems["network.subnets[0].id"]


def test_servers_whose_real_zones_give_one_zone_a_majority_are_refused(write_env, network, aws, moto_endpoint):
    """Three servers: the file's az decides which subnets each server group gets (first zone to
    the first server, the others to the joining ones: k3s_infra/model/placement.py), the real
    zones (DescribeSubnets) where they run. A subnet whose az is wrong could put two of three
    servers in one zone, whose outage would then lose etcd quorum."""
    session = boto3.Session(region_name=REGION)
    env = load_environment(path=networked(write_env, "preflight-spread.yaml", servers={"count": 3}))
    assert sorted(s.az for s in env.network.subnets) == [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
    assert "network.subnets" not in dict(preflight.check(env, session))  # one server per zone
    # really in zone b, said to be in zone c: the joining servers' two subnets share one real zone
    liar = aws.ec2.create_subnet(VpcId=network["vpc_id"], CidrBlock="10.0.3.0/24",
                                 AvailabilityZone=f"{REGION}b")["Subnet"]["SubnetId"]
    subnets = [s.model_copy(update={"id": liar}) if s.az == f"{REGION}c" else s for s in env.network.subnets]
    env = env.model_copy(update={"network": env.network.model_copy(update={"subnets": subnets})})
    problems = preflight.check(env, session)
    assert ("network.subnets[2].az", f"{liar} is in {REGION}b, not {REGION}c") in problems
    spread = dict(problems)["network.subnets"]
    assert spread.startswith(f"{REGION}b could hold 2 of the 3 servers (ServerInit in {REGION}a, "
                             f"Servers balanced over {REGION}b)"), spread
    assert "lose etcd quorum" in spread and "3 distinct zones" in spread


def test_skip_preflight_lets_plan_reach_cloudformation(cli, write_env, network):
    path = networked(write_env, "preflight-skip.yaml")
    text = open(path).read().replace(network["subnets"][1], "subnet-0123456789abcdef0")
    open(path, "w").write(text)
    result = cli("plan", "--config", path, "--skip-preflight")
    assert result.code != 2 and "pre-flight" not in result.err, result


def test_a_network_without_nat_is_no_problem_but_a_warning_naming_what_needs_a_registry(moto_endpoint):
    """Interface endpoints reach AWS services only (AWS PrivateLink), not GitHub nor any registry.
    K3s and its own images come from the artifact bucket through the S3 gateway endpoint
    (deploy/artifacts.py), so nat_gateways: none is not refused; what still needs a registry in
    reach is named: the AWS cloud controller's chart (kubernetes/cloud-provider-aws README: helm
    repo https://kubernetes.github.io/cloud-provider-aws) and the pod identity webhook's image
    (public.ecr.aws), and each add-on's chart repository (cert-manager: https://charts.jetstack.io)."""
    from k3s_infra.config import ENVIRONMENTS_DIR, read_document, validate
    from k3s_infra.deploy.aws import Aws
    from k3s_infra.deploy.progress import RegistryNeeded

    document = read_document(ENVIRONMENTS_DIR / "staging.yaml")  # a managed network
    document["network"]["create"]["nat_gateways"] = "none"
    env = validate(document, "staging.yaml")
    offline = []
    assert preflight.check(env, boto3.Session(region_name=REGION), offline=offline) == []
    assert offline == ["network.create.nat_gateways"]
    needs = preflight.registry_needs(env)
    assert any("https://kubernetes.github.io/cloud-provider-aws" in need for need in needs), needs
    assert any("public.ecr.aws/eks/amazon-eks-pod-identity-webhook" in need for need in needs), needs
    seen = []
    preflight.gate(Aws(env), source="staging.yaml", on_progress=seen.append)
    assert seen == [RegistryNeeded("network.create.nat_gateways", needs)]
    document["addons"] = {**document.get("addons", {}), "cert_manager": {"enabled": True}}
    assert any("https://charts.jetstack.io" in need for need in preflight.registry_needs(validate(document, "x.yaml")))
    document["network"]["create"]["nat_gateways"] = "one"  # a way out: nothing to warn about
    seen.clear()
    preflight.gate(Aws(validate(document, "staging.yaml")), source="staging.yaml", on_progress=seen.append)
    assert seen == []

def test_pre_flight_checks_the_image_a_deploy_keeps_pinned(write_env, aws, moto_endpoint):
    """After a deploy the root pins its image; a newer value of the SSM parameter is not what
    the nodes get (deploy/images.py), so pre-flight checks the pinned one, and the new one only
    with --update-image."""
    from k3s_infra.deploy.aws import Aws

    env = load_environment(path=networked(write_env, "preflight-pinned.yaml"))
    pinned = aws.ssm.get_parameter(Name=AMI_PARAMETER)["Parameter"]["Value"]
    cfn = aws.cloudformation
    cfn.create_stack(StackName=env.stack_name, TemplateBody='{"Parameters": {"ImageId": {"Type": "String"}}, '
                     '"Resources": {"W": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}}',
                     Parameters=[{"ParameterKey": "ImageId", "ParameterValue": pinned}])
    try:
        pinned_by = preflight.pinned_images(Aws(env), update_image=False)
        assert pinned_by == {AMI_PARAMETER: pinned}
        assert preflight.pinned_images(Aws(env), update_image=True) == {}
    finally:
        cfn.delete_stack(StackName=env.stack_name)


def test_two_node_subnets_in_one_zone_give_the_load_balancer_one_per_zone(write_env, network, aws, moto_endpoint):
    """Issue 23: a load balancer takes one subnet per Availability Zone (ELB API Reference,
    CreateLoadBalancer, Subnets). With each subnet's az given, the internal API load balancer
    gets the first node subnet of each zone (nodes still use all); without it, pre-flight finds
    the real zones and names the subnet that shares one, before CloudFormation fails midway."""
    from k3s_infra.render import render
    from tests.support.oracle_helpers import resolve

    session = boto3.Session(region_name=REGION)
    second_a = aws.ec2.create_subnet(VpcId=network["vpc_id"], CidrBlock="10.0.4.0/24",
                                     AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    env = load_environment(path=networked(write_env, "preflight-lb-zones.yaml"))
    known = env.network.subnets + [env.network.subnets[0].model_copy(update={"id": second_a})]
    env = env.model_copy(update={"network": env.network.model_copy(update={"subnets": known})})
    assert [p for p in preflight.check(env, session) if "load balancer" in p[1]] == []
    root = yaml.safe_load(render(env).root.body)
    given = resolve(root["Resources"]["ApiEndpoint"]["Properties"]["Parameters"]["LoadBalancerSubnetIds"],
                    {}).split(",")
    zones = [aws.ec2.describe_subnets(SubnetIds=[s])["Subnets"][0]["AvailabilityZone"] for s in given]
    assert second_a not in given and len(zones) == len(set(zones)) == 2
    nodes = resolve(root["Resources"]["AgentPoolGeneral"]["Properties"]["Parameters"]["SubnetIds"], {}).split(",")
    assert second_a in nodes

    unknown = known[:2] + [known[2].model_copy(update={"az": None})]
    env = env.model_copy(update={"network": env.network.model_copy(update={"subnets": unknown})})
    problems = dict(preflight.check(env, session))
    assert problems["network.subnets[2].az"] == (
        f"{second_a} is in {REGION}a like {known[0].id}, and a load balancer takes one subnet per zone: "
        "give every subnet its az, so the load balancer gets one per zone")
