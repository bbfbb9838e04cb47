"""Text from and about user input: names spelled as identifiers, and values shown in
messages bounded and without terminal control characters.

An error may quote a value from a file: a 50 MB string is cut with an ellipsis,
and escape sequences (``\\x1b[...``), carriage returns and bidirectional overrides
are shown escaped so a file cannot rewrite the user's terminal.
"""

from __future__ import annotations

import re

from k3s_infra.config.secret_shapes import HIDDEN, value_kind

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
    """A value quoted in a message: repr of at most ``limit`` characters of it; a value shaped
    like a credential (secret_shapes.value_kind, judged whole, before any cut) is never quoted."""
    if isinstance(value, str) and value_kind(value):
        return HIDDEN
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"… ({len(value):,} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3 * limit:
        # repr of an int past sys.get_int_max_str_digits() raises; no one reads 1,000 digits anyway
        return f"an integer of about {int(value.bit_length() * 0.30103):,} digits"
    text = repr(value)
    return text if len(text) <= limit + 2 else text[:limit] + "…"


def has_control(text: str) -> bool:
    """True when ``text`` holds a control character other than newline and tab."""
    return any(c != "\t" for c in _CONTROL.findall(text))


def camel(text: str) -> str:
    """'spot-workers' -> 'SpotWorkers' (logical IDs are built from it, see model.naming)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part)


def kebab(text: str) -> str:
    """'AgentPoolSpotWorkers' -> 'agent-pool-spot-workers'; 'bootstrapPassword' -> 'bootstrap-password'."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", text).lower()
