"""Finding secrets in configuration before they reach user data, templates or tags.

Add-on values travel in the servers' user data (gzip+base64 is not encryption): anyone
who can describe the launch template reads them. Tags, node labels, stack names and URLs
are readable by anyone who can list the resources. So a secret in any of them is
refused; ``addons.<name>.secret_values`` names a Secrets Manager secret instead.

``scan(values)`` returns every finding as ``Finding(path, reason)`` (a named tuple, so
``for path, reason in scan(values)`` works) and never raises: the config refuses on the
first finding today; a lint may report them all as warnings. ``value_kind(text)`` judges
one string field. The shapes themselves are in ``secret_shapes``; a reason never quotes
the value.

What counts (each class has a case in tests/unit/config/test_secret_scan*.py):
- a plain value, a number, a list or a map under a key that names a secret (``password``,
  ``apiToken``, ``dbPass``, ``pwd``, ``bearer``, ``webhookUrl``, ``sasl.jaas.config``),
  the key read through Unicode look-alikes and invisible characters;
- a key spelled across levels (``aws: {secret: {access: {key: ...}}}``);
- Kubernetes env entries ``{name: API_TOKEN, value: ...}`` and argument lists
  ``[--password, ...]``;
- a value shaped like a secret under any key (``secret_shapes.value_kind``).
Left alone: references to secrets (``existingSecret: grafana-admin``, ``passwordKey``,
``tokenSecretName``, ``${DB_PASSWORD}``), switches and sizes (``createSecret: true``,
``tokenTTL: 3600``), image tags, digests, public certificates, URLs without credentials.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from k3s_infra.config.secret_shapes import (
    FLAG,
    REFERENCE,
    REFERENCE_VALUE,
    STRONG,
    WEAK,
    key_kind,
    key_words,
    value_kind,
)

__all__ = ["Finding", "findings", "key_kind", "scan", "secret_key", "secret_value", "value_kind"]


class Finding(NamedTuple):
    path: str  # dotted path below the scanned value: 'env.DB_PASSWORD', 'args[3]' ('': the value itself)
    reason: str  # what it looks like, never the value


def scan(values: Any, path: str = "", *, by_name: bool = True) -> list[Finding]:
    """Every secret-looking entry in ``values`` (chart values, a tag map, a list), in order.
    ``by_name=False`` judges keys and values by their shape only, not by what a key is
    called: tags and node labels, whose keys ('auth', 'secret-level') are descriptions."""
    found: list[Finding] = []
    if by_name:
        _walk(values, path, (), None, found)
    else:
        _shapes(values, path, found)
    return found


def _shapes(value: Any, path: str, found: list[Finding]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            kind = value_kind(key) if isinstance(key, str) else None
            if kind:
                found.append(Finding(path, f"a key looks like {kind}"))
            else:
                _shapes(item, _join(path, key), found)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _shapes(item, f"{path}[{index}]", found)
    elif isinstance(value, str) and value_kind(value):
        found.append(Finding(path, f"the value looks like {value_kind(value)}"))


def findings(values: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """``scan`` as an iterator of (path, reason) pairs: the interface callers used before."""
    yield from scan(values, path)


def secret_key(key: str) -> bool:
    """Whether ``key`` names a secret (strongly or as a plain value)."""
    return key_kind(key) not in (None, REFERENCE)


def secret_value(text: str) -> str | None:
    """What kind of secret ``text`` looks like, or None."""
    return value_kind(text)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _plain(value: Any) -> bool:
    """A value that can hold a secret: text that is not a reference, or a number."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip()) and not REFERENCE_VALUE.match(value)
    return isinstance(value, (int, float))


def _split_key(keys: tuple[str, ...]) -> str | None:
    """A secret name spelled over the last few keys: aws.secret.access.key -> 'access.key'."""
    for size in range(2, min(len(keys), 4) + 1):
        tail = keys[-size:]
        if key_kind("".join(w.capitalize() for k in tail for w in key_words(k))) == STRONG:
            return ".".join(tail)
    return None


def _walk(value: Any, path: str, keys: tuple[str, ...], under: str | None, found: list[Finding]) -> None:
    """``under``: the key above that names a secret: every plain value below is one."""
    if isinstance(value, dict):
        _mapping(value, path, keys, under, found)
    elif isinstance(value, (list, tuple)):
        _sequence(value, path, keys, under, found)
    elif isinstance(value, str) and under is None:
        kind = value_kind(value)
        if kind:
            found.append(Finding(path, f"the value looks like {kind}"))
    elif under is not None and _plain(value):
        found.append(Finding(path, f"it is under {under}, which looks like a secret"))


def _mapping(mapping: dict, path: str, keys: tuple[str, ...], under: str | None, found: list[Finding]) -> None:
    names_a_secret = any(str(k).lower().endswith(("secretname", "existingsecret")) for k in mapping)
    for key, item in mapping.items():
        where, name = _join(path, key), str(key)
        kind = value_kind(name) if isinstance(key, str) else None
        if kind:  # the key itself is key material
            found.append(Finding(path, f"a key looks like {kind}"))
            continue
        kind = key_kind(name)
        if kind == STRONG and names_a_secret and name.lower().endswith("key"):
            kind = REFERENCE  # {secretName: db, secretKey: password}: the key within a Secret
        trail = keys + (name,)
        # A name spelled over levels ends in a bare word: {access: {key: ...}}, {secret: {id: ...}}.
        split = _split_key(trail) if kind is None or "".join(key_words(name)) in ("key", "id") else None
        if kind == REFERENCE and not split:
            if isinstance(item, (dict, list)):
                _walk(item, where, trail, None, found)
            elif isinstance(item, str) and value_kind(item):
                found.append(Finding(where, f"the value looks like {value_kind(item)}"))
            continue
        if kind is not None or split:
            if not isinstance(item, (dict, list)):
                if _plain(item):
                    found.append(Finding(where, f"{split or name} looks like a secret"))
                continue
            _walk(item, where, trail, (split or name) if kind != WEAK else under, found)
            continue
        _walk(item, where, trail, under, found)


def _sequence(items: list | tuple, path: str, keys: tuple[str, ...], under: str | None,
              found: list[Finding]) -> None:
    flag: str | None = None
    for index, item in enumerate(items):
        where = f"{path}[{index}]"
        if flag is not None and _plain(item) and not (isinstance(item, str) and item.startswith("-")):
            found.append(Finding(where, f"the argument after {flag} looks like a secret"))
            flag = None
            continue
        flag = item if isinstance(item, str) and FLAG.match(item) else None
        if isinstance(item, dict) and under is None and _env_entry(item):
            name = item.get("name", item.get("key"))
            found.append(Finding(f"{where}.value", f"environment variable {name} looks like a secret"))
            continue
        _walk(item, where, keys, under, found)


def _env_entry(item: dict) -> bool:
    """Kubernetes env entries ({name: API_TOKEN, value: ...}) and key/value pairs."""
    name = item.get("name", item.get("key"))
    return isinstance(name, str) and "value" in item and _plain(item["value"]) and key_kind(name) not in (None, REFERENCE)


def refuse_credentials(mapping: Any, why: str) -> Any:
    """``mapping`` unchanged, or ValueError at its first credential-shaped entry (judged by shape,
    not key name: tag and label keys are descriptions), saying ``why`` it must not be there."""
    for path, reason in scan(mapping, by_name=False) if isinstance(mapping, dict) else ():
        raise ValueError(f"{path + ': ' if path else ''}{reason}; {why}")
    return mapping
