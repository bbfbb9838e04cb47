"""IAM actions as data (k3s_infra/components/iam_actions.py): the actions allowed on Resource
"*" (no resource-level scoping exists, or the resource is created at run time) are only
reads or creates.
"""

from __future__ import annotations

from k3s_infra.components import iam_actions


def test_the_listed_unscoped_actions_are_only_reads_or_creates():
    for action in iam_actions.UNSCOPED:
        verb = action.split(":", 1)[1]
        assert verb.startswith(("Describe", "List", "Get", "Create", "AddTags")), action


def test_tags_at_creation_only_for_create_calls_the_controller_may_make():
    """Each CreateAction of CLOUD_CONTROLLER_TAG_ON_CREATE names a create call granted to the
    controller: on "*" (CLOUD_CONTROLLER_CREATE), or on its own load balancers (CreateListener).
    Which calls send tags is tests/unit/components/test_ccm_calls.py."""
    granted = {a.JSONrepr() for a in iam_actions.CLOUD_CONTROLLER_CREATE
               + iam_actions.CLOUD_CONTROLLER_ON_CLUSTER_RESOURCES}
    for action, creates in iam_actions.CLOUD_CONTROLLER_TAG_ON_CREATE.items():
        service = action.JSONrepr().split(":", 1)[0]
        assert creates and all(f"{service}:{create}" in granted for create in creates), action.JSONrepr()


def test_the_agent_channels_take_no_resource_but_star():
    """ssmmessages and ec2messages define no resource type (Service Authorization Reference,
    "Amazon Message Gateway Service", "Amazon Message Delivery Service"); read here from cfn-lint's
    copy of that reference (cfnlint/data/AdditionalSpecs/Policies.json), not from the code."""
    import json
    from importlib import resources

    policies = json.loads(resources.files("cfnlint.data.AdditionalSpecs").joinpath("Policies.json").read_text())
    assert iam_actions.AGENT_CHANNELS
    for action in iam_actions.AGENT_CHANNELS:
        service, verb = action.split(":")
        assert service in ("ssmmessages", "ec2messages")
        assert policies[service]["Actions"][verb.lower()].get("Resources", []) == [], action
