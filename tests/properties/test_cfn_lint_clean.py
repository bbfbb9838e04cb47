"""Every template of every environment in environments/ passes cfn-lint: no errors, no warnings."""

from __future__ import annotations

import pytest

from k3s_infra.config import available_environments


@pytest.mark.parametrize("name", available_environments())
def test_templates_are_cfn_lint_clean(rendered, linter, name):
    r = rendered[name]
    findings = linter.lint_rendering(r.rendering, r.folder)
    assert findings == [], "\n".join(f"{f.file} {f.rule} {f.resource}: {f.message}" for f in findings)


def test_linter_reports_a_broken_parameter_wiring(rendered, linter, tmp_path):
    """The wiring copy of the root lets cfn-lint see a child parameter the root does not set."""
    import yaml

    r = rendered["dev"]
    child = tmp_path / "security.yaml"
    document = yaml.safe_load((r.folder / "security.yaml").read_text())
    document["Parameters"]["Unwired"] = {"Type": "String"}
    document["Outputs"]["Unwired"] = {"Value": {"Ref": "Unwired"}}
    child.write_text(yaml.safe_dump(document))
    root = yaml.safe_load((r.folder / "root.yaml").read_text())
    root["Resources"]["Security"]["Properties"]["TemplateURL"] = "security.yaml"
    (tmp_path / "root.yaml").write_text(yaml.safe_dump(root))
    findings = linter.lint_file(tmp_path / "root.yaml", r.env.region, ("W3002",))
    assert any("Unwired" in f.message for f in findings), findings


def test_wiring_copy_points_every_nested_stack_at_its_local_file(rendered):
    import yaml

    r = rendered["prod"]
    root = yaml.safe_load(r.rendering.root_with_local_urls())
    urls = {k: v["Properties"]["TemplateURL"] for k, v in root["Resources"].items()
            if v["Type"] == "AWS::CloudFormation::Stack"}
    assert urls == {c.stack_id: c.file for c in r.rendering.children}
