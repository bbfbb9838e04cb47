"""Every template of every environment in environments/, and of the test environment with every
add-on on, passes cfn-lint: no errors, no warnings.
"""

from __future__ import annotations

import pytest

from k3s_infra.config import available_environments
from k3s_infra.config.catalog import CATALOG
from k3s_infra.model import addons


@pytest.mark.parametrize("name", available_environments())
def test_templates_are_cfn_lint_clean(rendered, linter, name):
    r = rendered[name]
    findings = linter.lint_rendering(r.rendering, r.folder)
    assert findings == [], "\n".join(f"{f.file} {f.rule} {f.resource}: {f.message}" for f in findings)


def test_every_addon_renders_cfn_lint_clean(everything, linter):
    env, rendering, folder, _ = everything
    assert set(addons.enabled(env)) == set(CATALOG)
    assert linter.lint_rendering(rendering, folder) == []
