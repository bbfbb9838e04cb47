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
