"""Rendering (k3s_infra/render/__init__.py): deterministic, child TemplateURLs content-addressed
(hashed here from the bytes on disk, not taken from the renderer's own digest), on the
regional S3 endpoint, and the wiring copy of the root pointing every nested stack at its
local file for cfn-lint.
"""

from __future__ import annotations

import hashlib

from k3s_infra.config import load_environment
from k3s_infra.render import render

from tests.support.oracle_helpers import ALL_ADDONS


def test_template_urls_are_content_addressed(r):
    # Hashed here from the bytes on disk, not taken from the renderer's own digest.
    for stack in r.resources("Root", "AWS::CloudFormation::Stack").values():
        url = stack["Properties"]["TemplateURL"]
        digest = hashlib.sha256((r.folder / url.rsplit("/", 1)[1]).read_bytes()).hexdigest()
        assert f"/{digest[:20]}" in url


def test_rendering_is_deterministic_with_addons():
    env = load_environment(path=ALL_ADDONS)
    first, second = render(env), render(env)
    assert [s.body for s in first.stacks] == [s.body for s in second.stacks]


def test_wiring_copy_points_every_nested_stack_at_its_local_file(rendered):
    import yaml

    r = rendered["prod"]
    root = yaml.safe_load(r.rendering.root_with_local_urls())
    urls = {k: v["Properties"]["TemplateURL"] for k, v in root["Resources"].items()
            if v["Type"] == "AWS::CloudFormation::Stack"}
    assert urls == {c.stack_id: c.file for c in r.rendering.children}
