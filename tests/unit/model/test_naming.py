"""Names and tags (k3s_infra/model/naming.py): logical IDs come from the environment's content,
never a list position (reordering pools changes nothing); instances, volumes and groups carry
the cluster, environment and deploy tags, the cloud controller's cluster tag `shared` (it may
find, not change, them: tests/properties/test_least_privilege_iam.py); every pool's group
carries the cluster autoscaler's discovery and node-template tags, in the format of
kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md ("Auto-Discovery Setup")
and aws_manager.go extractTaintsFromAsg, so a pool scales up from zero. Expected tags come
from the environment files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from k3s_infra.config import read_document, validate
from k3s_infra.model import naming

from tests.support.autoscaler import PREFIX, cluster_of, expected_template_tags, group_tags
from tests.support.rendered import node_stacks


ROOT = Path(__file__).resolve().parents[3]


def test_tags_on_instances_volumes_and_groups(r):
    cluster_key = f"kubernetes.io/cluster/{r.env.stack_name}"
    for stack in node_stacks(r):
        (group,) = r.resources(stack, "AWS::AutoScaling::AutoScalingGroup").values()
        tags = {t["Key"]: t for t in group["Properties"]["Tags"]}
        # `shared`: the cloud controller finds the instances, but may not change them
        # (tests/properties/test_least_privilege_iam.py).
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


def test_reordering_pools_in_config_keeps_logical_ids(rendered):
    from k3s_infra.config import validate
    from k3s_infra.render import render

    env = rendered["prod"].env
    document = env.model_dump(mode="json")
    document["agent_pools"].reverse()
    reordered = render(validate(document, "test"))
    original = {c.stack_id: c.body for c in rendered["prod"].rendering.children}
    assert {c.stack_id: c.body for c in reordered.children} == original


# --- the cluster autoscaler's tags ---------------------------------------------------

@pytest.mark.parametrize("name", ["dev", "prod"])
def test_every_pool_group_carries_discovery_and_node_template_tags(rendered, name):
    document = read_document(ROOT / "environments" / f"{name}.yaml")
    templates = rendered[name].templates
    for pool in document["agent_pools"]:
        tags = group_tags(templates[naming.agent_pool_stack(pool["name"])])
        assert tags[f"{PREFIX}/enabled"] == "true"
        assert tags[f"{PREFIX}/{cluster_of(document)}"] == "owned"
        scaler = {k: v for k, v in tags.items() if k.startswith(f"{PREFIX}/node-template/")}
        assert scaler == expected_template_tags(pool), pool["name"]
        assert all(len(k) <= 128 and len(v) <= 256 for k, v in tags.items())  # AWS Auto Scaling Tag limits
        assert len(tags) <= 50


def test_prod_spot_pool_scales_from_zero_with_its_taint(rendered):
    # prod.yaml: spot-batch, min_size 0, taint workload=batch:NoSchedule, labels workload/capacity.
    tags = group_tags(rendered["prod"].templates["AgentPoolSpotBatch"])
    assert tags[f"{PREFIX}/node-template/taint/workload"] == "batch:NoSchedule"
    assert tags[f"{PREFIX}/node-template/label/capacity"] == "spot"


def test_a_taint_without_value_is_tagged_with_an_empty_value(env_document):
    document = env_document("prod")
    document["agent_pools"][1]["taints"] = ["dedicated:NoExecute"]
    env = validate(document, "prod.yaml")
    tags = naming.autoscaler_tags(env, env.agent_pools[1])
    # aws_manager.go extractTaintsFromAsg: value ':NoExecute' -> key dedicated, value '', effect NoExecute.
    assert tags[f"{PREFIX}/node-template/taint/dedicated"] == ":NoExecute"


def test_workload_role_names_fit_iam_and_keep_clusters_and_regions_apart(env_document):
    """IAM role names: at most 64 of [\\w+=,.@-], unique per account, not per region
    (IAM User Guide, "IAM and AWS STS quotas", name requirements)."""
    import re

    from k3s_infra.config import validate

    names = set()
    for region in ("eu-west-1", "us-east-1"):
        document = env_document("dev")
        document["region"] = region
        for subnet in document["network"]["subnets"]:
            subnet["az"] = region + subnet["az"][-1]
        env = validate(document, "dev.yaml")
        for account in ("payments/api", "a" * 63 + "/" + "b" * 200, "a" * 63 + "/" + "b" * 199 + "c"):
            name = naming.workload_role_name(env, account)
            assert len(name) <= 64 and re.fullmatch(r"[\w+=,.@-]+", name), name
            assert naming.workload_role_name(env, account) == name  # deterministic
            names.add(name)
            assert naming.workload_role_arn(env, account).endswith(f":role/k3s-infra/{name}")
    assert len(names) == 6  # two regions x three service accounts, all distinct
