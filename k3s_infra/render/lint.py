"""cfn-lint on rendered templates, in-process, with one rule set per process.

Loading cfn-lint's rules is the slow part (about 0.5 s), so a ``Linter`` loads
them once and validates every template with them. The root is linted a second
time as a copy whose TemplateURLs point at the local child files, so cfn-lint
checks Parameters and ``Outputs.X`` across the nested stacks.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from k3s_infra.render import Rendering

# W3002 ("only works with the package command") is about the local TemplateURLs
# of the wiring copy, which exists only for linting.
WIRING_COPY_IGNORES = ("W3002",)


@dataclass(frozen=True)
class Finding:
    file: str
    rule: str
    severity: str
    resource: str
    message: str
    line: int


class Linter:
    def __init__(self) -> None:
        # cfn-lint is the optional `lint` extra and costs ~1 s to import: only `lint` pays for it.
        from cfnlint.config import ConfigMixIn
        from cfnlint.runner import Runner

        self._rules = Runner(ConfigMixIn(regions=["us-east-1"])).rules

    def lint_file(self, path: Path, region: str, ignore: tuple[str, ...] = ()) -> list[Finding]:
        from cfnlint.config import ConfigMixIn  # optional extra, as in __init__
        from cfnlint.runner.template.runner import run_template_by_file_path

        config = ConfigMixIn(regions=[region], ignore_checks=list(ignore))
        matches = run_template_by_file_path(str(path), config, self._rules, ignore_bad_template=False)
        return [_finding(path, m) for m in matches]

    def lint_rendering(self, rendering: Rendering, folder: Path) -> list[Finding]:
        """Lint templates already written to ``folder`` plus the root's wiring copy."""
        region = rendering.env.region
        findings = []
        for stack in rendering.stacks:
            findings += self.lint_file(folder / stack.file, region)
        with tempfile.TemporaryDirectory(prefix="k3s-infra-lint-") as scratch:
            for stack in rendering.children:
                (Path(scratch) / stack.file).write_text(stack.body, encoding="utf-8")
            wiring_root = Path(scratch) / rendering.root.file
            wiring_root.write_text(rendering.root_with_local_urls(), encoding="utf-8")
            for finding in self.lint_file(wiring_root, region, WIRING_COPY_IGNORES):
                findings.append(Finding(f"{rendering.root.file} (nested-stack wiring)", finding.rule,
                                        finding.severity, finding.resource, finding.message, finding.line))
        return findings


def _finding(path: Path, match) -> Finding:
    resource = ""
    path_parts = getattr(match, "path", None) or []
    if len(path_parts) >= 2 and path_parts[0] in ("Resources", "Outputs", "Parameters", "Mappings", "Conditions"):
        resource = f"{path_parts[0]}.{path_parts[1]}"
    return Finding(file=path.name, rule=match.rule.id, severity=match.rule.severity, resource=resource,
                   message=match.message, line=match.linenumber)
