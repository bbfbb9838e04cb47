"""The node termination handler's event queue: an encrypted SQS queue and the
EventBridge rules that feed it (ASG termination lifecycle actions of this
cluster's groups, spot interruption warnings, rebalance recommendations,
instance state changes and scheduled EC2 maintenance).

The handler runs in queue mode on the servers: it reads the queue, cordons and
drains the node, and completes the ASG lifecycle action so the instance goes.
"""

from __future__ import annotations

from dataclasses import dataclass

from awacs import sqs
from awacs.aws import Allow, ArnEquals, Condition, PolicyDocument, Principal, Statement
from troposphere import GetAtt, Ref
from troposphere.events import Rule, Target
from troposphere.sqs import Queue, QueuePolicy

from k3s_infra.components.template import StackTemplate

# NTH's recommendation: events older than this are stale (the instance is gone).
MESSAGE_RETENTION_SECONDS = 300
EC2_STOPPING_STATES = ["stopping", "stopped", "shutting-down", "terminated"]


@dataclass(frozen=True)
class DrainQueueRefs:
    url: Ref
    arn: GetAtt
    rules: dict[str, Rule]


# The hook's name before it was named after the cluster. For one release the rule also takes it
# from groups named after this stack: during the upgrade deploy the rule changes before the
# groups' hooks do, and a termination under the old name must still drain.
LEGACY_DRAIN_HOOK = "drain-before-terminate"


def event_patterns(drain_hook: str, cluster: str, rebalance: bool = False) -> dict[str, tuple[str, dict]]:
    """Logical ID -> (description, EventBridge pattern) of every rule feeding the queue.
    Rebalance recommendations only when they should drain (queue-mode NTH drains whatever
    it receives; see model.addons.rebalance_draining).

    Lifecycle actions match this cluster's hook name exactly (naming.drain_hook_name): the event's
    detail carries LifecycleHookName (EC2 Auto Scaling User Guide, "Amazon EC2 Auto Scaling event
    reference", scale-in lifecycle action). A prefix of the generated group names would also match
    a cluster whose stack name extends this one's (k3s-prod- and k3s-prod-eu-...).
    The EC2 and Health events carry an instance ID, no tag or group, so no pattern can narrow them
    to this cluster; the handler acts only on instances wearing its managed tag that are nodes of
    this cluster, and deletes the others' messages (catalog: checkTagBeforeDraining,
    deleteSqsMsgIfNodeNotFound)."""
    patterns = {
        "AsgTerminateRule": ("ASG termination lifecycle actions of this cluster's groups", {
            "source": ["aws.autoscaling"], "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
            "detail": {"$or": [{"LifecycleHookName": [drain_hook]},
                               {"LifecycleHookName": [LEGACY_DRAIN_HOOK],
                                "AutoScalingGroupName": [{"prefix": f"{cluster}-"}]}]}}),
        "SpotInterruptionRule": ("EC2 spot interruption warnings", {
            "source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]}),
        "RebalanceRule": ("EC2 instance rebalance recommendations", {
            "source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]}),
        "StateChangeRule": ("EC2 instances stopping or terminating", {
            "source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"],
            "detail": {"state": EC2_STOPPING_STATES}}),
        "ScheduledChangeRule": ("scheduled EC2 maintenance (AWS Health)", {
            "source": ["aws.health"], "detail-type": ["AWS Health Event"],
            "detail": {"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]}}),
    }
    if not rebalance:
        del patterns["RebalanceRule"]
    return patterns


def build(t: StackTemplate, drain_hook: str, cluster: str, rebalance: bool = False) -> DrainQueueRefs:
    queue = t.add(Queue("DrainQueue", MessageRetentionPeriod=MESSAGE_RETENTION_SECONDS, SqsManagedSseEnabled=True))
    t.skip_check(queue, "CKV_AWS_27", "encrypted at rest with SSE-SQS (SqsManagedSseEnabled), which the check does "
                                      "not recognise; a KMS key would need a key policy for EventBridge and decrypt "
                                      "rights for the servers without narrowing who reads the queue")
    queue_arn = GetAtt(queue, "Arn")
    rules = {}
    for logical, (description, pattern) in event_patterns(drain_hook, cluster, rebalance).items():
        rules[logical] = t.add(Rule(
            logical, Description=f"Node termination handler: {description}", EventPattern=pattern,
            State="ENABLED", Targets=[Target(Id="DrainQueue", Arn=queue_arn)]))
    t.add(QueuePolicy("DrainQueuePolicy", Queues=[Ref(queue)], PolicyDocument=PolicyDocument(
        Version="2012-10-17", Statement=[Statement(
            Sid="EventBridgeRulesOfThisCluster", Effect=Allow, Principal=Principal("Service", "events.amazonaws.com"),
            Action=[sqs.SendMessage], Resource=[queue_arn],
            Condition=Condition(ArnEquals("aws:SourceArn", [GetAtt(rule, "Arn") for rule in rules.values()])))])))
    return DrainQueueRefs(url=Ref(queue), arn=queue_arn, rules=rules)
