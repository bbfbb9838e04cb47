"""The library entry point (docs/architecture.md: Use as a library): build_templates' root points each
nested stack at the YAML file of that child as `write` names it beside the root, so the
templates can be saved side by side and linted or packaged as they are."""

from __future__ import annotations

import hashlib
import json
import re

from tests.support.oracle_helpers import DEPLOYABLE, plain_document

from k3s_infra.config import load_environment
from k3s_infra.render import build_templates, render, write


def test_the_roots_nested_stacks_point_at_their_childrens_yaml_files():
    env = load_environment("dev")
    root = build_templates(env)["Root"].to_dict()
    urls = {lid: r["Properties"]["TemplateURL"] for lid, r in root["Resources"].items()
            if r["Type"] == "AWS::CloudFormation::Stack"}
    files = {c.stack_id: c.file for c in render(env, "yaml").children}
    assert urls == files
    assert all(name.endswith(".yaml") for name in files.values())


def test_the_written_manifest_has_the_documented_shape_and_the_files_digests(tmp_path):
    # docs/commands.md "JSON output" (render): {"environment", "stack_name", "region", "artifact_bucket",
    # "root", "children": [{"stack", "file", "key", "sha256"}]}; keys are only ever added.
    document = plain_document(next(p for p in DEPLOYABLE if p.stem == "dev"))
    env = load_environment("dev")
    folder = write(render(env, "yaml"), tmp_path / "build")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {"environment", "stack_name", "region", "artifact_bucket", "root", "children"} <= set(manifest)
    assert (manifest["environment"], manifest["region"]) == ("dev", document["region"])
    assert manifest["stack_name"] == env.stack_name and manifest["artifact_bucket"] == env.artifact_bucket
    assert (folder / manifest["root"]).is_file() and manifest["children"]
    for child in manifest["children"]:
        assert {"stack", "file", "key", "sha256"} <= set(child)
        digest = hashlib.sha256((folder / child["file"]).read_bytes()).hexdigest()
        assert child["sha256"] == digest
        # Content-addressed: the key's folder is a prefix of the file's digest (>= 16 hex digits).
        (folder_name,) = [part for part in child["key"].split("/") if re.fullmatch(r"[0-9a-f]{16,64}", part)]
        assert digest.startswith(folder_name)


def test_the_roots_local_copy_points_at_the_files_beside_it():
    # For cross-stack linting the root's content-addressed URLs become the child files' names.
    rendering = render(load_environment("dev"), "yaml")
    local = rendering.root_with_local_urls()
    for child in rendering.children:
        assert f"TemplateURL: {child.file}" in local and child.key not in local


def test_write_creates_missing_parent_folders_by_default(tmp_path):
    # docs/architecture.md (Use as a library): write(rendering, "build/dev") in a fresh clone, where build/ is absent.
    folder = write(render(load_environment("dev"), "yaml"), tmp_path / "build" / "dev")
    assert (folder / "manifest.json").is_file()
