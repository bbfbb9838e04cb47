"""Node roles and instance profiles, one per node role (server, agent), as awacs.

Least privilege: each statement names the one secret, parameter or bucket
prefix it is for; the only actions on "*" come from ``k3s_infra.iam_actions``.
"""

from __future__ import annotations

from dataclasses import dataclass

from awacs import autoscaling, ec2, iam, kms, s3, secretsmanager, sqs, ssm
from awacs.aws import Allow, Condition, PolicyDocument, Statement, StringEquals, StringLikeIfExists
from awacs.helpers.trust import make_simple_assume_policy
from troposphere import GetAtt, Ref, Sub
from troposphere.iam import InstanceProfile, Policy, Role

from k3s_infra import iam_actions, naming
from k3s_infra.template import StackTemplate


@dataclass(frozen=True)
class NodeAccess:
    """ARNs and names a node role is scoped to (parameters of the IAM stack)."""

    token_secret: Ref
    agent_token_secret: Ref
    kubeconfig_secret: Ref
    cluster_state_parameter: Ref
    snapshot_bucket: Ref
    cluster_key: Ref
    snapshot_folder: str
    cluster: str
    # Add-on values read at boot: generated secrets (Refs, e.g. Rancher's bootstrap password)
    # and the user's own secrets by ARN (addons.<name>.secret_values).
    addon_secrets: tuple[Ref | str, ...] = ()
    drain_queue: Ref | None = None  # the node termination handler's queue, when draining is on


@dataclass(frozen=True)
class NodeIdentityRefs:
    role_arn: GetAtt
    instance_profile_arn: GetAtt


def _document(statements: list[Statement]) -> PolicyDocument:
    return PolicyDocument(Version="2012-10-17", Statement=statements)


def server_statements(access: NodeAccess) -> list[Statement]:
    state_arn = Sub("arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${Name}",
                    Name=access.cluster_state_parameter)
    bucket_arn = Sub("arn:${AWS::Partition}:s3:::${Bucket}", Bucket=access.snapshot_bucket)
    folder = access.snapshot_folder
    return [
        Statement(Sid="ReadClusterTokens", Effect=Allow, Action=[secretsmanager.GetSecretValue],
                  Resource=[access.token_secret, access.agent_token_secret]),
        Statement(Sid="PublishKubeconfig", Effect=Allow,
                  Action=[secretsmanager.PutSecretValue, secretsmanager.GetSecretValue],
                  Resource=[access.kubeconfig_secret]),
        Statement(Sid="ClusterStateMarker", Effect=Allow, Action=[ssm.GetParameter, ssm.PutParameter],
                  Resource=[state_arn]),
        Statement(Sid="EtcdSnapshotObjects", Effect=Allow,
                  Action=[s3.GetObject, s3.PutObject, s3.DeleteObject],
                  Resource=[Sub("${Arn}/" + folder + "/*", Arn=bucket_arn)]),
        # K3s checks the bucket exists (HeadBucket: ListBucket without a prefix) before it
        # uploads; listings with a prefix stay inside this environment's folder.
        Statement(Sid="EtcdSnapshotListing", Effect=Allow, Action=[s3.ListBucket, s3.GetBucketLocation],
                  Resource=[bucket_arn],
                  Condition=Condition(StringLikeIfExists("s3:prefix", [f"{folder}/*", folder, ""]))),
        Statement(Sid="Discovery", Effect=Allow, Action=list(iam_actions.DESCRIBE_ONLY), Resource=["*"]),
        _decrypt_statement(access, kms.Decrypt, kms.GenerateDataKey),
        Statement(Sid="CloudControllerCreates", Effect=Allow,
                  Action=list(iam_actions.CLOUD_CONTROLLER_CREATE), Resource=["*"]),
        Statement(Sid="CloudControllerTagsItsSecurityGroups", Effect=Allow, Action=[ec2.CreateTags],
                  Resource=[Sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:security-group/*")]),
        Statement(Sid="CloudControllerChangesClusterResources", Effect=Allow,
                  Action=list(iam_actions.CLOUD_CONTROLLER_ON_CLUSTER_RESOURCES), Resource=["*"],
                  Condition=Condition(StringEquals(f"aws:ResourceTag/kubernetes.io/cluster/{access.cluster}",
                                                   "owned"))),
        # The AWS cloud controller's first load balancer may need ELB's service-linked role.
        Statement(Sid="CloudControllerElbServiceRole", Effect=Allow, Action=[iam.CreateServiceLinkedRole],
                  Resource=[Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/"
                                "elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing")],
                  Condition=Condition(StringEquals("iam:AWSServiceName", "elasticloadbalancing.amazonaws.com"))),
        _lifecycle_statement(access),
        *_addon_statements(access),
    ]


def _addon_statements(access: NodeAccess) -> list[Statement]:
    """Servers write the add-on values Secrets at boot and run the node termination handler."""
    statements = []
    if access.addon_secrets:
        statements.append(Statement(Sid="ReadAddonSecrets", Effect=Allow, Action=[secretsmanager.GetSecretValue],
                                    Resource=list(access.addon_secrets)))
    if access.drain_queue is not None:
        statements.append(Statement(Sid="NodeTerminationHandlerQueue", Effect=Allow,
                                    Action=[sqs.ReceiveMessage, sqs.DeleteMessage], Resource=[access.drain_queue]))
    return statements


def agent_statements(access: NodeAccess) -> list[Statement]:
    return [
        Statement(Sid="ReadAgentToken", Effect=Allow, Action=[secretsmanager.GetSecretValue],
                  Resource=[access.agent_token_secret]),
        _decrypt_statement(access, kms.Decrypt),
        _lifecycle_statement(access),
    ]


def _decrypt_statement(access: NodeAccess, *actions) -> Statement:
    # The secrets are encrypted with the cluster key; use it only through Secrets Manager.
    return Statement(
        Sid="ClusterKeyThroughSecretsManager", Effect=Allow, Action=list(actions), Resource=[access.cluster_key],
        Condition=Condition(StringEquals("kms:ViaService", Sub("secretsmanager.${AWS::Region}.amazonaws.com"))))


def _lifecycle_statement(access: NodeAccess) -> Statement:
    # A draining node completes its own termination hook; only on this cluster's groups.
    return Statement(
        Sid="CompleteOwnLifecycleAction", Effect=Allow,
        Action=[autoscaling.CompleteLifecycleAction, autoscaling.RecordLifecycleActionHeartbeat],
        Resource=[Sub("arn:${AWS::Partition}:autoscaling:${AWS::Region}:${AWS::AccountId}:autoScalingGroup:*")],
        Condition=Condition(StringEquals(f"autoscaling:ResourceTag/{naming.TAG_PREFIX}:cluster", access.cluster)))


def build(t: StackTemplate, role: str, statements: list[Statement], cloud_controller: bool = False) -> NodeIdentityRefs:
    prefix = naming.logical_id(role)
    node_role = t.add(Role(
        f"{prefix}Role",
        AssumeRolePolicyDocument=make_simple_assume_policy("ec2.amazonaws.com"),
        Path=f"/{naming.TAG_PREFIX}/",
        Policies=[Policy(PolicyName=f"{role}-node", PolicyDocument=_document(statements))],
    ))
    if cloud_controller:
        t.skip_check(node_role, "CKV_AWS_111", "the AWS cloud controller creates load balancers and security "
                                               "groups at run time: nothing to name before; changes are limited "
                                               "to resources tagged with the cluster")
    profile = t.add(InstanceProfile(f"{prefix}InstanceProfile", Path=f"/{naming.TAG_PREFIX}/",
                                    Roles=[Ref(node_role)]))
    return NodeIdentityRefs(role_arn=GetAtt(node_role, "Arn"), instance_profile_arn=GetAtt(profile, "Arn"))
