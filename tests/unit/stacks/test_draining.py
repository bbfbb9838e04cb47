"""The draining stack (stacks/draining.py): the node termination handler's queue and rules exist
exactly when draining is on (default: when a pool runs on spot), only in that stack, and an
environment switched either way renders cfn-lint clean.
"""

from __future__ import annotations


DRAIN_TYPES = {"AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::Events::Rule"}


def resource_types(templates: dict[str, dict]) -> dict[str, set[str]]:
    return {stack_id: {r["Type"] for r in t["Resources"].values()} for stack_id, t in templates.items()}


def test_queue_and_rules_exist_only_in_the_draining_stack_and_only_when_on(rendered, switched):
    cases = {"dev": rendered["dev"].templates, "prod": rendered["prod"].templates,
             "dev-on": switched["dev-on"][0], "prod-off": switched["prod-off"][0]}
    for name, templates in cases.items():
        on = name in ("prod", "dev-on")
        types = resource_types(templates)
        assert ("Draining" in templates) is on, name
        assert ("Draining" in templates["Root"]["Resources"]) is on, name
        elsewhere = {s: t & DRAIN_TYPES for s, t in types.items() if s != "Draining" and t & DRAIN_TYPES}
        assert elsewhere == {}, name
        if on:
            assert types["Draining"] == DRAIN_TYPES, name


def test_draining_switched_either_way_is_cfn_lint_clean(switched, linter):
    for name, (_, rendering, folder) in switched.items():
        assert linter.lint_rendering(rendering, folder) == [], name
