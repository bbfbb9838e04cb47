"""Showing user text in messages: bounded, and never terminal control characters.

An error may quote a value from a file: a 50 MB string is cut with an ellipsis,
and escape sequences (``\\x1b[...``), carriage returns and bidirectional overrides
are shown escaped so a file cannot rewrite the user's terminal.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the Unicode bidirectional controls (Trojan Source, CVE-2021-42574).
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_NEWLINE = re.compile(_CONTROL.pattern[:-1] + "\n]")


def printable(text: str, limit: int = 300, keep_newlines: bool = True) -> str:
    """``text`` with control characters escaped as \\xNN / \\uNNNN, cut to ``limit`` characters."""
    if len(text) > limit:
        text = text[:limit] + "…"
    pattern = _CONTROL if keep_newlines else _CONTROL_OR_NEWLINE
    return pattern.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def shown(value: object, limit: int = 60) -> str:
    """A value quoted in a message: repr of at most ``limit`` characters of it."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"… ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= limit + 2 else text[:limit] + "…"


def has_control(text: str) -> bool:
    """True when ``text`` holds a control character other than newline and tab."""
    return any(c != "\t" for c in _CONTROL.findall(text))
