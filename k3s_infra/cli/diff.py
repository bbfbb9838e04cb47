"""k3s-infra diff: rendered templates against the deployed ones, per resource, read-only
(no upload, no change set: it runs under a read-only role)."""

from __future__ import annotations

import argparse

from k3s_infra.cli import add_environment_arguments
from k3s_infra.cli.output import add_output_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    add_output_argument(parser)
    parser.add_argument("--detailed-exitcode", action="store_true",
                        help="exit 0 when nothing differs, 2 when something does, 1 on error")


def run(args: argparse.Namespace) -> int:
    from k3s_infra.cli.output import document, print_json, wants_json
    from k3s_infra.deploy import command
    from k3s_infra.deploy.diff import diff, format_text
    from k3s_infra.render import render

    def action(aws) -> int:
        aws.check_account()
        result = diff(aws, render(aws.env))
        if wants_json(args):
            print_json(document("diff", **result))
        else:
            print(format_text(result))
        return 2 if args.detailed_exitcode and result["has_changes"] else 0

    return command.run(args, action)
