"""IAM roles for Kubernetes service accounts (``workload_roles:``), validated.

A pod running as ``service_account`` gets the role's credentials through the cluster's OIDC
issuer (stacks/identity.py) and the pod identity webhook; nothing else can assume it. The
subject is always one exact service account: IAM matches ``StringEquals`` literally, and a
wildcard here would hand the role to every service account it matches.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import Field, field_validator

from k3s_infra.config import rules, secret_scan
from k3s_infra.config.types import Strict, shape

# Kubernetes object names (https://kubernetes.io/docs/concepts/overview/working-with-objects/names/):
# a namespace is an RFC 1123 label (<= 63), a service account an RFC 1123 subdomain (<= 253).
# The patterns stay simple (pydantic compiles them at import); _kubernetes_names checks the rest.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _kubernetes_names(value: str) -> str:
    namespace, name = value.split("/", 1)
    if len(namespace) > 63 or not _LABEL.fullmatch(namespace):
        raise ValueError(f"namespace {namespace!r} is not a Kubernetes namespace name (RFC 1123 label, <= 63)")
    if len(name) > 253 or not all(len(part) <= 63 and _LABEL.fullmatch(part) for part in name.split(".")):
        raise ValueError(f"{name!r} is not a Kubernetes service account name (RFC 1123 subdomain, <= 253)")
    return value


ServiceAccountRef = shape(r"^[a-z0-9][-a-z0-9]*/[a-z0-9][-a-z0-9.]*$",
                          "<namespace>/<service account name>, lowercase, e.g. payments/api", _kubernetes_names,
                          scanned=True, max_length=317)
ManagedPolicyArn = shape(r"^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/[A-Za-z0-9+=,.@_/-]{1,512}$",
                         "a managed policy ARN like arn:aws:iam::123456789012:policy/payments-api", scanned=True)
# "The prefix and the action name are case insensitive. For example, iam:ListAccessKeys is the
# same as IAM:listaccesskeys." (IAM User Guide, "IAM JSON policy elements: Action").
ActionName = shape(r"^[A-Za-z0-9-]+:[A-Za-z0-9*?]+$", "an IAM action like s3:GetObject")
StatementId = shape(r"^[A-Za-z0-9]{1,100}$", "letters and digits")

# IAM quotas (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html):
# 10 managed policies per role by default, inline policies of a role 10,240 characters in all.
MAX_MANAGED_POLICIES = 10
MAX_INLINE_CHARACTERS = 10_240
MAX_ROLES = 50
# IAM and STS actions an inline statement may name: reads only. Any other (or a wildcard that
# could match one: IAM matches `*` and `?` anywhere in the name) could let a workload pass,
# assume, create or rewrite roles and so become more than its role. A guardrail on what the
# environment file says, not a boundary: policy_arns are not inspected. Judged ignoring case, as
# IAM matches actions (see ActionName): iam:getrole is iam:GetRole. A read is a name that starts
# with Get or List before any wildcard, so every action it matches does too (iam:Get*Role,
# iam:List*); iam:*, iam:?etRole or iam:G* could match a write and are refused.
_IDENTITY_SERVICES = ("iam", "sts")
_READ = re.compile(r"(get|list)[a-z0-9*?]*", re.IGNORECASE)


def _escalates(action: str) -> bool:
    service, _, name = action.partition(":")
    return service.lower() in _IDENTITY_SERVICES and not _READ.fullmatch(name)


class PolicyStatement(Strict):
    """One statement of the role's inline policy, in IAM's own JSON shape. Only Allow/Deny with
    explicit Action and Resource: NotAction/NotResource/Principal are refused (unknown keys)."""

    Sid: StatementId | None = None
    Effect: Literal["Allow", "Deny"]
    Action: ActionName | list[ActionName] = Field(min_length=1)
    Resource: str | list[str] = Field(min_length=1)
    Condition: dict[str, dict[str, str | list[str]]] | None = None

    @field_validator("Action")
    @classmethod
    def _not_escalating(cls, value: str | list[str]) -> str | list[str]:
        for action in [value] if isinstance(value, str) else value:
            if _escalates(action):
                raise ValueError(f"{action}: IAM and STS actions other than Get*/List* reads could let the "
                                 "workload take other roles; grant them through policy_arns after review")
        return value

    @field_validator("Condition")
    @classmethod
    def _data_keys(cls, value: dict | None) -> dict | None:
        # The statement is written into the template as a JSON object (stacks/identity.py):
        # a key CloudFormation reads as a function would turn the condition into one.
        for operator, keys in (value or {}).items():
            for key in (operator, *keys):
                reason = rules.template_key(key)
                if reason:
                    raise ValueError(f"{reason}; write IAM condition operators and keys here")
        return value

    @field_validator("Resource")
    @classmethod
    def _arns(cls, value: str | list[str]) -> str | list[str]:
        for resource in [value] if isinstance(value, str) else value:
            if resource != "*" and not resource.startswith("arn:"):
                raise ValueError(f"{resource!r}: a resource is an ARN (or '*')")
        return value

    def document(self) -> dict:
        return self.model_dump(exclude_none=True)


class WorkloadRole(Strict):
    """An IAM role for exactly one Kubernetes service account."""

    service_account: ServiceAccountRef = Field(description="namespace/name of the one service account trusted")
    policy_arns: list[ManagedPolicyArn] = Field(default_factory=list, max_length=MAX_MANAGED_POLICIES,
                                                description="Managed policies, in the cluster's account or AWS's")
    statements: list[PolicyStatement] = Field(default_factory=list, max_length=50,
                                              description="Inline policy statements (IAM JSON shape)")

    @field_validator("service_account", mode="before")
    @classmethod
    def _no_wildcard(cls, value: object) -> object:
        if isinstance(value, str) and any(c in value for c in "*?"):
            raise ValueError("wildcards are refused: a role trusts one exact service account")
        return value

    @field_validator("statements")
    @classmethod
    def _inline_size(cls, statements: list[PolicyStatement]) -> list[PolicyStatement]:
        size = len(json.dumps(inline_policy(statements), separators=(",", ":")))
        if size > MAX_INLINE_CHARACTERS:
            raise ValueError(f"the inline policy would be {size:,} characters; IAM allows "
                             f"{MAX_INLINE_CHARACTERS:,} per role (use policy_arns)")
        # Keys here are IAM's own (secretsmanager:SecretId is a condition key, not a secret): judged
        # by shape only, so an access key or token pasted into a condition is still refused.
        for path, reason in secret_scan.scan([s.document() for s in statements], by_name=False):
            raise ValueError(f"{path}: {reason}")
        return statements


def inline_policy(statements: list[PolicyStatement]) -> dict:
    return {"Version": "2012-10-17", "Statement": [s.document() for s in statements]}


def check_workload_roles(roles: list[WorkloadRole], partition: str, account_id: str,
                         reserved: dict[str, str]) -> None:
    """What needs the environment: one entry per service account, ARNs in this cluster's
    partition and account (or AWS managed), none for a service account k3s-infra gives a role
    itself (``reserved``: service account -> what uses it)."""
    seen: set[str] = set()
    for index, role in enumerate(roles):
        where = f"workload_roles[{index}]"
        if role.service_account in seen:
            raise ValueError(f"{where}.service_account: {role.service_account} is listed twice; "
                             "one role per service account")
        seen.add(role.service_account)
        if role.service_account in reserved:
            raise ValueError(f"{where}.service_account: {role.service_account} is "
                             f"{reserved[role.service_account]}'s, which k3s-infra gives its own role")
        if not role.policy_arns and not role.statements:
            raise ValueError(f"{where}: give policy_arns or statements (a role without either can do nothing)")
        for arn in role.policy_arns:
            _, arn_partition, _, _, owner = arn.split(":", 5)[:5]
            if arn_partition != partition or owner not in (account_id, "aws"):
                raise ValueError(f"{where}.policy_arns: {arn} is not in the cluster's partition {partition} "
                                 f"and account {account_id} (or AWS managed)")
        for s_index, statement in enumerate(role.statements):
            for resource in [statement.Resource] if isinstance(statement.Resource, str) else statement.Resource:
                if resource != "*" and resource.split(":")[1:2] != [partition]:
                    raise ValueError(f"{where}.statements[{s_index}].Resource: {resource} is not in the "
                                     f"cluster's partition {partition}")
