"""Lines people read while a command runs: flushed at once (progress), columns aligned."""

from __future__ import annotations

from typing import IO


def say(out: IO[str], text: str = "") -> None:
    print(text, file=out, flush=True)


def aligned(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [(indent + "  ".join(v.ljust(w) for v, w in zip(row, widths))).rstrip() for row in rows]
