"""Reading an environment file without trusting it: bounded size, UTF-8 only, no
duplicate keys, a budget on YAML alias expansion and on nesting depth.

A file is read only if it is a regular file, and at most ``MAX_BYTES + 1`` bytes
of it: ``/dev/zero``, a FIFO or a 50 MB file fail fast in bounded memory. Aliases
are counted as the values they expand to (``&a [*a, *a]`` nine levels deep is a
billion strings for whatever walks the result), before anything is built.
Every failure is a ``YamlRefusal`` with a one-line reason that never quotes the
file's content, which may not be an environment file at all.
"""

from __future__ import annotations

import codecs
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
    """Why a file cannot be read as an environment file (one line, no file content)."""


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
    _check_strings(document)
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


def _check_strings(document: Any) -> None:
    """Refuse control characters (other than newline and tab) in keys and values: written
    by a YAML escape such as "\\x1b" or "\\0", they have no place in a cluster setting."""
    stack = [(document, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and has_control(key):
                    raise YamlRefusal(f"{path or 'top level'}: a key contains a control character")
                stack.append((item, where))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{index}]") for index, item in enumerate(value))
        elif isinstance(value, str) and has_control(value):
            raise YamlRefusal(f"{path}: contains a control character (only newline and tab are allowed)")
