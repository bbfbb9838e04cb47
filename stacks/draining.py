"""Draining stack: the node termination handler's SQS queue and EventBridge
rules. Present only when draining is on (``Environment.draining``: explicit,
else when any agent pool runs on spot)."""

from __future__ import annotations

from k3s_infra.components import drain_queue
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import Environment
from k3s_infra.model import addons, naming
from k3s_infra.model import outputs as o


def build(env: Environment) -> StackTemplate:
    t = StackTemplate(f"k3s-infra {env.name}: node termination handler queue and EventBridge rules",
                      naming.cluster_tags(env))
    queue = drain_queue.build(t, drain_hook=naming.drain_hook_name(env), cluster=naming.cluster_name(env),
                              rebalance=addons.rebalance_draining(env))
    t.output(o.DRAIN_QUEUE_URL, queue.url, "SQS queue the node termination handler reads")
    t.output(o.DRAIN_QUEUE_ARN, queue.arn, "ARN of that queue (the server role may read it)")
    return t
