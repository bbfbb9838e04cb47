"""IAM roles for service accounts: each trusts one service account's tokens from this
cluster's OIDC provider, for the STS audience, and nothing else.

The trust policy's condition keys start with the issuer's host (``<host>:sub``,
``<host>:aud``: IAM User Guide, "Available keys for AWS web identity federation"), known only
once CloudFront has named the distribution. A key cannot be an intrinsic function, so the
trust policy is one ``Fn::Sub`` string (the AWS::IAM::Role schema takes an object or a string).
"""

from __future__ import annotations

import json

from awacs import autoscaling, ec2, sqs
from awacs.aws import Allow, Condition, Statement, StringEquals
from troposphere import AWSHelperFn, Ref, Sub
from troposphere.iam import Policy, Role

from k3s_infra.components import iam_actions
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import defaults
from k3s_infra.model import naming

WEB_IDENTITY_ACTION = "sts:AssumeRoleWithWebIdentity"


def trust_policy(subject: str, provider_arn: AWSHelperFn, issuer_host: AWSHelperFn) -> Sub:
    """Only tokens whose `sub` is exactly this service account and whose `aud` is STS's, signed
    by this cluster's issuer (the provider) (IAM User Guide, "Create a role for OpenID Connect
    federation"; EKS User Guide, "Assign IAM roles to Kubernetes service accounts")."""
    if "${" in subject or "*" in subject or "?" in subject:
        raise ValueError(f"service account subject {subject!r}: no wildcards or substitutions")
    document = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": "${ProviderArn}"}, "Action": WEB_IDENTITY_ACTION,
        "Condition": {"StringEquals": {"${IssuerHost}:sub": subject,
                                       "${IssuerHost}:aud": defaults.TOKEN_AUDIENCE}}}]}
    return Sub(json.dumps(document, separators=(",", ":")), ProviderArn=provider_arn, IssuerHost=issuer_host)


def build(t: StackTemplate, logical: str, role_name: str, subject: str, provider_arn: AWSHelperFn,
          issuer_host: AWSHelperFn, statements: list, policy_arns: tuple[str, ...] = ()) -> Role:
    """One role; ``statements`` are awacs Statements or IAM JSON statements (a user's)."""
    props: dict = {"RoleName": role_name, "Path": naming.WORKLOAD_ROLE_PATH,
                   "AssumeRolePolicyDocument": trust_policy(subject, provider_arn, issuer_host),
                   "MaxSessionDuration": 3600}
    if statements:
        props["Policies"] = [Policy(PolicyName="workload", PolicyDocument={
            "Version": "2012-10-17", "Statement": statements})]
    if policy_arns:
        props["ManagedPolicyArns"] = list(policy_arns)
    return t.add(Role(logical, **props))


def termination_handler_statements(cluster: str, queue_arn: Ref) -> list[Statement]:
    """aws-node-termination-handler in queue-processor mode: read and delete the queue's
    messages, look up instances and groups, complete the termination hook of this cluster's
    groups only (its README "Queue Processor" IAM policy; autoscaling:ResourceTag per group:
    Service Authorization Reference, Amazon EC2 Auto Scaling)."""
    return [
        Statement(Sid="DrainQueue", Effect=Allow, Action=[sqs.ReceiveMessage, sqs.DeleteMessage],
                  Resource=[queue_arn]),
        Statement(Sid="Discovery", Effect=Allow, Action=[autoscaling.DescribeAutoScalingInstances,
                                                         autoscaling.DescribeTags, ec2.DescribeInstances],
                  Resource=["*"]),
        Statement(Sid="CompleteClusterLifecycleActions", Effect=Allow,
                  Action=[autoscaling.CompleteLifecycleAction],
                  Resource=[Sub("arn:${AWS::Partition}:autoscaling:${AWS::Region}:${AWS::AccountId}:"
                                "autoScalingGroup:*")],
                  Condition=Condition(StringEquals(f"autoscaling:ResourceTag/{naming.CLUSTER_TAG}", cluster))),
    ]


def autoscaler_statements(discovery_tag: str) -> list[Statement]:
    """The cluster autoscaler: reads on "*", scaling only groups carrying this cluster's
    discovery tag. Auto Scaling authorises SetDesiredCapacity and
    TerminateInstanceInAutoScalingGroup per autoScalingGroup resource with the
    aws:ResourceTag/<key> condition (Service Authorization Reference, Amazon EC2 Auto Scaling:
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonec2autoscaling.html;
    the autoscaler's AWS README recommends exactly this tag conditional)."""
    return [
        Statement(Sid="ClusterAutoscalerDiscovery", Effect=Allow, Action=list(iam_actions.AUTOSCALER_DESCRIBE),
                  Resource=["*"]),
        Statement(Sid="ClusterAutoscalerScalesDiscoveredGroups", Effect=Allow,
                  Action=list(iam_actions.AUTOSCALER_SCALING),
                  Resource=[Sub("arn:${AWS::Partition}:autoscaling:${AWS::Region}:${AWS::AccountId}:"
                                "autoScalingGroup:*:autoScalingGroupName/*")],
                  Condition=Condition(StringEquals(f"aws:ResourceTag/{discovery_tag}", "owned"))),
    ]

