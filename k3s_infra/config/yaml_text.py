"""YAML text the way people read it: block style, key order kept, multi-line
strings (scripts, embedded YAML, user data) as literal blocks.

A small emitter for the plain data templates are made of (dict, list, str, int,
float, bool, None). It writes about five times faster than PyYAML's Python
representer, which dominated render time; a string is written plain only when
YAML would read it back as that same string, else double-quoted. tests/unit/config/test_yaml_text.py round-trips random data through
PyYAML's loader.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import yaml

# Characters YAML does not keep as they are: controls, line breaks of YAML 1.1
# (\x85, \u2028, \u2029), surrogates, the byte order mark and non-characters.
# (A small negated class: the positive one, with astral ranges, costs ~8 ms to compile.)
_BREAKS_AND_OTHERS = r"\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff"
_UNPRINTABLE = r"\x00-\x1f" + _BREAKS_AND_OTHERS
_PLAIN = re.compile(rf"(?![\s\-?:,\[\]{{}}#&*!|>'\"%@`])[^{_UNPRINTABLE}]+")
_LITERAL = re.compile(rf"[^\x00-\x08\x0b-\x1f{_BREAKS_AND_OTHERS}]*")  # tab and newline allowed
_RESOLVER = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"


@functools.lru_cache(maxsize=8192)  # templates repeat their keys and intrinsic names
def _plain_ok(value: str) -> bool:
    return (bool(_PLAIN.fullmatch(value)) and not value.endswith((" ", ":")) and ": " not in value
            and " #" not in value and _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG)


def _literal_ok(value: str) -> bool:
    trailing = len(value) - len(value.rstrip("\n"))
    return ("\n" in value.rstrip("\n") and trailing <= 1 and not value.startswith((" ", "\n")) and "\r" not in value
            and bool(_LITERAL.fullmatch(value))
            and not re.search(r"[ \t]$", value.rstrip("\n").split("\n")[-1]))


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}[repr(value)]
        text = repr(value)
        # YAML 1.1 floats need a dot: 1e+16 -> 1.0e+16
        return text.replace("e", ".0e", 1) if "e" in text and "." not in text else text
    if isinstance(value, str):
        return value if value and _plain_ok(value) else _quoted(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


_KEEP = re.compile(rf"[^{_UNPRINTABLE}]")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def _quoted(value: str) -> str:
    """A double-quoted scalar; YAML escapes name code points (\\U for astral ones)."""
    out = []
    for char in value:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif _KEEP.match(char):
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _literal(value: str, indent: str) -> str:
    """'|' keeps one final line break, '|-' none (the only two cases _literal_ok admits)."""
    chomp = "" if value.endswith("\n") else "-"
    lines = [f"{indent}{line}" if line else "" for line in value.removesuffix("\n").split("\n")]
    return f"|{chomp}\n" + "\n".join(lines)


def _emit(value: Any, indent: str, out: list[str]) -> None:
    """Append the block for a value that follows 'key:' or '- ' (its own line(s))."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            out.append(f"{indent}{_scalar(key)}:")
            _value(item, indent, out)
    elif isinstance(value, list) and value:
        for item in value:
            if isinstance(item, (dict, list)) and item:
                start = len(out)
                _emit(item, indent + "  ", out)
                out[start] = f"{indent}- " + out[start][len(indent) + 2:]
            else:
                out.append(f"{indent}-")
                _value(item, indent, out)
    else:
        out.append(indent + _inline(value))


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def _value(item: Any, indent: str, out: list[str]) -> None:
    """Finish the line just started ('key:' or '-') with an inline value, or open a block."""
    if isinstance(item, (dict, list)) and item:
        _emit(item, indent + "  ", out)
    elif isinstance(item, str) and "\n" in item and _literal_ok(item):
        out[-1] += " " + _literal(item, indent + "  ")
    else:
        out[-1] += " " + _inline(item)


def dump(data: Any) -> str:
    """Block-style YAML of ``data``; lines are never folded."""
    if not isinstance(data, (dict, list)) or not data:
        return _inline(data) + "\n"
    out: list[str] = []
    _emit(data, "", out)
    return "\n".join(out) + "\n"
