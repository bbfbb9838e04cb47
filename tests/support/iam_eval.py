"""A small IAM identity-policy evaluator: is a request allowed by a rendered role's policies?

Policies come in resolved (oracle_helpers.resolve); the evaluator applies IAM's documented
matching:

- Action: case-insensitive, ``*``/``?`` wildcards; Resource: case-sensitive ARN globs
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html,
  .../reference_policies_elements_resource.html).
- Condition: every operator block and every key in it must hold; a key's value list is an OR;
  keys are case-insensitive, values not; ``...IfExists`` holds when the key is absent,
  ``ForAnyValue:`` holds when any of the request's values matches and fails when there are none
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html,
  .../reference_policies_condition-logic-multiple-context-keys-or-values.html).
- Allowed when an Allow statement matches and no Deny does
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).

Only what the node roles use is modelled; anything else raises, so a new construct cannot
slip through as "allowed" unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: dict[str, str | list[str]] = field(default_factory=dict)


def _glob(pattern: str, text: str, case_sensitive: bool = True) -> bool:
    """IAM's wildcards: `*` any run of characters, `?` one character; nothing else is special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, 0 if case_sensitive else re.IGNORECASE) is not None


def _values(value) -> list[str]:
    return value if isinstance(value, list) else [value]


def _string(operator: str, wanted: list[str], got: str) -> bool:
    if operator == "StringEquals":
        return got in wanted
    if operator == "StringLike":
        return any(_glob(w, got) for w in wanted)
    raise NotImplementedError(f"condition operator {operator}")


def _condition_holds(operator: str, key: str, wanted: list[str], context: dict[str, Any]) -> bool:
    found = {k.lower(): v for k, v in context.items()}.get(key.lower())
    if operator.startswith("ForAnyValue:"):
        return any(_string(operator.split(":", 1)[1], wanted, got) for got in _values(found or []))
    if operator.endswith("IfExists"):
        return found is None or _condition_holds(operator.removesuffix("IfExists"), key, wanted, context)
    return found is not None and _string(operator, wanted, found)


def _matches(statement: dict, request: Request) -> bool:
    if "NotAction" in statement or "NotResource" in statement or "Principal" in statement:
        raise NotImplementedError("NotAction / NotResource / Principal")
    if not any(_glob(a, request.action, case_sensitive=False) for a in _values(statement["Action"])):
        return False
    if not any(_glob(r, request.resource) for r in _values(statement["Resource"])):
        return False
    return all(_condition_holds(operator, key, _values(wanted), request.context)
               for operator, block in statement.get("Condition", {}).items() for key, wanted in block.items())


def allowed(documents: list[dict], request: Request) -> bool:
    statements = [s for d in documents for s in d["Statement"]]
    if any(s["Effect"] == "Deny" and _matches(s, request) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _matches(s, request) for s in statements)
