"""The node termination handler's queue (k3s_infra/components/drain_queue.py): EventBridge
rules for lifecycle terminations of this cluster's groups, spot interruptions and instance
state changes (rebalance recommendations only on request: queue-mode NTH drains every event it
receives) target an encrypted SQS queue that only those rules may send to, with the message
retention of the aws-node-termination-handler README (queue-processor setup).
"""

from __future__ import annotations

import json

import pytest
from moto.events.models import EventPattern

from k3s_infra.components import drain_queue
from k3s_infra.config import defaults
from k3s_infra.model import naming


def test_rules_cover_lifecycle_spot_rebalance_and_target_the_queue(rendered):
    r = rendered["prod"]
    resources = r.templates["Draining"]["Resources"]
    rules = {k: v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::Events::Rule"}
    detail_types = {rule["EventPattern"]["detail-type"][0] for rule in rules.values()}
    assert {"EC2 Instance-terminate Lifecycle Action", "EC2 Spot Instance Interruption Warning",
            "EC2 Instance State-change Notification"} <= detail_types
    # Queue-mode NTH drains every event it receives: rebalance recommendations only on request.
    assert "EC2 Instance Rebalance Recommendation" not in detail_types
    for rule in rules.values():
        assert rule["State"] == "ENABLED"
        assert rule["Targets"] == [{"Id": "DrainQueue", "Arn": {"Fn::GetAtt": ["DrainQueue", "Arn"]}}]
    assert set(rules) == set(drain_queue.event_patterns("x", "c"))


def _lifecycle_event(group: str, hook: str) -> dict:
    """A scale-in lifecycle action event as EC2 Auto Scaling sends it (User Guide, "Amazon EC2
    Auto Scaling event reference", Scale-in lifecycle action)."""
    return {"version": "0", "id": "1", "detail-type": "EC2 Instance-terminate Lifecycle Action",
            "source": "aws.autoscaling", "account": "123456789012", "time": "2026-12-04T00:00:00Z",
            "region": "eu-west-1", "resources": [f"arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:"
                                                 f"1:autoScalingGroupName/{group}"],
            "detail": {"LifecycleActionToken": "t", "AutoScalingGroupName": group, "LifecycleHookName": hook,
                       "EC2InstanceId": "i-0123456789abcdef0",
                       "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"}}


@pytest.mark.parametrize("name", ["prod", "dev"])
def test_lifecycle_rule_matches_this_clusters_drain_hook_only(rendered, name):
    """Issue 23: a prefix of generated group names (k3s-prod-) also matched k3s-prod-eu-...'s groups,
    and the servers' snapshot hook: the handler would have completed that hook before the
    watch's snapshot was in S3. Matched with EventBridge's own semantics as moto models them."""
    r = rendered[name]
    resources = r.templates["Draining"]["Resources"] if "Draining" in r.templates else None
    if resources is None:
        pytest.skip(f"{name} has no draining")
    pattern = EventPattern.load(json.dumps(resources["AsgTerminateRule"]["Properties"]["EventPattern"]))
    cluster = naming.cluster_name(r.env)
    hooks = {h["LifecycleHookName"] for stack in r.templates.values() for res in stack["Resources"].values()
             if res["Type"] == "AWS::AutoScaling::AutoScalingGroup"
             for h in res["Properties"]["LifecycleHookSpecificationList"]}
    drain = hooks - {defaults.SNAPSHOT_HOOK}
    assert len(drain) == 1, hooks
    (hook,) = drain
    assert pattern.matches_event(_lifecycle_event(f"{cluster}-Servers-1A2B-ServerGroup-3C4D", hook))
    other = f"{cluster}-eu"  # a stack whose name extends this one's
    assert not pattern.matches_event(_lifecycle_event(f"{other}-Servers-1A2B-ServerGroup-3C4D",
                                                      hook.replace(cluster, other)))
    assert not pattern.matches_event(_lifecycle_event(f"{cluster}-Servers-1A2B-ServerGroup-3C4D",
                                                      defaults.SNAPSHOT_HOOK))
    # for one release, the hook's old name from this stack's groups still drains (the upgrade
    # deploy changes the rule before the groups' hooks), never another stack's
    assert pattern.matches_event(_lifecycle_event(f"{cluster}-AgentPoolGeneral-1A2B-AgentGroup-3C4D",
                                                  "drain-before-terminate"))
    assert not pattern.matches_event(_lifecycle_event("k3s-other-AgentPoolGeneral-1A2B-AgentGroup-3C4D",
                                                      "drain-before-terminate"))


def test_queue_is_encrypted_and_only_the_rules_may_send(rendered):
    resources = rendered["prod"].templates["Draining"]["Resources"]
    queue = resources["DrainQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    # aws-node-termination-handler README (queue-processor setup): MessageRetentionPeriod 300.
    assert queue["MessageRetentionPeriod"] == 300
    (statement,) = resources["DrainQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": ["events.amazonaws.com"]} or \
        statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == ["sqs:SendMessage"]
    assert statement["Resource"] == [{"Fn::GetAtt": ["DrainQueue", "Arn"]}]
    rule_arns = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    rules = [k for k, v in resources.items() if v["Type"] == "AWS::Events::Rule"]
    assert sorted(a["Fn::GetAtt"][0] for a in rule_arns) == sorted(rules)
