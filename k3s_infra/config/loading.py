"""Reading an environment file: its ``extends`` chain merged, validated into an
``Environment``, every failure one ``ConfigError`` naming file, field path and problem.

A child's mappings merge key by key with its parent's; the child wins everywhere else
(see ``_merge``).
"""

from __future__ import annotations

import re
from itertools import groupby
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from k3s_infra.config import secret_shapes, suggest, yaml_load
from k3s_infra.config.errors import ConfigError
from k3s_infra.config.model import Environment
from k3s_infra.config.text import shown as shown_value
from k3s_infra.config.types import HINTS


# Called at import: mutmut must not trampoline it (its forced-fail check would break conftest imports).
def _shipped_environments() -> Path:  # pragma: no mutate block
    """The example environments, defaults.yaml and schema.json: inside the package when
    installed from a wheel (setup.cfg maps environments/ to k3s_infra/environments), the
    repository's environments/ in a clone or an editable install."""
    package = Path(__file__).resolve().parents[1]  # k3s_infra/
    packaged = package / "environments"
    return packaged if packaged.is_dir() else package.parent / "environments"


ENVIRONMENTS_DIR = _shipped_environments()
# Files in one extends chain, the environment file included: an environment, its shared
# defaults and a team's layer in between need three. Deeper is a mistake, and bounding it
# keeps a chain of 1,000 files from exhausting Python's recursion.
MAX_EXTENDS = 10


def _merge(parent: Any, child: Any) -> Any:
    """Mappings merge key by key; for anything else (lists included) the child wins."""
    if isinstance(parent, dict) and isinstance(child, dict):
        merged = dict(parent)
        for key, value in child.items():
            merged[key] = _merge(parent[key], value) if key in parent else value
        return merged
    return child


def _read_yaml(path: Path, shown: str) -> dict[str, Any]:
    try:
        document = yaml_load.load(yaml_load.read_text(path))
    except yaml_load.YamlRefusal as exc:
        raise ConfigError(shown, [(exc.path, str(exc))]) from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(shown, [("", f"must be a mapping of settings, got {type(document).__name__}")])
    if document and not (document.keys() & (set(Environment.model_fields) | {"extends"})):
        # Not an environment file (a wrong path, or extends: pointing elsewhere): say so
        # without listing its keys, which would print the file's content.
        raise ConfigError(shown, [("", "is not an environment file: none of its top-level keys is a setting")])
    return document


@dataclass
class Document:
    """A merged environment document and, per top-level key path, the file that set it."""

    data: dict[str, Any]
    origins: dict[tuple[str, ...], str]

    def origin(self, location: tuple[Any, ...]) -> str | None:
        """The file that set the value at ``location`` (the deepest key path it set)."""
        keys = _keys(location)
        for end in range(len(keys), 0, -1):
            if keys[:end] in self.origins:
                return self.origins[keys[:end]]
        return None

    def exact(self, location: tuple[Any, ...]) -> str | None:
        """The file that set exactly ``location`` (up to a list, set whole), or None when
        the value is a default or derived."""
        return self.origins.get(_keys(location))


def _keys(location: tuple[Any, ...]) -> tuple[str, ...]:
    """The key path of a location up to its first list index ('agent_pools[web]' included:
    a list is set whole by one file)."""
    keys: list[str] = []
    for part in location:
        if not isinstance(part, str):
            break
        name, bracket, _ = part.partition("[")
        keys.append(name)
        if bracket:
            break
    return tuple(keys)


def _origins(document: Any, source: str, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    found: dict[tuple[str, ...], str] = {}
    if isinstance(document, dict):
        for key, value in document.items():
            found[prefix + (str(key),)] = source
            found |= _origins(value, source, prefix + (str(key),))
    return found


def read_document(path: str | Path, shown: str | None = None) -> dict[str, Any]:
    """An environment file with its ``extends`` chain merged, before validation; problems
    name the file ``shown`` (default: ``path``), e.g. the file a temporary copy becomes."""
    return _load_chain(Path(path), shown or str(path)).data


def _load_chain(path: Path, shown: str, seen: tuple[Path, ...] = ()) -> Document:
    document = _read_yaml(path, shown)
    parent_name = document.pop("extends", None)
    if parent_name is None:
        return Document(document, _origins(document, shown))
    if len(seen) + 1 >= MAX_EXTENDS:
        raise ConfigError(shown, [("extends", f"the extends chain is more than {MAX_EXTENDS} files deep; "
                                              "an environment needs its file and a shared parent or two")])
    parent = _find_parent(path, parent_name, shown)
    if parent in seen or parent == path.resolve():
        raise ConfigError(shown, [("extends", f"circular: {parent_name} extends back to this file")])
    base = _load_chain(parent, str(parent), seen + (path.resolve(),))
    # The child's keys override the parent's (mappings merge, so deeper keys keep their file).
    return Document(_merge(base.data, document), base.origins | _origins(document, shown))


def _find_parent(path: Path, parent_name: Any, shown: str) -> Path:
    """A parent beside the file first; then the shared files of ./environments and of this
    project, so a copied environment file (e.g. with other VPC IDs) still finds defaults.yaml.
    Only a plain ``.yaml`` file name in one of those folders: an absolute path or ``..``
    would let an environment read (and errors quote) any file on the machine."""
    if not isinstance(parent_name, str) or not parent_name:
        raise ConfigError(shown, [("extends", "must be the file name of a parent environment file")])
    if Path(parent_name).name != parent_name or parent_name in (".", "..") or "\\" in parent_name \
            or not parent_name.endswith((".yaml", ".yml")):
        raise ConfigError(shown, [("extends", f"{shown_value(parent_name)}: must be a .yaml file name in the "
                                              "same folder or an environments folder, without a path")])
    for folder in (path.resolve().parent, Path.cwd() / "environments", ENVIRONMENTS_DIR):
        candidate = (folder / parent_name).resolve()
        if candidate.parent == folder.resolve() and candidate.is_file():
            return candidate
    raise ConfigError(shown, [("extends", f"parent file {shown_value(parent_name)} not found beside this file, in "
                                          f"./environments/ or in {ENVIRONMENTS_DIR}")])


def _field_path(location: tuple[Any, ...], document: Any) -> str:
    """Turn a pydantic location into a dotted path using pool names where they exist."""
    parts: list[str] = []
    node = document
    for item in location:
        if isinstance(item, int):
            name = node[item].get("name") if isinstance(node, list) and item < len(node) and \
                isinstance(node[item], dict) else None
            parts[-1:] = [f"{parts[-1]}[{name if isinstance(name, str) else item}]"] if parts else [f"[{item}]"]
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)


def _message(error: dict[str, Any], location: tuple[Any, ...]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        known = suggest.known_keys(Environment, location[:-1]) + (["extends"] if len(location) == 1 else [])
        match = suggest.closest(str(location[-1]), known)
        return f"unknown key; did you mean {match}?" if match else "unknown key"
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch":
        pattern = error["ctx"]["pattern"]
        return f"{shown_value(error['input'])} is not valid: expected {HINTS.get(pattern, 'pattern ' + pattern)}"
    message = error["msg"].removeprefix("Value error, ")
    if kind.endswith("_type") or kind in ("literal_error", "enum"):
        value = error.get("input")
        message += f" (got {type(value).__name__} {shown_value(value)})" if not isinstance(value, (dict, list)) \
            else f" (got a {type(value).__name__})"
    return message


def validate(document: dict[str, Any], source: str, origins: Document | None = None) -> Environment:
    """Validate a merged document; ``origins`` names the file each problem comes from."""
    try:
        return Environment.model_validate(document)
    except ValidationError as exc:
        problems = []
        files = set()
        for error in exc.errors(include_url=False):
            # Drop the union/choice tags pydantic adds (e.g. 'str', 'literal[...]', 'function-after').
            location = tuple(p for p in error["loc"] if isinstance(p, int) or not _is_tag(p))
            path = _field_path(location, document)
            message = _without_secret(_message(error, location), error.get("input"))
            # Rules across fields say which field they are about: "subnets: need ...".
            about = re.match(r"^([a-z_][^\s:]*): (.+)$", message, re.S)
            if error["type"] == "value_error" and about:
                field, message = about.groups()
                location = location + tuple(field.split("."))
                path = field if field.startswith(path + ".") or not path else f"{path}.{field}"
            origin, message = _blame(origins, location, path, message, source)
            files.add(origin)
            problems.append((path, message, origin))
        if len(files) == 1:  # all from one file (a parent's mistake is blamed on the parent)
            raise ConfigError(files.pop(), [(path, message) for path, message, _ in problems]) from None
        raise ConfigError(source, [(path, message if origin == source else f"{message} (set in {origin})")
                                   for path, message, origin in problems]) from None


def _without_secret(message: str, value: Any) -> str:
    """``message`` without any piece (8 characters or more) of ``value`` when the value is shaped
    like a credential: a rule that quotes part of it ('step 'K7MDENG/bPxRfiCY'', a label cut to
    70 characters) leaves nothing ConfigError's redaction could still recognise."""
    if not isinstance(value, str) or not secret_shapes.value_kind(value):
        return message
    grams = {value[i:i + 8] for i in range(min(len(value), 100_000) - 7)}
    hidden = [False] * len(message)
    for i in range(len(message) - 7):
        if message[i:i + 8] in grams:
            hidden[i:i + 8] = [True] * 8
    runs = groupby(zip(message, hidden), key=lambda pair: pair[1])
    return "".join(secret_shapes.HIDDEN if hide else "".join(c for c, _ in run) for hide, run in runs)


# A field named inside a message ("overlaps network.vpc_cidr 10.0.0.0/16").
_MENTIONED = re.compile(r"\b(?:" + "|".join(sorted(Environment.model_fields, key=len, reverse=True))
                        + r")(?:\.[a-z_]+)+")


def _blame(origins: Document | None, location: tuple[Any, ...], path: str, message: str,
           source: str) -> tuple[str, str]:
    """The file a problem is blamed on, and its message naming the files of the other fields
    it mentions: a rule across fields (k3s.cluster_cidr overlaps network.vpc_cidr) is blamed
    on the file that set the field it is about, or, when that field is a default, on the file
    that set the other one."""
    if origins is None:
        return source, message
    others = {}
    for mentioned in _MENTIONED.findall(message):
        keys = tuple(mentioned.split("."))
        if not path.startswith(mentioned) and origins.origin(keys):
            others[mentioned] = origins.origin(keys)
    origin = origins.exact(location)
    if origin is None:
        origin = next(iter(others.values()), None) or origins.origin(location) or source
    elsewhere = [f"{field} is set in {file}" for field, file in others.items() if file != origin]
    return origin, message + (f" ({'; '.join(elsewhere)})" if elsewhere else "")


def _is_tag(part: str) -> bool:
    return part.startswith(("function-", "literal[", "constrained-")) or part in {"str", "int", "bool", "list", "dict", "none", "[key]"}


def environments_folder() -> Path:
    """Where ``--env NAME`` looks: ./environments when there is one (your own project),
    else the environments shipped beside this package."""
    local = Path.cwd() / "environments"
    return local if local.is_dir() else ENVIRONMENTS_DIR


def load_environment(env: str | None = None, *, path: str | Path | None = None,
                     environments_dir: Path | None = None, overrides: dict[str, Any] | None = None) -> Environment:
    """Load ``environments/<env>.yaml`` (or an explicit ``path``) into an Environment;
    ``overrides`` (top-level keys, e.g. the CLI's --region) replace the file's values."""
    if path is None:
        if env is None:
            raise ValueError("give an environment name or a path")
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", env):
            # A name, not a path: --env ../../etc/x must not read outside the environments folder.
            raise ConfigError(f"--env {shown_value(env)}", [("", "an environment name is letters, digits, "
                                                                 "'-', '_' and '.', without a path")])
        folders = environment_folders() if environments_dir is None else [environments_dir]
        path = environment_file(env, folders)
        if path is None:
            raise _unknown_environment(env, folders)
    document = _load_chain(Path(path), str(path))
    return validate({**document.data, **(overrides or {})}, str(path), document)


def environment_folders() -> list[Path]:
    """Where ``--env NAME`` looks, in order: ./environments (your own project), then the
    examples shipped with the package (once, when they are the same folder: a clone)."""
    local = Path.cwd() / "environments"
    if local.is_dir() and local.resolve() != ENVIRONMENTS_DIR.resolve():
        return [local, ENVIRONMENTS_DIR]
    return [ENVIRONMENTS_DIR]


def environment_file(env: str, folders: list[Path] | None = None) -> Path | None:
    """The file ``--env NAME`` reads (the first folder that has it), or None."""
    return next((f / f"{env}.yaml" for f in folders or environment_folders() if (f / f"{env}.yaml").is_file()), None)


def environment_names() -> list[str]:
    """Every name ``--env`` accepts, from every folder it looks in (shell completion)."""
    return sorted({name for folder in environment_folders() for name in available_environments(folder)})


def _unknown_environment(env: str, folders: list[Path]) -> ConfigError:
    """'unknown environment', the closest name, and the names of each folder: yours and the
    shipped examples, so an example is found even from a project with its own environments/."""
    found = {folder: available_environments(folder) for folder in folders}
    names = [name for listed in found.values() for name in listed]
    if len(folders) == 1:
        listed = ", ".join(names) or "none"
    else:
        where = {folders[0]: "in ./environments", ENVIRONMENTS_DIR: "shipped with k3s-infra"}
        listed = "; ".join(f"{', '.join(found[f]) or 'none'} {where.get(f, f'in {f}')}" for f in folders)
    match = suggest.closest(env, names)
    return ConfigError("--env", [("", f"unknown environment {shown_value(env)}"
                                      f"{f' (did you mean {match}?)' if match else ''}; environments: {listed}")])


def available_environments(environments_dir: Path | None = None) -> list[str]:
    """Environment files that are complete environments (not bare shared defaults)."""
    return sorted(p.stem for p in (environments_dir or environments_folder()).glob("*.yaml") if not p.stem.startswith("_")
                  and p.stem != "defaults")


def json_schema() -> dict[str, Any]:
    schema = Environment.model_json_schema()
    schema["properties"]["extends"] = {"type": "string", "description": "Parent file to inherit from."}
    return schema
