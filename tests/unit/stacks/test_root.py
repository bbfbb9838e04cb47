"""The root stack (stacks/root.py): one nested stack per building block, each child wired only
through Parameters and ``GetAtt <Child>.Outputs.<Name>`` (every parameter set, none unknown),
the node stacks receiving the sibling outputs and sizes they need, and the roll order: server
groups in turn, agents after the servers, so a new K3s version rolls every node group servers
first and changes nothing but the node stacks.
"""

from __future__ import annotations

import json

import yaml

from k3s_infra import bootstrap
from k3s_infra.config import validate
from k3s_infra.render import render

from tests.support.rendered import pool_stack as _pool_stack


def test_root_has_one_nested_stack_per_building_block(r):
    stacks = r.resources("Root", "AWS::CloudFormation::Stack")
    expected = {"Security", "ApiEndpoint", "ClusterData", "NodeIam", "Identity", "IssuerAccess",
                "ServerInit", "Servers"} | {
        "AgentPool" + "".join(w.capitalize() for w in p.name.split("-")) for p in r.env.agent_pools} | (
        {"Draining"} if r.env.draining else set()) | ({"Network"} if r.env.network.managed else set())
    assert set(stacks) == expected
    assert len(stacks) >= 4
    for stack in stacks.values():
        url = stack["Properties"]["TemplateURL"]
        # regional endpoint: the global one answers 307 to new buckets (naming.template_url)
        assert url.startswith(f"https://{r.env.artifact_bucket}.s3.{r.env.region}.amazonaws.com/")
        assert "StackName" not in stack["Properties"]  # rejected by CloudFormation on nested stacks


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
    # The first server has a role of its own (it alone publishes tokens, kubeconfig, issuer keys).
    assert init["FirstServerInstanceProfileArn"] == {"Fn::GetAtt": ["NodeIam", "Outputs.FirstServerInstanceProfileArn"]}
    assert "ServerInstanceProfileArn" not in init
    joining = r.resources("Root", "AWS::CloudFormation::Stack")["Servers"]["Properties"]["Parameters"]
    assert joining["ServerInstanceProfileArn"] == {"Fn::GetAtt": ["NodeIam", "Outputs.ServerInstanceProfileArn"]}
    # Every server runs with the cluster's OIDC issuer and the first server publishes to its
    # bucket, both read at boot (test_identity): no node stack waits for Identity.
    for params in (init, joining):
        assert not {"IssuerUrl", "IssuerBucketName", "ApiDnsName"} & set(params)
        assert not [v for v in params.values() if isinstance(v, dict) and v.get("Fn::GetAtt", [""])[0] == "Identity"]
    assert "IssuerBucketName" not in joining
    assert init["ImageId"] == {"Ref": "ImageId"}  # pinned at deploy (k3s_infra/deploy/images.py)
    stacks = r.resources("Root", "AWS::CloudFormation::Stack")
    # nodes go in the node (private) subnets; which zones each server group gets:
    # tests/unit/model/test_placement.py
    for stack_id, name in (("ServerInit", "FirstServerSubnetIds"), ("Servers", "JoiningServerSubnetIds"),
                           (_pool_stack(r.env.agent_pools[0]), "SubnetIds")):
        value = stacks[stack_id]["Properties"]["Parameters"][name]
        if r.env.network.managed:  # the created private subnets
            assert value == {"Fn::GetAtt": ["Network", f"Outputs.{name}"]}
        else:
            given = value["Fn::Join"][1]
            assert given and set(given) <= {s.id for s in r.env.network.subnets}


def test_asg_sizes_from_config(r):
    init = next(iter(r.resources("ServerInit", "AWS::AutoScaling::AutoScalingGroup").values()))["Properties"]
    assert (init["MinSize"], init["MaxSize"], init["DesiredCapacity"]) == ("1", "1", "1")
    root = r.resources("Root", "AWS::CloudFormation::Stack")
    others = root["Servers"]["Properties"]["Parameters"]
    count = r.env.servers.count - 1
    # MaxSize never below 1: CloudFormation's rolling update needs MinInstancesInService (0)
    # below MaxSize (UserGuide aws-attribute-updatepolicy.html, AutoScalingRollingUpdate).
    assert (others["MinSize"], others["MaxSize"], others["DesiredCapacity"]) == (str(count), str(max(count, 1)),
                                                                                 str(count))
    for pool in r.env.agent_pools:
        given = root[_pool_stack(pool)]["Properties"]["Parameters"]
        assert (given["MinSize"], given["DesiredCapacity"], given["MaxSize"]) == (
            str(pool.min_size), str(pool.desired), str(pool.max_size))
        (group,) = r.resources(_pool_stack(pool), "AWS::AutoScaling::AutoScalingGroup").values()
        assert group["Properties"]["DesiredCapacity"] == {"Ref": "DesiredCapacity"}


# --- roll order: upgrades roll through the groups, servers first ----------------------

def test_root_rolls_server_groups_in_turn_and_agents_after_servers(r):
    stacks = r.resources("Root", "AWS::CloudFormation::Stack")
    assert stacks["Servers"]["DependsOn"] == ["ServerInit"]
    # The first server's role gets its issuer policy from IssuerAccess: a role's user waits for
    # its external policies (CloudFormation AWS::IAM::Role, Policies).
    assert stacks["ServerInit"]["DependsOn"] == ["IssuerAccess"]
    for stack_id, stack in stacks.items():
        if stack_id.startswith("AgentPool"):
            assert stack["DependsOn"] == ["Servers"]


def test_a_first_create_starts_every_node_group_together(r):
    """The root of a first create (issue 25): the same stacks, parameters and outputs as the
    ordered root, with no roll order, so no agent pool waits for Servers and no joining server
    for ServerInit; each waits at boot for what it needs (boot.sh prepare_join, fetch_tokens,
    bind_facts). Nothing else differs: an update sends the ordered root."""
    create, update = r.templates["RootCreate"], r.templates["Root"]
    for stack_id, stack in create["Resources"].items():
        assert "DependsOn" not in stack, stack_id
        assert {k: v for k, v in update["Resources"][stack_id].items() if k != "DependsOn"} == stack, stack_id
    assert {k: v for k, v in create.items() if k != "Resources"} == {
        k: v for k, v in update.items() if k != "Resources"}
    # No node stack waits for another, nor for the OIDC issuer (its CloudFront distribution).
    for stack_id, stack in create["Resources"].items():
        if stack_id in ("ServerInit", "Servers") or stack_id.startswith("AgentPool"):
            producers = {v["Fn::GetAtt"][0] for v in stack["Properties"]["Parameters"].values()
                         if isinstance(v, dict) and "Fn::GetAtt" in v}
            assert not producers & {"Identity", "IssuerAccess", "ServerInit", "Servers"}, stack_id


def test_a_new_k3s_version_rolls_every_node_group_servers_first(env_document):
    document = env_document("prod")
    before = render(validate(document, "prod.yaml"))
    document["k3s"]["version"] = "v1.34.1+k3s1"
    after = render(validate(document, "prod.yaml"))
    old = {s.stack_id: yaml.safe_load(s.body) for s in before.stacks}
    new = {s.stack_id: yaml.safe_load(s.body) for s in after.stacks}
    node_stacks = [s for s in new if s in ("ServerInit", "Servers") or s.startswith("AgentPool")]
    assert len(node_stacks) == 2 + len(document["agent_pools"])  # two server groups, one per pool
    for stack_id in node_stacks:
        user_data = lambda t: json.dumps(  # noqa: E731
            [r for r in t["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"])
        assert user_data(old[stack_id]) != user_data(new[stack_id]), stack_id
        assert "K3S_VERSION='v1.34.1+k3s1'" in yaml.safe_load(
            bootstrap.resolve(
                [r for r in new[stack_id]["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"][0]
                ["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"][0],
                bootstrap.worst_case_values(after.env)))["write_files"][0]["content"], stack_id
        (group,) = [r for r in new[stack_id]["Resources"].values()
                    if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
        rolling = group["UpdatePolicy"]["AutoScalingRollingUpdate"]
        if stack_id in ("ServerInit", "Servers"):
            assert rolling["MaxBatchSize"] == 1  # etcd keeps quorum
        # Terminations during the roll go through the lifecycle hook the handler serves.
        assert group["Properties"]["LifecycleHookSpecificationList"][0]["LifecycleTransition"] == \
            "autoscaling:EC2_INSTANCE_TERMINATING"
    root = new["Root"]["Resources"]
    assert root["Servers"]["DependsOn"] == ["ServerInit"]
    for stack_id in (s for s in node_stacks if s.startswith("AgentPool")):
        assert root[stack_id]["DependsOn"] == ["Servers"]
    # Nothing but the node stacks changes: data, IAM and the queue stay as they are.
    for stack_id in ("Security", "ApiEndpoint", "ClusterData", "NodeIam", "Identity", "IssuerAccess", "Draining"):
        assert old[stack_id] == new[stack_id], stack_id


def test_every_rolling_update_keeps_fewer_in_service_than_the_group_may_hold(r):
    """AutoScalingRollingUpdate: MinInstancesInService "must be less than the MaxSize of the
    Auto Scaling group", else the update fails ("MinInstancesInService must be less than the
    autoscaling group's MaxSize"; UserGuide aws-attribute-updatepolicy.html). Checked with the
    sizes the root really passes, a one-server environment's empty Servers group included."""
    root = r.resources("Root", "AWS::CloudFormation::Stack")
    for stack_id, template in r.templates.items():
        for group in template["Resources"].values():
            if group["Type"] != "AWS::AutoScaling::AutoScalingGroup":
                continue
            rolling = group["UpdatePolicy"]["AutoScalingRollingUpdate"]
            max_size = group["Properties"]["MaxSize"]
            if max_size == {"Ref": "MaxSize"}:
                max_size = root[stack_id]["Properties"]["Parameters"]["MaxSize"]
            assert int(rolling["MinInstancesInService"]) < int(max_size), stack_id
