"""Cluster data stack: K3s tokens, kubeconfig slot and the etcd snapshot bucket.
Retained on delete in protected environments. The cluster-state marker is not
here: the first server creates it (an SSM parameter resource would be rewritten
by every stack update)."""

from __future__ import annotations

from k3s_infra.components import addon_secrets, cluster_key, secrets, snapshot_bucket
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import Environment
from k3s_infra.model import naming
from k3s_infra.model import outputs as o


def build(env: Environment) -> StackTemplate:
    t = StackTemplate(f"k3s-infra {env.name}: cluster tokens and etcd snapshot bucket",
                      naming.cluster_tags(env))
    key = cluster_key.build(t, naming.cluster_name(env), retain=env.protected)
    refs = secrets.build(t, env, key.arn, retain=env.protected)
    bucket = snapshot_bucket.build(t, env.k3s.etcd_snapshots, retain=env.protected)
    t.output(o.TOKEN_SECRET, refs.token, "K3s server token secret")
    t.output(o.AGENT_TOKEN_SECRET, refs.agent_token, "K3s agent token secret")
    t.output(o.KUBECONFIG_SECRET, refs.kubeconfig, "Admin kubeconfig secret")
    t.output(o.SNAPSHOT_BUCKET, bucket.name, "etcd snapshot bucket")
    t.output(o.CLUSTER_KEY, key.arn, "KMS key of the cluster secrets")
    for name, secret in addon_secrets.build(t, env, key.arn, retain=env.protected).items():
        t.output(name, secret, "Add-on secret, read by the servers at boot")
    return t
