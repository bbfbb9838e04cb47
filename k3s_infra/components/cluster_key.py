"""The cluster's KMS key: encrypts the token and kubeconfig secrets, so reading
them needs both the secret permission and this one key."""

from __future__ import annotations

from dataclasses import dataclass

from awacs import kms
from awacs.aws import Allow, PolicyDocument, Principal, Statement
from troposphere import GetAtt, Ref, Sub
from troposphere.kms import Alias, Key

from k3s_infra.components.template import StackTemplate
from k3s_infra.model import naming


@dataclass(frozen=True)
class KeyRefs:
    arn: GetAtt
    id: Ref


# Days a deleted key waits before KMS deletes it (7-30), by retain: destroy's prompt says it.
PENDING_WINDOW_DAYS = {False: 7, True: 30}


def build(t: StackTemplate, cluster: str, retain: bool) -> KeyRefs:
    key = t.add(Key(
        "ClusterKey", Description=f"k3s-infra {cluster}: encrypts cluster secrets", EnableKeyRotation=True,
        PendingWindowInDays=PENDING_WINDOW_DAYS[retain],
        KeyPolicy=PolicyDocument(Version="2012-10-17", Statement=[
            # The standard key policy: the account's IAM decides who uses the key; node roles
            # get kms:Decrypt on this key only, through Secrets Manager.
            Statement(Sid="AccountAdministersKey", Effect=Allow,
                      Principal=Principal("AWS", Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")),
                      Action=[kms.Action("*")], Resource=["*"]),
        ])))
    t.set_retention(key, retain)
    # Kept with a kept key: the alias is how a person finds it again (the key's ID is generated),
    # and so the retained secrets stay readable by name (deploy/retained.py refuses a new CREATE
    # while the alias still holds the name).
    alias = t.add(Alias("ClusterKeyAlias", AliasName=naming.cluster_key_alias(cluster), TargetKeyId=Ref(key)))
    t.set_retention(alias, retain)
    return KeyRefs(arn=GetAtt(key, "Arn"), id=Ref(key))
