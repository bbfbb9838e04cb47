"""cfn-lint in-process (k3s_infra/render/lint.py): the wiring copy of the root lets cfn-lint see
a child parameter the root does not set. Every template of every environment linting clean is
tests/properties/test_cfn_lint_clean.py.
"""

from __future__ import annotations


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
