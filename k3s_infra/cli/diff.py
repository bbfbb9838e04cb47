"""k3s-infra diff: rendered templates against the deployed ones, per resource, read-only
(no upload, no change set: it runs under a read-only role)."""

from __future__ import annotations

import argparse
from typing import Any

from k3s_infra.cli import EXIT_CHANGES, EXIT_OK
from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli.output import document, print_json, wants_json
from k3s_infra.deploy.aws import Aws
from k3s_infra.deploy.diff import diff
from k3s_infra.render import render


def run(args: argparse.Namespace) -> int:
    def action(aws: Aws) -> int:
        aws.check_account()
        result = diff(aws, render(aws.env))
        if wants_json(args):
            print_json(document("diff", **result))
        else:
            print(format_text(result))
        return EXIT_CHANGES if args.detailed_exitcode and result["has_changes"] else EXIT_OK

    return cli_aws.run(args, action)


def format_text(result: dict[str, Any]) -> str:
    if not result["deployed"]:
        return f"{result['stack_name']}: not deployed: all {len(result['stacks'])} stacks would be created"
    if not result["has_changes"]:
        return f"{result['stack_name']}: no differences between the rendered and the deployed templates"
    lines = []
    for stack in result["stacks"]:
        if stack["state"] == "unchanged":
            continue
        lines.append(f"{stack['stack']}: {stack['state']}")
        res, par = stack["resources"], stack["parameters"]
        lines += [f"  + {r['logical_id']} ({r['type']})" for r in res["added"]]
        lines += [f"  - {r['logical_id']} ({r['type']})" for r in res["removed"]]
        lines += [f"  ~ {r['logical_id']} ({r['type']}): {', '.join(r['paths'])}" for r in res["changed"]]
        lines += [f"  + parameter {p}" for p in par["added"]] + [f"  - parameter {p}" for p in par["removed"]]
        for p in par["changed"]:
            detail = f"{p['deployed']!r} -> {p['rendered']!r}" if p["what"] == "value" else ", ".join(p["paths"])
            lines.append(f"  ~ parameter {p['name']}: {detail}")
        lines += [f"  ~ section {s}" for s in stack["other_sections"]]
    changed = sum(s["state"] != "unchanged" for s in result["stacks"])
    lines.append(f"{result['stack_name']}: {changed} of {len(result['stacks'])} stacks differ")
    return "\n".join(lines)
