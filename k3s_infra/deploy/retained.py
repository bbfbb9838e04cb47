"""Named data a protected environment keeps after 'destroy --allow-protected'
(DeletionPolicy RetainExceptOnCreate): the K3s token, agent-token and kubeconfig
secrets, the add-on secrets and the cluster key's alias. A new stack cannot create
those names again ("already exists"), so a first deploy looks for them BEFORE uploading
anything and tells the user what to do. The retained KMS key and snapshot bucket have
generated names and never collide."""

from __future__ import annotations

from botocore.exceptions import ClientError

from k3s_infra.model import addons
from k3s_infra.model import naming
from k3s_infra.deploy import Refused, stack_states


def secret_names(env) -> list[str]:
    return [naming.secret_name(env, what) for what in ("token", "agent-token", "kubeconfig")] + [
        naming.addon_secret_name(env, spec.addon, spec.value_key) for spec in addons.secret_specs(env)]


def existing(aws) -> list[tuple[str, bool]]:
    """(name, scheduled for deletion) of this environment's secret names that are taken."""
    found = []
    for name in secret_names(aws.env):
        try:
            described = aws.secretsmanager.describe_secret(SecretId=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                continue
            raise
        found.append((name, "DeletedDate" in described))
    return found


def existing_alias(aws) -> str | None:
    """The cluster key's alias, if a kept key still holds it (ListAliases: the alias names of
    the account and region, each with its TargetKeyId)."""
    alias = naming.cluster_key_alias(naming.cluster_name(aws.env))
    for page in aws.client("kms").get_paginator("list_aliases").paginate():
        if any(entry.get("AliasName") == alias for entry in page.get("Aliases", [])):
            return alias
    return None


def check_first_deploy(aws, root: dict | None) -> None:
    """Refuse a CREATE whose secret names are still taken by retained (or deleting) secrets."""
    if not stack_states.creates(root):
        return
    taken = existing(aws)
    alias = existing_alias(aws)
    if not taken and alias is None:
        return
    lines = [f"{aws.env.stack_name}: data kept from an earlier deployment still holds the names this stack "
             f"creates, so its CREATE would fail ('already exists'):"]
    lines += [f"  {name}" + ("  (scheduled for deletion)" if deleting else "") for name, deleting in taken]
    if alias:
        lines.append(f"  {alias}  (KMS alias of the kept cluster key)")
    lines.append("to start a NEW cluster: delete them (aws secretsmanager delete-secret --secret-id NAME "
                 "--force-delete-without-recovery; aws kms delete-alias --alias-name NAME), or deploy under "
                 "another deploy.stack_name, which names new ones. Keep the secrets (and the old token) if you "
                 "mean to restore the old cluster's etcd snapshots: K3s needs the same token to read them")
    raise Refused("\n".join(lines))
