"""Properties of the rendered templates of every shipped environment, read back from disk."""

from __future__ import annotations

import hashlib

import pytest

from k3s_infra.model import ports
from k3s_infra.config import available_environments

ENVIRONMENTS = available_environments()

NODE_STACKS = ("ServerInit", "Servers")


def group_of(rule: dict) -> str:
    """'ServerSecurityGroup' from {'Fn::GetAtt': ['ServerSecurityGroup', 'GroupId']}."""
    return rule["Fn::GetAtt"][0]


GROUPS = {"server": "ServerSecurityGroup", "agent": "AgentSecurityGroup", "api_lb": "ApiLoadBalancerSecurityGroup"}


def ingress_rules(r) -> set[tuple]:
    rules = set()
    for resource in r.resources("Security", "AWS::EC2::SecurityGroupIngress").values():
        p = resource["Properties"]
        source = group_of(p["SourceSecurityGroupId"]) if "SourceSecurityGroupId" in p else \
            p.get("CidrIp") or p.get("CidrIpv6")
        rules.add((group_of(p["GroupId"]), p["IpProtocol"], p["FromPort"], p["ToPort"], source))
    return rules


@pytest.fixture(params=ENVIRONMENTS)
def r(request, rendered):
    return rendered[request.param]


def node_stacks(r) -> list[str]:
    return [s for s in r.templates if s in NODE_STACKS or s.startswith("AgentPool")]


def test_root_has_one_nested_stack_per_building_block(r):
    stacks = r.resources("Root", "AWS::CloudFormation::Stack")
    expected = {"Security", "ApiEndpoint", "ClusterData", "NodeIam", "ServerInit", "Servers"} | {
        "AgentPool" + "".join(w.capitalize() for w in p.name.split("-")) for p in r.env.agent_pools} | (
        {"Draining"} if r.env.draining else set()) | ({"Network"} if r.env.network.managed else set())
    assert set(stacks) == expected
    assert len(stacks) >= 4
    for stack in stacks.values():
        url = stack["Properties"]["TemplateURL"]
        # regional endpoint: the global one answers 307 to new buckets (naming.template_url)
        assert url.startswith(f"https://{r.env.artifact_bucket}.s3.{r.env.region}.amazonaws.com/")
        assert "StackName" not in stack["Properties"]  # rejected by CloudFormation on nested stacks


def test_template_urls_are_content_addressed(r):
    # Hashed here from the bytes on disk, not taken from the renderer's own digest.
    for stack in r.resources("Root", "AWS::CloudFormation::Stack").values():
        url = stack["Properties"]["TemplateURL"]
        digest = hashlib.sha256((r.folder / url.rsplit("/", 1)[1]).read_bytes()).hexdigest()
        assert f"/{digest[:20]}" in url


def test_root_wires_children_only_through_parameters_and_outputs(r):
    stacks = r.resources("Root", "AWS::CloudFormation::Stack")
    for stack_id, stack in stacks.items():
        child = r.templates[stack_id]
        given = stack["Properties"].get("Parameters", {})
        declared = child.get("Parameters", {})
        assert set(given) == set(declared), stack_id  # every parameter set, none unknown
        for name, value in given.items():
            if isinstance(value, dict) and "Fn::GetAtt" in value:
                producer, attribute = value["Fn::GetAtt"]
                assert attribute == f"Outputs.{name}"
                assert producer != stack_id and name in r.templates[producer]["Outputs"]


def test_node_stacks_receive_the_sibling_outputs_they_need(r):
    init = r.resources("Root", "AWS::CloudFormation::Stack")["ServerInit"]["Properties"]["Parameters"]
    assert init["ServerSecurityGroupId"] == {"Fn::GetAtt": ["Security", "Outputs.ServerSecurityGroupId"]}
    assert init["ApiTargetGroupArn"] == {"Fn::GetAtt": ["ApiEndpoint", "Outputs.ApiTargetGroupArn"]}
    assert init["ServerInstanceProfileArn"] == {"Fn::GetAtt": ["NodeIam", "Outputs.ServerInstanceProfileArn"]}
    assert init["ImageId"] == {"Ref": "ImageId"}  # pinned at deploy (k3s_infra/deploy/images.py)
    if r.env.network.managed:  # nodes go in the created private subnets
        assert init["SubnetIds"] == {"Fn::GetAtt": ["Network", "Outputs.SubnetIds"]}
    else:
        assert init["SubnetIds"] == {"Fn::Join": [",", [s.id for s in r.env.network.subnets]]}


def public_door(r) -> bool:
    return r.env.api.scheme == "internet-facing"


def cidr_door(r) -> str:
    """The group api.allowed_cidrs reach: the public NLB's when there is one, else the internal one's."""
    return "PublicApiLoadBalancerSecurityGroup" if public_door(r) else "ApiLoadBalancerSecurityGroup"


def test_port_matrix_is_exactly_the_k3s_table(r):
    backend = r.env.k3s.flannel_backend
    overlay = 8472 if backend == "vxlan" else 51820
    node_to_node = {(GROUPS[t], GROUPS[s]) for t in ("server", "agent") for s in ("server", "agent")}
    expected = {
        ("ServerSecurityGroup", "tcp", 2379, 2380, "ServerSecurityGroup"),
        ("ServerSecurityGroup", "tcp", 6443, 6443, "ServerSecurityGroup"),
        ("ServerSecurityGroup", "tcp", 6443, 6443, "AgentSecurityGroup"),
        ("ServerSecurityGroup", "tcp", 6443, 6443, "ApiLoadBalancerSecurityGroup"),
        *{(t, "udp", overlay, overlay, s) for t, s in node_to_node},
        *{(t, "tcp", 10250, 10250, s) for t, s in node_to_node},
        ("ApiLoadBalancerSecurityGroup", "tcp", 6443, 6443, "ServerSecurityGroup"),
        ("ApiLoadBalancerSecurityGroup", "tcp", 6443, 6443, "AgentSecurityGroup"),
        *{(cidr_door(r), "tcp", 6443, 6443, cidr) for cidr in r.env.api.allowed_cidrs},
        # the public door forwards to the servers from its own group
        *({("ServerSecurityGroup", "tcp", 6443, 6443, "PublicApiLoadBalancerSecurityGroup")} if public_door(r) else ()),
    }
    assert ingress_rules(r) == expected


def test_wireguard_backend_opens_51820_instead_of_8472(rendered):
    from k3s_infra.config import validate
    from k3s_infra.render import render
    import yaml

    env = rendered["dev"].env
    document = env.model_dump(mode="json")
    document["k3s"]["flannel_backend"] = "wireguard-native"
    security = render(validate(document, "test")).children[0]
    assert security.stack_id == "Security"
    rules = yaml.safe_load(security.body)["Resources"].values()
    udp_ports = {r["Properties"]["FromPort"] for r in rules if r["Properties"].get("IpProtocol") == "udp"}
    assert udp_ports == {51820}


def test_no_world_open_rule_unless_listed(r):
    world = {"0.0.0.0/0", "::/0"}
    for rule in ingress_rules(r):
        if rule[4] in world:
            assert rule[4] in r.env.api.allowed_cidrs and rule[0] == cidr_door(r)
    sources = {rule[4] for rule in ingress_rules(r)}
    cidr_sources = {s for s in sources if "/" in s}
    assert cidr_sources == set(r.env.api.allowed_cidrs)  # CIDRs only on the NLB, only the listed ones
    assert 8472 not in {rule[2] for rule in ingress_rules(r) if "/" in rule[4]}


def test_load_balancer_egress_only_to_servers_on_6443(r):
    groups = r.resources("Security", "AWS::EC2::SecurityGroup")
    # Listed on the group itself: only that replaces AWS's default allow-all egress.
    (p,) = groups["ApiLoadBalancerSecurityGroup"]["Properties"]["SecurityGroupEgress"]
    assert r.resources("Security", "AWS::EC2::SecurityGroupEgress") == {}
    assert (p["FromPort"], p["ToPort"], p["IpProtocol"]) == (6443, 6443, "tcp")
    assert group_of(p["DestinationSecurityGroupId"]) == "ServerSecurityGroup"


def test_port_table_has_no_rule_outside_k3s_requirements():
    allowed = {2379, 2380, 6443, 8472, 10250, 51820}
    for rule in ports.NODE_RULES:
        assert {rule.from_port, rule.to_port} <= allowed


def test_network_load_balancer(r):
    lb = r.resources("ApiEndpoint", "AWS::ElasticLoadBalancingV2::LoadBalancer")["ApiLoadBalancer"]["Properties"]
    assert lb["Type"] == "network" and lb["Scheme"] == "internal"  # nodes' door, in every environment
    assert lb["SecurityGroups"] == [{"Ref": "ApiLoadBalancerSecurityGroupId"}]
    listener = next(iter(r.resources("ApiEndpoint", "AWS::ElasticLoadBalancingV2::Listener").values()))
    assert (listener["Properties"]["Protocol"], listener["Properties"]["Port"]) == ("TCP", 6443)
    assert listener["Properties"]["DefaultActions"][0]["TargetGroupArn"] == {"Ref": "ApiTargetGroup"}
    group = r.resources("ApiEndpoint", "AWS::ElasticLoadBalancingV2::TargetGroup")["ApiTargetGroup"]["Properties"]
    assert (group["Protocol"], group["Port"]) == ("TCP", 6443)
    # Healthy only when K3s answers: HTTPS GET /ping on 6443, which K3s's supervisor answers
    # 200 "pong" unauthenticated (k3s-io/k3s pkg/server/router.go, router.Path("/ping")).
    assert (group["HealthCheckProtocol"], group["HealthCheckPort"], group["HealthCheckPath"]) == \
        ("HTTPS", "6443", "/ping")
    assert group["Matcher"] == {"HttpCode": "200"}
    attributes = {a["Key"]: a["Value"] for a in group["TargetGroupAttributes"]}
    assert attributes["preserve_client_ip.enabled"] == "false"  # NLB hairpin


def test_launch_templates_require_imdsv2_and_encrypt_volumes(r):
    for stack in node_stacks(r):
        templates = r.resources(stack, "AWS::EC2::LaunchTemplate")
        assert len(templates) == 1
        data = next(iter(templates.values()))["Properties"]["LaunchTemplateData"]
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["MetadataOptions"]["HttpPutResponseHopLimit"] in (1, 2)  # per role: test_hardening.py
        (volume,) = data["BlockDeviceMappings"]
        assert volume["Ebs"]["Encrypted"] is True and volume["Ebs"]["VolumeType"] == "gp3"
        assert data["ImageId"] == {"Ref": "ImageId"}
        assert "Arn" in data["IamInstanceProfile"]
        assert {spec["ResourceType"] for spec in data["TagSpecifications"]} == {"instance", "volume"}


def test_root_volume_sizes_come_from_config(r):
    def size(stack):
        data = next(iter(r.resources(stack, "AWS::EC2::LaunchTemplate").values()))["Properties"]
        return data["LaunchTemplateData"]["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"]

    assert size("ServerInit") == size("Servers") == r.env.servers.root_volume_gb
    for pool in r.env.agent_pools:
        assert size(_pool_stack(pool)) == pool.root_volume_gb


def _pool_stack(pool) -> str:
    return "AgentPool" + "".join(w.capitalize() for w in pool.name.split("-"))


# The image each node stack gets (pinned, per architecture): tests/test_graviton.py.


def test_every_asg_uses_its_launch_template(r):
    for stack in node_stacks(r):
        (group,) = r.resources(stack, "AWS::AutoScaling::AutoScalingGroup").values()
        p = group["Properties"]
        spec = p.get("LaunchTemplate") or p["MixedInstancesPolicy"]["LaunchTemplate"]["LaunchTemplateSpecification"]
        (lt_id,) = r.resources(stack, "AWS::EC2::LaunchTemplate")
        assert spec["LaunchTemplateId"] == {"Ref": lt_id}
        assert spec["Version"] == {"Fn::GetAtt": [lt_id, "LatestVersionNumber"]}
        assert p["VPCZoneIdentifier"] == {"Ref": "SubnetIds"}


def test_asg_sizes_from_config(r):
    init = next(iter(r.resources("ServerInit", "AWS::AutoScaling::AutoScalingGroup").values()))["Properties"]
    assert (init["MinSize"], init["MaxSize"], init["DesiredCapacity"]) == ("1", "1", "1")
    root = r.resources("Root", "AWS::CloudFormation::Stack")
    others = root["Servers"]["Properties"]["Parameters"]
    count = str(r.env.servers.count - 1)
    assert (others["MinSize"], others["MaxSize"], others["DesiredCapacity"]) == (count, count, count)
    for pool in r.env.agent_pools:
        given = root[_pool_stack(pool)]["Properties"]["Parameters"]
        assert (given["MinSize"], given["DesiredCapacity"], given["MaxSize"]) == (
            str(pool.min_size), str(pool.desired), str(pool.max_size))
        (group,) = r.resources(_pool_stack(pool), "AWS::AutoScaling::AutoScalingGroup").values()
        assert group["Properties"]["DesiredCapacity"] == {"Ref": "DesiredCapacity"}


def test_servers_register_with_the_api_target_group_and_agents_do_not(r):
    for stack in node_stacks(r):
        (group,) = r.resources(stack, "AWS::AutoScaling::AutoScalingGroup").values()
        both = [{"Ref": "ApiTargetGroupArn"}, *([{"Ref": "PublicApiTargetGroupArn"}] if public_door(r) else [])]
        expected = both if stack in NODE_STACKS else None
        assert group["Properties"].get("TargetGroupARNs") == expected


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


def test_tags_on_instances_volumes_and_groups(r):
    cluster_key = f"kubernetes.io/cluster/{r.env.stack_name}"
    for stack in node_stacks(r):
        (group,) = r.resources(stack, "AWS::AutoScaling::AutoScalingGroup").values()
        tags = {t["Key"]: t for t in group["Properties"]["Tags"]}
        # `shared`: the cloud controller finds the instances, but may not change them (test_hardening.py).
        assert tags[cluster_key]["Value"] == "shared" and tags[cluster_key]["PropagateAtLaunch"] is True
        assert tags["k3s-infra:environment"]["Value"] == r.env.name
        data = next(iter(r.resources(stack, "AWS::EC2::LaunchTemplate").values()))["Properties"]
        for spec in data["LaunchTemplateData"]["TagSpecifications"]:
            keys = {t["Key"]: t["Value"] for t in spec["Tags"]}
            assert keys["k3s-infra:cluster"] == r.env.stack_name
            for key, value in r.env.deploy.tags.items():
                assert keys[key] == value
    sg = r.resources("Security", "AWS::EC2::SecurityGroup")["ServerSecurityGroup"]["Properties"]
    sg_tags = {t["Key"]: t["Value"] for t in sg["Tags"]}
    assert sg_tags["Name"] == {"Fn::Sub": "${AWS::StackName}/ServerSecurityGroup"}


def test_token_secrets_are_generated_never_given(r):
    secrets = r.resources("ClusterData", "AWS::SecretsManager::Secret")
    assert {"TokenSecret", "AgentTokenSecret", "KubeconfigSecret"} <= set(secrets)
    for secret in secrets.values():
        assert "SecretString" not in secret["Properties"]
        assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32


def test_snapshot_bucket_is_encrypted_private_and_expiring(r):
    bucket = r.resources("ClusterData", "AWS::S3::Bucket")["SnapshotBucket"]
    p = bucket["Properties"]
    assert p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(p["PublicAccessBlockConfiguration"].values())
    assert p["VersioningConfiguration"]["Status"] == "Enabled"
    (rule,) = p["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == r.env.k3s.etcd_snapshots.expire_days
    # RetainExceptOnCreate: kept on delete, not by a failed first create's rollback
    assert bucket["DeletionPolicy"] == ("RetainExceptOnCreate" if r.env.protected else "Delete")
    assert bucket["UpdateReplacePolicy"] == ("Retain" if r.env.protected else "Delete")


def test_shape_of_root_does_not_depend_on_server_count(rendered):
    from k3s_infra.config import validate
    from k3s_infra.render import render

    env = rendered["dev"].env
    document = env.model_dump(mode="json")
    document["servers"]["count"] = 3
    grown = render(validate(document, "test"))
    assert [c.file for c in grown.children] == [c.file for c in rendered["dev"].rendering.children]
    same = {c.stack_id: c.body for c in grown.children}
    assert same == {c.stack_id: c.body for c in rendered["dev"].rendering.children}  # only the root differs
    assert grown.root.body != rendered["dev"].rendering.root.body


def test_reordering_pools_in_config_keeps_logical_ids(rendered):
    from k3s_infra.config import validate
    from k3s_infra.render import render

    env = rendered["prod"].env
    document = env.model_dump(mode="json")
    document["agent_pools"].reverse()
    reordered = render(validate(document, "test"))
    original = {c.stack_id: c.body for c in rendered["prod"].rendering.children}
    assert {c.stack_id: c.body for c in reordered.children} == original
