"""Walk every IAM policy in every rendered template: least privilege, enforced.

Allow statements on a secret, bucket, parameter or key name that resource;
"*" is only for actions listed in k3s_infra/iam_actions.py (no resource-level
scoping exists, or the resource is created at run time), and cluster-resource
changes carry the cluster tag condition.
"""

from __future__ import annotations

import json

import pytest

from k3s_infra import iam_actions
from k3s_infra.config import available_environments

RISKY_PREFIXES = ("secretsmanager:", "s3:", "ssm:", "kms:", "sqs:", "iam:")
TAG_CONDITIONED = frozenset(a.JSONrepr() for a in iam_actions.CLOUD_CONTROLLER_ON_CLUSTER_RESOURCES)


def allow_statements(templates: dict[str, dict]):
    """(stack, resource, statement) for every Allow in an identity policy."""
    for stack_id, template in templates.items():
        for logical, resource in template["Resources"].items():
            p = resource.get("Properties", {})
            documents = []
            if resource["Type"] == "AWS::IAM::Role":
                documents = [policy["PolicyDocument"] for policy in p.get("Policies", [])]
            elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                documents = [p["PolicyDocument"]]
            for document in documents:
                for statement in document["Statement"]:
                    if statement["Effect"] == "Allow":
                        yield stack_id, logical, statement


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


@pytest.fixture(params=available_environments())
def statements(request, rendered):
    found = list(allow_statements(rendered[request.param].templates))
    assert found  # the walk sees the node roles
    return found


def test_wildcard_resources_only_for_listed_actions(statements):
    for stack_id, logical, statement in statements:
        if "*" not in as_list(statement["Resource"]):
            continue
        actions = set(as_list(statement["Action"]))
        unscoped = actions - iam_actions.UNSCOPED
        assert unscoped <= TAG_CONDITIONED, (stack_id, logical, statement.get("Sid"), unscoped)
        if unscoped:
            (condition,) = statement["Condition"]["StringEquals"]
            assert condition.startswith("aws:ResourceTag/kubernetes.io/cluster/")


@pytest.mark.parametrize("name", available_environments())
def test_autoscaling_writes_only_on_groups_tagged_for_this_cluster(rendered, name):
    """SetDesiredCapacity / TerminateInstanceInAutoScalingGroup: never on "*", only on
    autoScalingGroup ARNs, only where the group carries k8s.io/cluster-autoscaler/<cluster>
    = owned (autoscaler AWS README: restrict by tag conditional)."""
    cluster = rendered[name].env.stack_name
    scaling = {a.JSONrepr() for a in iam_actions.AUTOSCALER_SCALING}
    seen = 0
    for _, logical, statement in allow_statements(rendered[name].templates):
        if not scaling & set(as_list(statement["Action"])):
            continue
        seen += 1
        assert set(as_list(statement["Action"])) <= scaling, (logical, statement.get("Sid"))
        assert statement["Condition"] == {
            "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster}": "owned"}}
        for resource in as_list(statement["Resource"]):
            assert resource != "*" and ":autoScalingGroup:" in json.dumps(resource), logical
    assert seen == (1 if rendered[name].env.autoscaling else 0)


def test_no_risky_action_on_any_wildcard(statements):
    for stack_id, logical, statement in statements:
        actions = as_list(statement["Action"])
        assert not any(a == "*" or a.endswith(":*") for a in actions), (logical, statement.get("Sid"))
        risky = [a for a in actions if a.startswith(RISKY_PREFIXES)]
        if risky:
            resources = json.dumps(as_list(statement["Resource"]))
            assert resources != '["*"]', (logical, statement["Sid"], risky)


def test_secret_bucket_parameter_and_key_statements_name_their_resource(statements):
    for _, logical, statement in statements:
        actions = as_list(statement["Action"])
        if any(a.startswith(("secretsmanager:", "s3:", "ssm:", "kms:")) for a in actions):
            for resource in as_list(statement["Resource"]):
                assert resource != "*"
                text = json.dumps(resource)
                assert "Ref" in text or "Sub" in text or "GetAtt" in text, (logical, statement["Sid"])


def test_the_listed_unscoped_actions_are_only_reads_or_creates():
    for action in iam_actions.UNSCOPED:
        verb = action.split(":", 1)[1]
        assert verb.startswith(("Describe", "List", "Get", "Create", "AddTags")), action
