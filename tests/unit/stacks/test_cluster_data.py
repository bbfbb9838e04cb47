"""The cluster data stack (stacks/cluster_data.py): tokens, kubeconfig slot, cluster key and
snapshot bucket kept exactly in protected environments (RetainExceptOnCreate on delete, so a
failed first create still rolls back clean; Retain on replacement) and deleted otherwise, in
every stack an environment file renders; and the cluster-state marker is no CloudFormation
resource (the first server creates it), in no stack at all.
"""

from __future__ import annotations

import yaml

from k3s_infra.config import load_environment
from k3s_infra.render import render

from tests.support.oracle_helpers import DEPLOYABLE, plain_document


# AWS::* DeletionPolicy values that keep the resource when its stack is deleted
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html).
KEEPS_ON_DELETE = {"Retain", "RetainExceptOnCreate"}


def test_cluster_data_is_retained_exactly_in_protected_environments(r):
    # RetainExceptOnCreate (DeletionPolicy only): a failed first create still rolls back clean
    on_delete, on_replace = ("RetainExceptOnCreate", "Retain") if r.env.protected else ("Delete", "Delete")
    resources = r.templates["ClusterData"]["Resources"]
    kept = {k: v for k, v in resources.items()
            if v["Type"] in ("AWS::SecretsManager::Secret", "AWS::S3::Bucket", "AWS::KMS::Key")}
    assert {"TokenSecret", "AgentTokenSecret", "KubeconfigSecret", "SnapshotBucket"} <= set(kept)
    for logical, resource in kept.items():
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == (on_delete, on_replace), logical


def test_every_secret_key_and_bucket_of_a_protected_environment_is_retained():
    """From the environment files: protected ones keep every secret (add-on secrets included),
    the cluster key and the snapshot bucket; others delete them."""
    kinds = {"AWS::SecretsManager::Secret", "AWS::KMS::Key", "AWS::S3::Bucket"}
    for path in DEPLOYABLE:
        protected = plain_document(path).get("protected", False)
        rendering = render(load_environment(path=path))
        found = 0
        for stack in rendering.children:
            for logical, resource in yaml.safe_load(stack.body)["Resources"].items():
                if resource["Type"] in kinds:
                    found += 1
                    policy = resource.get("DeletionPolicy", "Delete")
                    assert (policy in KEEPS_ON_DELETE) is protected, (path.name, logical, policy)
                    if protected:
                        assert resource.get("UpdateReplacePolicy") == "Retain", (path.name, logical)
        assert found >= 5, path.name


def test_no_ssm_parameter_resource_anywhere(templates):
    _, children = templates
    for stack_id, template in children.items():
        types = {r["Type"] for r in template.get("Resources", {}).values()}
        assert "AWS::SSM::Parameter" not in types, stack_id
