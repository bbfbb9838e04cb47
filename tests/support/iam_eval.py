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
- Role trust policies (``trusted``) for ``sts:AssumeRoleWithWebIdentity``: a statement names
  a ``Principal`` and no ``Resource``; a ``Federated`` principal matches only the exact ARN of
  the IAM OIDC provider that vouched for the token (no wildcards in a principal:
  .../reference_policies_elements_principal.html). ``web_identity`` builds that request the
  way STS does (IAM User Guide, "OIDC federation", "Create an OpenID Connect (OIDC) identity
  provider in IAM"; API reference, AssumeRoleWithWebIdentity): the provider is the one whose
  URL is the token's ``iss``, the token's ``aud`` must be one of its client IDs, else STS
  refuses before any policy is read; the context keys are the provider URL without
  ``https://`` followed by ``:sub`` and ``:aud``, holding the token's claims (IAM User Guide,
  "IAM and AWS STS condition context keys", "Available keys for AWS OIDC federation").
  Tokens with an ``azp`` claim (whose ``aud`` key then holds ``azp``) are not modelled.

Only what the project's roles use is modelled; anything else raises, so a new construct
cannot slip through as "allowed" unchecked.
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
    principal: tuple[str, str] | None = None  # (type, id), e.g. ("Federated", <provider ARN>): trust only


@dataclass(frozen=True)
class OidcProvider:
    """An IAM OIDC provider: its ARN, its URL (https://host[/path]) and its client IDs."""
    arn: str
    url: str
    client_ids: tuple[str, ...]


@dataclass(frozen=True)
class WebIdentityToken:
    """The claims of an OIDC token that STS reads (its signature is assumed valid here)."""
    iss: str
    sub: str
    aud: str
    azp: str | None = None


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


def action_matches(pattern: str, action: str) -> bool:
    """An Action element's entry against an action name (case-insensitive, `*`/`?`)."""
    return _glob(pattern, action, case_sensitive=False)


def _principal_matches(principal, request: Request) -> bool:
    """"*" is everyone; else {type: id or [ids]}, each id compared exactly."""
    if principal == "*":
        return True
    if request.principal is None:
        return False
    kind, wanted = request.principal
    return any(wanted == given for given in _values(principal.get(kind, [])))


def _matches(statement: dict, request: Request, variables: bool, trust: bool = False) -> bool:
    if "NotAction" in statement or "NotResource" in statement or "NotPrincipal" in statement:
        raise NotImplementedError("NotAction / NotResource / NotPrincipal")
    if trust != ("Principal" in statement) or (trust and "Resource" in statement):
        raise NotImplementedError("a trust policy statement names a Principal and no Resource; "
                                  "an identity policy statement the opposite")
    if not any(action_matches(a, request.action) for a in _values(statement["Action"])):
        return False
    context = request.context
    try:
        if trust:
            if not _principal_matches(statement["Principal"], request):
                return False
        elif not any(_glob(_resource(r, context, variables), request.resource) for r in _values(statement["Resource"])):
            return False
        return all(_condition_holds(operator, key, [_substitute(w, context) if variables else w
                                                    for w in _values(wanted)], context)
                   for operator, block in statement.get("Condition", {}).items() for key, wanted in block.items())
    except Unresolved:
        return False  # "any attempt to match it fails" (IAM User Guide, policy variables)


def _decide(documents: list[dict], request: Request, trust: bool) -> bool:
    statements = [(s, d.get("Version") == VARIABLES_VERSION) for d in documents for s in _values(d["Statement"])]
    if any(s["Effect"] == "Deny" and _matches(s, request, v, trust) for s, v in statements):
        return False
    return any(s["Effect"] == "Allow" and _matches(s, request, v, trust) for s, v in statements)


def allowed(documents: list[dict], request: Request) -> bool:
    """Identity policies: does any Allow match the request, and no Deny?"""
    return _decide(documents, request, trust=False)


def trusted(trust_policy: dict, request: Request) -> bool:
    """A role's trust policy (its AssumeRolePolicyDocument): may this principal assume it?"""
    return _decide([trust_policy], request, trust=True)


WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"


def web_identity(token: WebIdentityToken, providers: list[OidcProvider], role_arn: str) -> Request | None:
    """The request STS evaluates a role's trust policy with for this token, or None when STS
    refuses the token before reading any policy: no IAM OIDC provider in the account for its
    issuer, or its audience is not one of that provider's client IDs."""
    if token.azp is not None:
        raise NotImplementedError("tokens with an azp claim (the aud key then holds azp)")
    matching = [p for p in providers if p.url.rstrip("/") == token.iss.rstrip("/")]
    if not matching or token.aud not in matching[0].client_ids:
        return None
    (provider,) = matching
    prefix = provider.url.removeprefix("https://").rstrip("/")
    return Request(WEB_IDENTITY, role_arn, {f"{prefix}:sub": token.sub, f"{prefix}:aud": token.aud},
                   principal=("Federated", provider.arn))
