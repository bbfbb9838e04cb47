"""Everything the CLI writes: lines people read, aligned columns, JSON documents and
output files.

The JSON documents (``--output json``) are an interface (docs/commands.md "JSON output" lists their
shapes): keys are only ever added, never renamed or removed. Every document carries
``"kind"`` (the command) and ``"version"`` (of its shape), so a pipeline can check what
it parses. A command that fails prints the error document instead (kind "error", printed
by cli/__init__.py), so stdout always holds exactly one."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from k3s_infra.cli import UsageError
from k3s_infra.render import Rendering, write
from k3s_infra.render.safe_output import OutputError, check_output_file, write_file

SHAPE_VERSION = 1


def say(text: str = "", out: IO[str] | None = None) -> None:
    """One line for people, flushed at once (progress shows as it happens)."""
    print(text, file=out or sys.stdout, flush=True)


def aligned(rows: Iterable[tuple[str, ...]], indent: str = "  ") -> list[str]:
    rows = list(rows)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [(indent + "  ".join(v.ljust(w) for v, w in zip(row, widths))).rstrip() for row in rows]


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


def emit(text: str, out: str | None, looks_like: Callable[[str], bool], config: str | None = None) -> None:
    """Write a command's document to ``out`` (new, or a previous output of the command
    as judged by ``looks_like``; never the environment file), or to stdout."""
    if not out:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(out)
    try:
        check_output_file(path, looks_like, protected=(Path(config),) if config else ())
        write_file(path, text)
    except OutputError as exc:  # a refused path is the user's to change: exit 2
        raise UsageError(str(exc)) from None


def write_rendering(rendering: Rendering, out: Path, **options: Any) -> Path:
    """``k3s_infra.render.write``, a refused folder reported as a usage error (exit 2)."""
    try:
        return write(rendering, out, **options)
    except OutputError as exc:
        raise UsageError(str(exc)) from None


def check_private_file(out: Path, looks_like: Callable[[str], bool], source: str | None = None) -> None:
    """As ``emit`` checks its ``out`` (never the environment file ``source``), before any work:
    a usage error (exit 2) names why."""
    try:
        check_output_file(out, looks_like, protected=(Path(source),) if source else ())
    except OutputError as exc:
        raise UsageError(str(exc)) from None


def write_private(out: Path, text: str) -> None:
    """Write ``text`` to ``out`` readable by its owner only (0600), all at once and flushed
    to disk (a plan file: what deploy executes)."""
    write_file(out, text, mode=0o600, durable=True)
