"""The node termination handler's queue (k3s_infra/components/drain_queue.py): EventBridge
rules for lifecycle terminations of this cluster's groups, spot interruptions and instance
state changes (rebalance recommendations only on request: queue-mode NTH drains every event it
receives) target an encrypted SQS queue that only those rules may send to, with the message
retention of the aws-node-termination-handler README (queue-processor setup).
"""

from __future__ import annotations

from k3s_infra.components import drain_queue
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
    # Lifecycle actions only of this cluster's groups (named after the root stack).
    lifecycle = rules["AsgTerminateRule"]["EventPattern"]
    assert lifecycle["source"] == ["aws.autoscaling"]
    assert lifecycle["detail"]["AutoScalingGroupName"] == [{"prefix": f"{naming.cluster_name(r.env)}-"}]
    assert set(rules) == set(drain_queue.event_patterns("x-"))


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
