"""k3s-infra schema: the JSON Schema of environment files, for editors."""

from __future__ import annotations

import argparse
import json

from k3s_infra.cli.output import emit
from k3s_infra.config import json_schema


def run(args: argparse.Namespace) -> int:
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    emit(text, args.out, lambda head: head.lstrip().startswith("{") and '"$defs"' in head)
    return 0
