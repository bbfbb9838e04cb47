"""``--output text|json`` for every command that has a machine-readable form.

The JSON documents are an interface (README "JSON output" lists their shapes): keys are
only ever added, never renamed or removed. Every document carries ``"kind"`` (the
command) and ``"version"`` (of its shape), so a pipeline can check what it parses."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

SHAPE_VERSION = 1


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", choices=("text", "json"), default="text",
                        help="text for people (default) or one JSON document on stdout for pipelines")


def wants_json(args: argparse.Namespace) -> bool:
    return getattr(args, "output", "text") == "json"


def document(kind: str, **fields: Any) -> dict[str, Any]:
    """The common envelope: {"kind": ..., "version": 1, ...fields}."""
    return {"kind": kind, "version": SHAPE_VERSION, **fields}


def print_json(obj: Any) -> None:
    """One JSON document on stdout (sorted keys, datetimes as ISO 8601 strings)."""
    json.dump(obj, sys.stdout, indent=2, sort_keys=True, default=_plain)
    sys.stdout.write("\n")
    sys.stdout.flush()


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
