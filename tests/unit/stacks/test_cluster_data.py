"""The cluster data stack (stacks/cluster_data.py): tokens, kubeconfig slot, cluster key and
snapshot bucket kept exactly in protected environments (RetainExceptOnCreate on delete, so a
failed first create still rolls back clean; Retain on replacement) and deleted otherwise, in
every stack an environment file renders; and the cluster-state marker is no CloudFormation
resource (the first server creates it), in no stack at all.
"""

from __future__ import annotations

import base64
import hashlib

import yaml

from k3s_infra.config import load_environment
from k3s_infra.model import naming
from k3s_infra.render import render

from tests.support.boot_sandbox import boot_env, expand
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
    the cluster key with its alias (issue 23: how a person finds the kept key) and the snapshot
    bucket; others delete them. The OIDC issuer's bucket holds
    only two public documents the first server rewrites at every boot: never kept (a new
    stack gets a new distribution and issuer anyway)."""
    kinds = {"AWS::SecretsManager::Secret", "AWS::KMS::Key", "AWS::KMS::Alias", "AWS::S3::Bucket"}
    for path in DEPLOYABLE:
        protected = plain_document(path).get("protected", False)
        rendering = render(load_environment(path=path))
        found = 0
        for stack in rendering.children:
            for logical, resource in yaml.safe_load(stack.body)["Resources"].items():
                if resource["Type"] in kinds and logical != "IssuerBucket":
                    found += 1
                    policy = resource.get("DeletionPolicy", "Delete")
                    assert (policy in KEEPS_ON_DELETE) is protected, (path.name, logical, policy)
                    if protected:
                        assert resource.get("UpdateReplacePolicy") == "Retain", (path.name, logical)
        assert found >= 6, path.name


# The stacks that write the facts the nodes read at boot: the API's names, the OIDC issuer's URL.
FACT_STACKS = {"ApiEndpoint": ("api_dns_name", "public_api_dns_name"), "Identity": ("issuer_url", "issuer_bucket")}


def test_the_only_ssm_parameters_in_templates_are_the_server_bundles_and_boot_facts(templates):
    """The marker and the restore request belong to the nodes and the CLI, never to
    CloudFormation (an update would rewrite them). The only CloudFormation-owned parameters
    are the server bundles, one per server stack, named for it and pinned by its user data,
    and the facts the boot reads (boot.sh bind_facts), each named as the role's boot.env says."""
    env, children = templates
    for stack_id, template in children.items():
        parameters = [r["Properties"] for r in template.get("Resources", {}).values()
                      if r["Type"] == "AWS::SSM::Parameter"]
        names = {p["Name"] for p in parameters}
        assert naming.cluster_state_parameter(env) not in names and naming.restore_request_parameter(env) not in names
        if stack_id in ("ServerInit", "Servers"):
            settings = boot_env(expand(template))
            by_name = {p["Name"]: p for p in parameters}
            order = settings["BUNDLE_PARAMETERS"].split()
            assert sorted(order) == sorted(by_name), stack_id
            joined = "".join(by_name[name]["Value"] for name in order)
            assert hashlib.sha256(base64.b64decode(joined)).hexdigest() == settings["BUNDLE_SHA256"]
            assert all(p["Type"] == "String" and p["Tier"] == "Intelligent-Tiering" for p in parameters)
            # A new launch template version exists only once the parameters hold what it pins.
            ids = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::SSM::Parameter"]
            (launch,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
            assert set(ids) <= set(launch.get("DependsOn", [])), stack_id
        elif stack_id in FACT_STACKS:
            facts = {naming.fact_parameter(env, fact) for fact in FACT_STACKS[stack_id]
                     if fact != "public_api_dns_name" or env.api.scheme == "internet-facing"}
            assert names == facts and all(p["Type"] == "String" for p in parameters), stack_id
        else:
            assert parameters == [], stack_id
