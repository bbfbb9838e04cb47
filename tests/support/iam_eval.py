"""A small IAM identity-policy evaluator: is a request allowed by a rendered role's policies?

Policies come in resolved (oracle_helpers.resolve); the evaluator applies IAM's documented
matching:

- Action: case-insensitive, ``*``/``?`` wildcards; Resource: case-sensitive ARN globs
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html,
  .../reference_policies_elements_resource.html).
- Condition: every operator block and every key in it must hold; a key's value list is an OR;
  keys are case-insensitive, values not; ``...IfExists`` holds when the key is absent,
  ``ForAnyValue:`` holds when any of the request's values matches and fails when there are none,
  ``ForAllValues:`` holds when every one of the request's values matches, and also when there
  are none; ``ArnEquals``/``ArnLike`` compare the six colon-separated parts of an ARN one by
  one, each with ``*``/``?`` wildcards
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
  .../reference_policies_condition-logic-multiple-context-keys-or-values.html).
- Policy variables (``${key}``, only in documents of Version 2012-10-17; elsewhere they are
  literal text): replaced from the request context in string and ARN condition values and in a
  Resource, where only the part after the ARN's fifth colon may hold one; ``${*}``, ``${?}``,
  ``${$}`` are the literal characters; a variable whose key the request lacks makes its
  statement match nothing
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).
- Allowed when an Allow statement matches and no Deny does
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).

Only what the node roles use is modelled; anything else raises, so a new construct cannot
slip through as "allowed" unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

VARIABLES_VERSION = "2012-10-17"
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_LITERALS = {"*": "*", "?": "?", "$": "$"}


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: dict[str, str | list[str]] = field(default_factory=dict)


class Unresolved(Exception):
    """A policy variable whose key the request does not carry."""


def _glob(pattern: str, text: str, case_sensitive: bool = True) -> bool:
    """IAM's wildcards: `*` any run of characters, `?` one character; nothing else is special.
    A `*`/`?` that came from ${*}/${?} is literal: it arrives here escaped as \\x00* / \\x00?."""
    regex, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\x00":
            regex, i = regex + re.escape(pattern[i + 1]), i + 2
            continue
        regex += ".*" if c == "*" else "." if c == "?" else re.escape(c)
        i += 1
    return re.fullmatch(regex, text, 0 if case_sensitive else re.IGNORECASE) is not None


def _values(value) -> list[str]:
    return value if isinstance(value, list) else [value]


def _lookup(context: dict[str, Any], key: str):
    return {k.lower(): v for k, v in context.items()}.get(key.lower())


def _substitute(text: str, context: dict[str, Any]) -> str:
    """Policy variables replaced from the request; ${*} ${?} ${$} stay literal characters."""
    def replace(match: re.Match) -> str:
        name = match[1]
        if name in _LITERALS:
            return "\x00" + _LITERALS[name]
        if "," in name:
            raise NotImplementedError(f"policy variable default values: {match[0]}")
        value = _lookup(context, name)
        if value is None or isinstance(value, list):  # absent, or multivalued: no single value
            raise Unresolved(name)
        # A request's value is matched as text, never as a wildcard (the stricter reading).
        return str(value).replace("*", "\x00*").replace("?", "\x00?")
    return _VARIABLE.sub(replace, text)


def _plain(text: str) -> str:
    return text.replace("\x00", "")


def _arn_matches(pattern: str, arn: str) -> bool:
    """ArnEquals / ArnLike: arn:partition:service:region:account:resource, part by part."""
    wanted, got = pattern.split(":", 5), arn.split(":", 5)
    return len(wanted) == len(got) == 6 and all(_glob(w, g) for w, g in zip(wanted, got))


def _string(operator: str, wanted: list[str], got: str) -> bool:
    if operator == "StringEquals":
        return got in [_plain(w) for w in wanted]
    if operator == "StringLike":
        return any(_glob(w, got) for w in wanted)
    if operator in ("ArnEquals", "ArnLike"):
        return any(_arn_matches(w, got) for w in wanted)
    raise NotImplementedError(f"condition operator {operator}")


def _condition_holds(operator: str, key: str, wanted: list[str], context: dict[str, Any]) -> bool:
    found = _lookup(context, key)
    if operator.startswith("ForAnyValue:"):
        return any(_string(operator.split(":", 1)[1], wanted, got) for got in _values(found or []))
    if operator.startswith("ForAllValues:"):
        return all(_string(operator.split(":", 1)[1], wanted, got) for got in _values(found or []))
    if operator.endswith("IfExists"):
        return found is None or _condition_holds(operator.removesuffix("IfExists"), key, wanted, context)
    return found is not None and not isinstance(found, list) and _string(operator, wanted, found)


def _resource(pattern: str, context: dict[str, Any], variables: bool) -> str:
    if not variables or "${" not in pattern:
        return pattern
    head = pattern.split(":", 5)
    if len(head) < 6 or any("${" in part for part in head[:5]):
        raise ValueError(f"a policy variable before the ARN's fifth colon is not allowed: {pattern}")
    return ":".join(head[:5] + [_substitute(head[5], context)])


def _matches(statement: dict, request: Request, variables: bool) -> bool:
    if "NotAction" in statement or "NotResource" in statement or "Principal" in statement:
        raise NotImplementedError("NotAction / NotResource / Principal")
    if not any(_glob(a, request.action, case_sensitive=False) for a in _values(statement["Action"])):
        return False
    context = request.context
    try:
        if not any(_glob(_resource(r, context, variables), request.resource) for r in _values(statement["Resource"])):
            return False
        return all(_condition_holds(operator, key, [_substitute(w, context) if variables else w
                                                    for w in _values(wanted)], context)
                   for operator, block in statement.get("Condition", {}).items() for key, wanted in block.items())
    except Unresolved:
        return False  # "any attempt to match it fails" (IAM User Guide, policy variables)


def allowed(documents: list[dict], request: Request) -> bool:
    statements = [(s, d.get("Version") == VARIABLES_VERSION) for d in documents for s in d["Statement"]]
    if any(s["Effect"] == "Deny" and _matches(s, request, v) for s, v in statements):
        return False
    return any(s["Effect"] == "Allow" and _matches(s, request, v) for s, v in statements)
