"""Readers for the cluster autoscaler's tests: its tag prefix, the auto scaling groups of a
template and their tags, and the node-template tags an environment file implies.

Expected formats from kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md
("Auto-Discovery Setup": discovery tags, node-template label/taint tags and their value
format). The autoscaler's tests live with the module deciding each behaviour:
tests/unit/model/test_naming.py (tags), tests/unit/model/test_addons.py (the chart),
tests/unit/components/test_iam.py (scaling permissions), tests/unit/components/test_auto_scaling_group.py
(sizes kept across deploys), tests/unit/config/test_addons.py (chart pinned per Kubernetes
minor), tests/unit/config/test_model.py (on by default), tests/unit/model/test_limits.py (tag limits),
tests/unit/stacks/test_servers.py and test_agent_pool.py (where the tags go)."""

from __future__ import annotations

from tests.support.addons import charts_of

PREFIX = "k8s.io/cluster-autoscaler"
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
SCALING = {"autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"}


def groups(template: dict) -> list[dict]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]


def group_tags(template: dict) -> dict[str, str]:
    (group,) = groups(template)
    return {tag["Key"]: tag["Value"] for tag in group["Tags"]}


def expected_template_tags(pool: dict) -> dict[str, str]:
    """Node-template tags of a pool as written in its environment file (docs/node-pools.md format:
    label/<key> = value, taint/<key> = value:Effect)."""
    tags = {f"{PREFIX}/node-template/label/{k}": v for k, v in pool.get("labels", {}).items()}
    for taint in pool.get("taints", []):
        key_value, effect = taint.rsplit(":", 1)
        key, _, value = key_value.partition("=")
        tags[f"{PREFIX}/node-template/taint/{key}"] = f"{value}:{effect}"
    return tags


def cluster_of(document: dict) -> str:
    # The cluster is the root stack's name: deploy.stack_name, else k3s-<name> (docs/configuration.md: deploy).
    return document.get("deploy", {}).get("stack_name") or f"k3s-{document['name']}"


def server_chart(rendered_env) -> dict:
    return charts_of(rendered_env.templates["ServerInit"])["cluster-autoscaler"]


def group_resources(template: dict) -> list[dict]:
    """The groups as resources (with their UpdatePolicy), not only their Properties."""
    return [r for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
