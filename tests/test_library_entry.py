"""The library entry point (README: Use as a library): build_templates' root points each
nested stack at the YAML file of that child as `write` names it beside the root, so the
templates can be saved side by side and linted or packaged as they are."""

from __future__ import annotations

from k3s_infra.config import load_environment
from k3s_infra.render import build_templates, render


def test_the_roots_nested_stacks_point_at_their_childrens_yaml_files():
    env = load_environment("dev")
    root = build_templates(env)["Root"].to_dict()
    urls = {lid: r["Properties"]["TemplateURL"] for lid, r in root["Resources"].items()
            if r["Type"] == "AWS::CloudFormation::Stack"}
    files = {c.stack_id: c.file for c in render(env, "yaml").children}
    assert urls == files
    assert all(name.endswith(".yaml") for name in files.values())
