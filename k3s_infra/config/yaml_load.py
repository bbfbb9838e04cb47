"""Reading an environment file without trusting it: bounded size, UTF-8 only, no
duplicate keys, a budget on YAML alias expansion and on nesting depth.

A file is read only if it is a regular file, and at most ``MAX_BYTES + 1`` bytes
of it: ``/dev/zero``, a FIFO or a 50 MB file fail fast in bounded memory. Aliases
are counted as the values they expand to (``&a [*a, *a]`` nine levels deep is a
billion strings for whatever walks the result), before anything is built.
Every failure is a ``YamlRefusal`` with a one-line reason that never quotes the
file's content, which may not be an environment file at all.

Typed values are read the way the cluster's own tools read them, or refused by field:
- A timestamp (``2024-01-05``, ``2024-13-45``) stays the text as written: YAML 1.2 has no
  timestamp type, and Helm reads values through go-yaml, which keeps a timestamp decoded
  into ``interface{}`` as its string (gopkg.in/yaml.v2 decode.go, ``d.scalar``: "for
  backward compatibility reasons we set it as a string"). So ``date: 2024-01-05`` in
  add-on values is written as the string "2024-01-05", as Helm would read it.
- A base-60 number (``1:30``) stays text too: go-yaml has no sexagesimal numbers.
- A scalar its tag cannot build (``!!bool maybe``, ``!!int abc``, ``!!timestamp x``, an
  integer of more digits than Python converts) is refused naming its field and line.
- Values JSON cannot carry (``!!set``, ``!!binary``, ``!!omap``/``!!pairs``, ``.inf``,
  ``.nan``, integers beyond 64 bits) are refused naming the field: Helm values, tags and
  templates are JSON.
"""

from __future__ import annotations

import codecs
import math
import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from k3s_infra.config.text import has_control

MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000  # values after alias expansion; prod.yaml has a few hundred
MAX_DEPTH = 32


class YamlRefusal(Exception):
    """Why a file cannot be read as an environment file (one line, no file content);
    ``path`` is the field it concerns, when there is one."""

    def __init__(self, message: str, path: str = ""):
        super().__init__(message)
        self.path = path


class _Unreadable:
    """A scalar its tag could not build: refused with its field path once the document is
    built (the constructor does not know the path)."""

    __slots__ = ("line", "reason")

    def __init__(self, reason: str, line: int):
        self.reason, self.line = reason, line


# libyaml's parser where PyYAML has it; the safe constructors either way.
_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc,valid-type]
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        # YAML 1.2 says mapping keys are unique; PyYAML keeps the last one silently.
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                raise YamlRefusal(f"line {key_node.start_mark.line + 1}: a mapping key must be a "
                                  "plain value") from None
            if duplicate:
                raise YamlRefusal(f"line {key_node.start_mark.line + 1}, column {key_node.start_mark.column + 1}: "
                                  f"duplicate key {str(key)[:60]!r} (YAML keys are unique)")
        return super().construct_mapping(node, deep=deep)


_BAD_SCALAR = (ArithmeticError, LookupError, ValueError, TypeError, AttributeError)
_DESCRIBED = {"bool": "a boolean (true or false)", "int": "an integer", "float": "a number",
              "timestamp": "a timestamp", "binary": "base64 data"}


def _scalar(tag: str, build: Any) -> Any:
    def construct(loader: _Loader, node: ScalarNode) -> Any:
        value = node.value if isinstance(node.value, str) else ""
        if tag in ("int", "float") and ":" in value:
            return value  # base 60 in YAML 1.1 only; go-yaml (Helm) reads text
        if tag == "timestamp":
            if not yaml.constructor.SafeConstructor.timestamp_regexp.match(value):
                return _Unreadable(f"{value[:40]!r} is not {_DESCRIBED[tag]}", node.start_mark.line + 1)
            return value
        try:
            return build(loader, node)
        except _BAD_SCALAR as exc:
            if tag == "int" and "digits" in str(exc):
                return _Unreadable(f"an integer of {len(value):,} digits is not a setting",
                                   node.start_mark.line + 1)
            return _Unreadable(f"{value[:40]!r} is not {_DESCRIBED[tag]} (tag !!{tag})", node.start_mark.line + 1)
    return construct


for _tag in ("bool", "int", "float", "timestamp", "binary"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}",
                            _scalar(_tag, yaml.constructor.SafeConstructor.yaml_constructors[f"tag:yaml.org,2002:{_tag}"]))


def read_text(path: Path) -> str:
    """The file's text: a regular file of at most MAX_BYTES, UTF-8 (a BOM is tolerated)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise YamlRefusal(f"cannot read file: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise YamlRefusal("is a folder, not an environment file")
    if not stat.S_ISREG(mode):
        raise YamlRefusal("is not a regular file (a device, FIFO or socket)")
    try:
        # O_NONBLOCK: should the path have become a FIFO since stat, open does not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise YamlRefusal(f"cannot read file: {exc.strerror}") from None
    if len(data) > MAX_BYTES:
        raise YamlRefusal(f"is larger than {MAX_BYTES // 1024} KiB; an environment file is a few KiB")
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise YamlRefusal("is UTF-32 encoded; save it as UTF-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise YamlRefusal("is UTF-16 encoded; save it as UTF-8")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise YamlRefusal(f"is not UTF-8 text (invalid byte at offset {exc.start}); save it as UTF-8") from None
    if "\x00" in text:
        raise YamlRefusal("contains NUL bytes: not a text file")
    return text


def load(text: str) -> Any:
    """The YAML document in ``text``, within the alias and depth budgets."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node)
        document = loader.construct_document(node)
    except RecursionError:
        raise YamlRefusal(f"nesting is deeper than {MAX_DEPTH} levels") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise YamlRefusal(f"invalid YAML: {where}{exc.problem or 'cannot parse'}") from None
    except yaml.reader.ReaderError as exc:
        raise YamlRefusal(f"contains a control character (character {exc.position + 1}); "
                          "only newline and tab are allowed") from None
    except yaml.YAMLError:
        raise YamlRefusal("invalid YAML") from None
    finally:
        loader.dispose()
    _check_values(document)
    return document


def _check_size(root: Node) -> None:
    """Count values as if every alias were copied, and the depth, without copying."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded values, depth)
    active: set[int] = set()

    def walk(node: Node, level: int) -> tuple[int, int]:
        if level > MAX_DEPTH:
            raise YamlRefusal(f"nesting is deeper than {MAX_DEPTH} levels")
        known = sizes.get(id(node))
        if known is not None:
            if level + known[1] > MAX_DEPTH:
                raise YamlRefusal(f"nesting is deeper than {MAX_DEPTH} levels")
            return known
        if id(node) in active:
            raise YamlRefusal("an alias refers to the value that contains it (recursive YAML)")
        if isinstance(node, ScalarNode):
            return 1, 0
        active.add(id(node))
        children = [n for pair in node.value for n in pair] if isinstance(node, MappingNode) else \
            node.value if isinstance(node, SequenceNode) else []
        count, depth = 1, 0
        for child in children:
            child_count, child_depth = walk(child, level + 1)
            count += child_count
            depth = max(depth, child_depth + 1)
            if count > MAX_NODES:
                raise YamlRefusal(f"expands to more than {MAX_NODES:,} values (YAML aliases); "
                                  "an environment file needs a few hundred")
        active.discard(id(node))
        sizes[id(node)] = (count, depth)
        return count, depth

    walk(root, 0)


INT64 = 2 ** 63


def _problem(value: Any) -> str | None:
    """Why ``value`` cannot be a setting (JSON, as Helm, tags and templates read it), or None."""
    if isinstance(value, _Unreadable):
        return f"{value.reason} (line {value.line})"
    if isinstance(value, str):
        return "contains a control character (only newline and tab are allowed)" if has_control(value) else None
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    if isinstance(value, int):
        return None if -INT64 <= value < INT64 else "an integer beyond 64 bits is not a setting"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a number JSON can carry (no .inf or .nan)"
    kinds = {bytes: "binary data (!!binary)", set: "a set (!!set)", tuple: "an ordered map or pairs (!!omap, !!pairs)"}
    return f"{kinds.get(type(value), type(value).__name__)} is not a setting; write a list, a mapping or text"


def first_problem(document: Any) -> tuple[str, str] | None:
    """(field path, reason) of the first value in ``document`` no setting can be: a control
    character (written by a YAML escape such as "\\x1b" or "\\0"), an unreadable tagged
    scalar, a value JSON cannot carry; keys are held to the same rules. None when all is well."""
    stack: list[tuple[Any, str]] = [(document, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            entries = []
            for key, item in value.items():
                if isinstance(key, str) and has_control(key):
                    return path, "a key contains a control character"
                problem = None if isinstance(key, str) else _problem(key)
                if problem or isinstance(key, (dict, list)):
                    return path, f"a key is {problem or 'not a plain value'}"
                entries.append((item, f"{path}.{key}" if path else str(key)))
            stack.extend(reversed(entries))
        elif isinstance(value, list):
            stack.extend(reversed([(item, f"{path}[{index}]") for index, item in enumerate(value)]))
        else:
            problem = _problem(value)
            if problem:
                return path, problem
    return None


def _check_values(document: Any) -> None:
    found = first_problem(document)
    if found:
        path, problem = found
        raise YamlRefusal(problem, path or "top level")
