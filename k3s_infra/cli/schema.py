"""k3s-infra schema: the JSON Schema of environment files, for editors."""

from __future__ import annotations

import argparse

from k3s_infra.cli import emit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")


def run(args: argparse.Namespace) -> int:
    import json

    from k3s_infra.config import json_schema

    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    emit(text, args.out, lambda head: head.lstrip().startswith("{") and '"$defs"' in head)
    return 0
