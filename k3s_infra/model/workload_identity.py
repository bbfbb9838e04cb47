"""Who gets an IAM role through the cluster's OIDC issuer: the enabled add-ons that call AWS
(each on its own service account) and the environment's ``workload_roles``.

A role trusts exactly one service account (``sub`` = system:serviceaccount:<ns>:<name>) and
the audience the webhook projects for STS. Role names and ARNs are known at render time
(naming.workload_role_arn), so a chart's service account annotation and a person's
ServiceAccount manifest can name the role before the stack exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from k3s_infra.config import Environment
from k3s_infra.config.catalog import CATALOG
from k3s_infra.config.workload_roles import PolicyStatement
from k3s_infra.model import addons, naming
from k3s_infra.model.addons import ROLE_ARN_ANNOTATION


@dataclass(frozen=True)
class WorkloadIdentity:
    service_account: str  # namespace/name
    purpose: str
    addon: str | None = None  # the add-on whose controller runs as it, None for a user's role
    policy_arns: tuple[str, ...] = ()
    statements: tuple[PolicyStatement, ...] = ()

    @property
    def subject(self) -> str:
        namespace, name = self.service_account.split("/", 1)
        return f"system:serviceaccount:{namespace}:{name}"

    @property
    def logical_id(self) -> str:
        return naming.workload_role_id(self.service_account)


def identities(env: Environment) -> list[WorkloadIdentity]:
    """Controllers first (catalog order), then the environment's roles in file order."""
    found = [WorkloadIdentity(CATALOG[name].service_account, CATALOG[name].description, addon=name)
             for name in addons.enabled(env) if CATALOG[name].service_account]
    found += [WorkloadIdentity(role.service_account, f"workload role of {role.service_account}",
                               policy_arns=tuple(role.policy_arns), statements=tuple(role.statements))
              for role in env.workload_roles]
    return found


def annotations(env: Environment, service_account: str) -> dict[str, str]:
    """What a service account needs for the webhook to give its pods the role."""
    return {ROLE_ARN_ANNOTATION: naming.workload_role_arn(env, service_account)}
