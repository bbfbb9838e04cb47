"""'Did you mean ...?' for a mistyped key or environment name: the closest known one.

difflib's ratio with its default cutoff (0.6) suggests ``version`` for ``versoin`` and ``prod``
for ``prodd``, and nothing for a word that resembles none (a credential pasted as a key among
them: the suggestion is always one of ours, never the user's text)."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel


def closest(word: str, known: Iterable[str]) -> str | None:
    """The one of ``known`` closest to ``word``, or None when none is close."""
    found = difflib.get_close_matches(word, sorted(set(known)), n=1)
    return found[0] if found else None


def known_keys(model: type[BaseModel], location: tuple[Any, ...]) -> list[str]:
    """The keys the section at ``location`` (a validation error's path up to the unknown key)
    accepts: the fields of the model found by following the path through the annotations."""
    annotation: Any = model
    for part in location:
        fields = _fields(annotation)
        if isinstance(part, str) and part in fields:
            annotation = fields[part]
        else:  # a list index or a mapping's key: the items'
            annotation = _items(annotation)
    return sorted(_fields(annotation))


def _fields(annotation: Any) -> dict[str, Any]:
    """Field name -> annotation of every model in ``annotation`` (a model, or a union holding some)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {name: field.annotation for name, field in annotation.model_fields.items()}
    found: dict[str, Any] = {}
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found |= _fields(arg)
    return found


def _items(annotation: Any) -> Any:
    """The item type of a list or the value type of a mapping in ``annotation`` (unions searched)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, tuple, set, frozenset) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    for arg in args if origin in (typing.Union, types.UnionType, typing.Annotated) else ():
        if (found := _items(arg)) is not None:
            return found
    return None
