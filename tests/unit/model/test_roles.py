"""What each node role is (k3s_infra/model/roles.py), read from rendered groups: the role tag
the IAM health conditions name is on each group (k3s-infra:role), and the node termination
handler's managed tag (aws-node-termination-handler/managed) is on the node groups exactly
when draining is on.
"""

from __future__ import annotations

from k3s_infra.config.catalog import NTH_MANAGED_TAG


def node_group_tags(template: dict) -> dict[str, str]:
    (group,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
    return {t["Key"]: t["Value"] for t in group["Properties"]["Tags"]}


def test_the_role_tags_the_health_conditions_name_are_on_the_groups(templates):
    """The IAM conditions above only hold if each group carries its node role tag."""
    env, rendered_templates = templates
    expected = {"ServerInit": "server-init", "Servers": "server"}
    for stack_id, template in rendered_templates.items():
        for resource in template.get("Resources", {}).values():
            if resource["Type"] != "AWS::AutoScaling::AutoScalingGroup":
                continue
            tags = {t["Key"]: t["Value"] for t in resource["Properties"]["Tags"]}
            assert tags["k3s-infra:role"] == expected.get(stack_id, "agent"), stack_id
            assert tags["k3s-infra:cluster"] == env.stack_name


def test_node_groups_wear_the_handler_tag_only_when_draining(rendered, switched):
    for templates, on in ((rendered["prod"].templates, True), (switched["prod-off"][0], False),
                          (rendered["dev"].templates, False), (switched["dev-on"][0], True)):
        for stack_id in (s for s in templates if s in ("ServerInit", "Servers") or s.startswith("AgentPool")):
            tags = node_group_tags(templates[stack_id])
            assert (NTH_MANAGED_TAG in tags) is on, stack_id
