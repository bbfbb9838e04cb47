"""Node roles and instance profiles, one per node role (server, agent), as awacs.

Least privilege: each statement names the one secret, parameter or bucket
prefix it is for; the only actions on "*" come from ``k3s_infra.components.iam_actions``.
"""

from __future__ import annotations

from dataclasses import dataclass

from awacs import autoscaling, cloudformation, ec2, iam, kms, s3, secretsmanager, ssm
from awacs.aws import (
    Allow,
    ArnEquals,
    Condition,
    ForAllValuesStringEquals,
    ForAnyValueStringEquals,
    PolicyDocument,
    Statement,
    StringEquals,
    StringLikeIfExists,
)
from awacs.helpers.trust import make_simple_assume_policy
from troposphere import GetAtt, Ref, Sub
from troposphere.iam import InstanceProfile, Policy, Role
from troposphere.iam import PolicyType as IamPolicy

from k3s_infra.components import iam_actions, oidc_issuer
from k3s_infra.components.template import StackTemplate
from k3s_infra.config.text import camel
from k3s_infra.model import naming, roles


@dataclass(frozen=True)
class NodeAccess:
    """ARNs and names a node role is scoped to (parameters of the IAM stack)."""

    token_secret: Ref
    agent_token_secret: Ref
    kubeconfig_secret: Ref
    cluster_state_parameter: Ref
    restore_request_parameter: Ref
    root_stack_name: Ref
    snapshot_bucket: Ref
    cluster_key: Ref
    snapshot_folder: str
    cluster: str
    # The server bundles' SSM parameters (bootstrap/bundle.py), by name.
    node_bundles: tuple[str, ...] = ()
    # The facts its boot reads from SSM (roles.Role.late: naming.fact_parameter), by name.
    facts: tuple[str, ...] = ()
    # Add-on values read at boot: generated secrets (Refs, e.g. Rancher's bootstrap password)
    # and the user's own secrets by ARN (addons.<name>.secret_values).
    addon_secrets: tuple[Ref | str, ...] = ()
    # bucket/prefix of this cluster's add-ons' manifests (bootstrap/bundle.py addons_object):
    # content-addressed objects, pinned by SHA-256 in the bundle; servers only. The prefix, not
    # the one key: a server of the previous template (a rollback, a replacement mid-roll) still
    # reads its own object while IAM already names the next.
    addons_objects: str | None = None
    # bucket/prefix of the K3s release files every node installs (deploy/artifacts.py stages them,
    # content-addressed: boot.sh install_k3s reads them by the digests its stack pins).
    k3s_artifacts: str | None = None
    # The environment's node_access: what the nodes' SSM Agent may do (off unless asked).
    session_manager: bool = False
    run_command: bool = False


@dataclass(frozen=True)
class NodeIdentityRefs:
    role_arn: GetAtt
    instance_profile_arn: GetAtt
    role_name: Ref


def _document(statements: list[Statement]) -> PolicyDocument:
    return PolicyDocument(Version="2012-10-17", Statement=statements)


def first_server_statements(access: NodeAccess, role: roles.Role) -> list[Statement]:
    """The first server: a server that also initialises the cluster and publishes what every
    later node and person reads (tokens, kubeconfig, marker, the OIDC issuer's keys)."""
    return [
        Statement(Sid="ReadClusterTokens", Effect=Allow, Action=[secretsmanager.GetSecretValue],
                  Resource=[access.token_secret, access.agent_token_secret]),
        # It replaces the generated short tokens with the secure ones K3s wrote (K10<CA
        # hash>::...), which pin the cluster CA for every later join. Only this role may: a
        # joining server or an agent that could rewrite them could make later joiners trust
        # another CA.
        Statement(Sid="PublishClusterTokens", Effect=Allow, Action=[secretsmanager.PutSecretValue],
                  Resource=[access.token_secret, access.agent_token_secret]),
        Statement(Sid="PublishKubeconfig", Effect=Allow,
                  Action=[secretsmanager.PutSecretValue, secretsmanager.GetSecretValue],
                  Resource=[access.kubeconfig_secret]),
        # It creates the marker (PutParameter without Overwrite) and reads it.
        Statement(Sid="ClusterStateMarker", Effect=Allow, Action=[ssm.GetParameter, ssm.PutParameter],
                  Resource=[_parameter_arn(access.cluster_state_parameter)]),
        # `k3s-infra restore` writes the request, and so does a lone first server before its
        # termination (bootstrap/watch.sh); the first server reads it, then deletes it.
        Statement(Sid="RestoreRequest", Effect=Allow, Action=[ssm.GetParameter, ssm.PutParameter,
                                                              ssm.DeleteParameter],
                  Resource=[_parameter_arn(access.restore_request_parameter)]),
        _decrypt_statement(access, kms.Decrypt, kms.GenerateDataKey),
        *_every_server(access, role, naming.STACK_SERVER_INIT),
    ]


def server_statements(access: NodeAccess, role: roles.Role) -> list[Statement]:
    """A joining server: reads the tokens, writes nothing the cluster's trust depends on."""
    return [
        Statement(Sid="ReadClusterTokens", Effect=Allow, Action=[secretsmanager.GetSecretValue],
                  Resource=[access.token_secret, access.agent_token_secret]),
        _decrypt_statement(access, kms.Decrypt),
        *_every_server(access, role, naming.STACK_SERVERS),
    ]


def _every_server(access: NodeAccess, role: roles.Role, stack_id: str) -> list[Statement]:
    bucket_arn = Sub("arn:${AWS::Partition}:s3:::${Bucket}", Bucket=access.snapshot_bucket)
    folder = access.snapshot_folder
    own = roles.named_by_identity(role.identity)
    return [
        # The rest of its boot (bootstrap/bundle.py), read and checked against its digest.
        Statement(Sid="ReadNodeBundle", Effect=Allow, Action=[ssm.GetParameter],
                  Resource=[_parameter_arn(naming_bundle) for naming_bundle in access.node_bundles]),
        *_facts_statement(access),
        *_k3s_artifacts_statement(access),
        _signal_statement(access, stack_id),
        # The add-ons' manifests (the user's chart values): this cluster's objects, not the bucket.
        *([Statement(Sid="ReadAddonManifests", Effect=Allow, Action=[s3.GetObject],
                     Resource=[Sub("arn:${AWS::Partition}:s3:::" + access.addons_objects + "/*")])]
          if access.addons_objects else []),
        Statement(Sid="EtcdSnapshotObjects", Effect=Allow,
                  Action=[s3.GetObject, s3.PutObject, s3.DeleteObject],
                  Resource=[Sub("${Arn}/" + folder + "/*", Arn=bucket_arn)]),
        # K3s checks the bucket exists (HeadBucket: ListBucket without s3:prefix) before it
        # uploads; its listings use the folder (ListSnapshots) or folder/<name> (retention) as
        # prefix (k3s-io/k3s pkg/etcd/s3/s3.go), the boot script folder/. A listing that sends a
        # prefix stays in the folder; one without a prefix looks like HeadBucket to IAM and is
        # allowed too (no condition can tell them apart).
        Statement(Sid="EtcdSnapshotListing", Effect=Allow, Action=[s3.ListBucket, s3.GetBucketLocation],
                  Resource=[bucket_arn],
                  Condition=Condition(StringLikeIfExists("s3:prefix", [f"{folder}/*", folder]))),
        Statement(Sid="Discovery", Effect=Allow, Action=list(iam_actions.DESCRIBE_ONLY), Resource=["*"]),
        # The AWS cloud controller runs on the servers with hostNetwork: it initialises nodes
        # (their uninitialized taint) before any pod identity webhook could run, so it keeps
        # the node's role (IMDS in one hop from the host network).
        *_cloud_controller_statements(access.cluster),
        # The AWS cloud controller's first load balancer may need ELB's service-linked role.
        Statement(Sid="CloudControllerElbServiceRole", Effect=Allow, Action=[iam.CreateServiceLinkedRole],
                  Resource=[Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/"
                                "elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing")],
                  Condition=Condition(StringEquals("iam:AWSServiceName", "elasticloadbalancing.amazonaws.com"))),
        # Its watch completes its own group's snapshot hook (watch.sh before_termination).
        _lifecycle_statement(access, *own),
        _health_statement(access, *own),
        ready_tag_statement(),
        *_addon_statements(access),
        *ssm_agent_statements(access),
    ]


def _cloud_controller_statements(cluster: str) -> list[Statement]:
    """The AWS cloud controller: creates on "*", tags only at creation and only `owned`,
    changes only `owned` resources (its own), adds load balancer rules to node groups
    (`shared`). CloudFormation's resources never carry `owned` (naming.ccm_discovery_tags)."""
    key = naming.CCM_CLUSTER_TAG_PREFIX + cluster
    tagging = []
    for action, create_actions in iam_actions.CLOUD_CONTROLLER_TAG_ON_CREATE.items():
        service = action.JSONrepr().split(":", 1)[0]
        resource = (Sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:security-group/*")
                    if service == "ec2" else "*")
        # Tag-on-create condition keys: ec2:CreateAction
        # (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html),
        # elasticloadbalancing:CreateAction
        # (https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/security_iam_service-with-iam.html,
        # .../userguide/tagging-resources-during-creation.html: AddTags is evaluated only when the
        # create call carries tags). The resource tagged is the one being created (a listener for
        # CreateListener); what it is created on is authorized by the create action's own statement.
        tagging.append(Statement(
            Sid=f"CloudControllerTagsOnCreate{camel(service)}", Effect=Allow, Action=[action],
            Resource=[resource], Condition=Condition([
                StringEquals({f"{service}:CreateAction": list(create_actions), f"aws:RequestTag/{key}": "owned"}),
                ForAnyValueStringEquals("aws:TagKeys", [key])])))
    return [
        Statement(Sid="CloudControllerCreates", Effect=Allow,
                  Action=list(iam_actions.CLOUD_CONTROLLER_CREATE), Resource=["*"]),
        *tagging,
        Statement(Sid="CloudControllerLoadBalancerRules", Effect=Allow,
                  Action=list(iam_actions.CLOUD_CONTROLLER_NODE_INGRESS),
                  Resource=[Sub("arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:security-group/*")],
                  Condition=Condition(StringEquals(f"aws:ResourceTag/{key}", ["owned", "shared"]))),
        Statement(Sid="CloudControllerChangesClusterResources", Effect=Allow,
                  Action=list(iam_actions.CLOUD_CONTROLLER_ON_CLUSTER_RESOURCES), Resource=["*"],
                  Condition=Condition(StringEquals(f"aws:ResourceTag/{key}", "owned"))),
    ]


def _addon_statements(access: NodeAccess) -> list[Statement]:
    """Servers write the add-on values Secrets at boot."""
    if not access.addon_secrets:
        return []
    return [Statement(Sid="ReadAddonSecrets", Effect=Allow, Action=[secretsmanager.GetSecretValue],
                      Resource=list(access.addon_secrets))]


def agent_statements(access: NodeAccess) -> list[Statement]:
    return [
        Statement(Sid="ReadAgentToken", Effect=Allow, Action=[secretsmanager.GetSecretValue],
                  Resource=[access.agent_token_secret]),
        _decrypt_statement(access, kms.Decrypt),
        *_facts_statement(access),
        *_k3s_artifacts_statement(access),
        _signal_statement(access, naming.agent_pool_stack("") + "*"),
        _lifecycle_statement(access, *roles.named_by_identity("agent")),
        _health_statement(access, *roles.named_by_identity("agent")),
        ready_tag_statement(),
        *ssm_agent_statements(access),
    ]


def ssm_agent_statements(access: NodeAccess) -> list[Statement]:
    """The SSM Agent Amazon Linux 2023 ships: registration (how it shows Online in
    DescribeInstanceInformation; on "*" as the AWS managed policies grant it: see
    iam_actions.SSM_AGENT_REGISTRATION), and the channels node_access turns on (iam_actions:
    sessions over ssmmessages, Run Command over ec2messages). Nothing when both are off: the
    instance is then not a managed node at all."""
    if not (access.session_manager or access.run_command):
        return []
    statements = [Statement(Sid="SsmAgentRegistration", Effect=Allow,
                            Action=list(iam_actions.SSM_AGENT_REGISTRATION), Resource=["*"])]
    if access.session_manager:
        statements.append(Statement(Sid="SsmAgentSessionChannel", Effect=Allow,
                                    Action=list(iam_actions.SSM_AGENT_SESSION_CHANNEL), Resource=["*"]))
    if access.run_command:
        statements.append(Statement(Sid="SsmAgentCommandChannel", Effect=Allow,
                                    Action=list(iam_actions.SSM_AGENT_COMMAND_CHANNEL), Resource=["*"]))
    return statements


def ready_tag_statement() -> Statement:
    """A node's last boot step: tag its own instance READY_TAG=READY_VALUE, nothing else
    (deploy waits for it: deploy/readiness.py).
    - Own instance: ec2:SourceInstanceARN, the instance whose profile credentials sign the
      request (EC2 User Guide, "Condition keys for Amazon EC2"), must be the tagged instance,
      whose ARN is built from its ec2:InstanceID (Service Authorization Reference, Amazon EC2,
      "instance" resource) as a policy variable. IAM User Guide, "Variables and tags": variables
      work in Condition values, in a Resource only after the ARN's fifth colon (so no
      "Resource": "${ec2:SourceInstanceARN}"). ${!...} is Fn::Sub's literal ${...}.
    - That tag only: aws:RequestTag fixes its value, ForAllValues aws:TagKeys refuses any other
      key (EC2 User Guide, "Example: Tag resources")."""
    instance = "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/"
    return Statement(
        Sid="TagOwnInstanceReady", Effect=Allow, Action=[ec2.CreateTags], Resource=[Sub(instance + "*")],
        Condition=Condition([
            ArnEquals("ec2:SourceInstanceARN", Sub(instance + "${!ec2:InstanceID}")),
            StringEquals(f"aws:RequestTag/{naming.READY_TAG}", naming.READY_VALUE),
            ForAllValuesStringEquals("aws:TagKeys", [naming.READY_TAG])]))


def issuer_publisher(t: StackTemplate, role_name: Ref, issuer_bucket: Ref) -> None:
    """The first server's right to write the OIDC issuer's two documents, copied from its own
    API (first_server.sh publish_issuer): a policy of its own, attached to its role by the
    IssuerAccess stack once both the role and the Identity stack's bucket exist, so neither
    the role's stack nor the first server's waits for the issuer's distribution."""
    # Unique to this stack: a replacement is created before the old one is deleted by its name.
    t.add(IamPolicy("PublishIssuerDocuments", PolicyName=Sub("${AWS::StackName}-publish-issuer"), Roles=[role_name],
                    PolicyDocument=_document([Statement(
                        Sid="PublishIssuerDocuments", Effect=Allow, Action=[s3.PutObject],
                        Resource=[Sub("arn:${AWS::Partition}:s3:::${Bucket}/" + key, Bucket=issuer_bucket)
                                  for key in (oidc_issuer.DISCOVERY_KEY, oidc_issuer.JWKS_KEY)])])))


def _facts_statement(access: NodeAccess) -> list[Statement]:
    """Read the facts a stack wrote for the boot (stacks/identity.py), and only those."""
    return ([Statement(Sid="ReadBootFacts", Effect=Allow, Action=[ssm.GetParameter],
                       Resource=[_parameter_arn(name) for name in access.facts])] if access.facts else [])


def _k3s_artifacts_statement(access: NodeAccess) -> list[Statement]:
    """Read the staged K3s binary and airgap images: this cluster's objects, not the bucket."""
    return ([Statement(Sid="ReadK3sArtifacts", Effect=Allow, Action=[s3.GetObject],
                       Resource=[Sub("arn:${AWS::Partition}:s3:::" + access.k3s_artifacts + "/*")])]
            if access.k3s_artifacts else [])


def _parameter_arn(name: Ref) -> Sub:
    # Parameter names start with '/', so the ARN is parameter/<path> without a second slash.
    return Sub("arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${Name}", Name=name)


def _signal_statement(access: NodeAccess, *stack_ids: str) -> Statement:
    # A node signals its own group's CreationPolicy/UpdatePolicy, on its own node stacks only.
    # Nested stacks are named <root stack>-<logical ID>-<random suffix>
    # (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-nested-stacks.html);
    # stack ARNs are arn:...:stack/<name>/<id>.
    return Statement(
        Sid="SignalOwnNodeStack", Effect=Allow, Action=[cloudformation.SignalResource],
        Resource=[Sub("arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${Root}-"
                      + stack_id + "-*/*", Root=access.root_stack_name) for stack_id in stack_ids])


def _health_statement(access: NodeAccess, *role_names: str) -> Statement:
    # A node whose boot gives up reports itself Unhealthy so its group replaces it; only on
    # the groups of its own node role (k3s-infra:role tag, roles.Role.tags): an agent must
    # never be able to mark every server unhealthy and so take etcd's quorum with them.
    return Statement(
        Sid="ReportOwnHealth", Effect=Allow, Action=[autoscaling.SetInstanceHealth],
        Resource=[Sub("arn:${AWS::Partition}:autoscaling:${AWS::Region}:${AWS::AccountId}:autoScalingGroup:*")],
        Condition=_own_groups(access, role_names))


def _own_groups(access: NodeAccess, role_names: tuple[str, ...]) -> Condition:
    """This cluster's groups, of the given node roles (all roles when none are given).
    Auto Scaling authorises these actions per group with autoscaling:ResourceTag/<key>
    (Service Authorization Reference, Amazon EC2 Auto Scaling)."""
    tags = {f"autoscaling:ResourceTag/{naming.CLUSTER_TAG}": access.cluster}
    if role_names:
        tags[f"autoscaling:ResourceTag/{naming.ROLE_TAG}"] = list(role_names)
    return Condition(StringEquals(tags))


def _decrypt_statement(access: NodeAccess, *actions) -> Statement:
    # The secrets are encrypted with the cluster key; use it only through Secrets Manager.
    return Statement(
        Sid="ClusterKeyThroughSecretsManager", Effect=Allow, Action=list(actions), Resource=[access.cluster_key],
        # The service's endpoint name, whose suffix is the partition's (amazonaws.com.cn in China):
        # AWS::URLSuffix (CloudFormation pseudo parameters).
        Condition=Condition(StringEquals("kms:ViaService", Sub("secretsmanager.${AWS::Region}.${AWS::URLSuffix}"))))


def _lifecycle_statement(access: NodeAccess, *role_names: str) -> Statement:
    # Completing termination hooks of its own role's groups only (the node termination
    # handler has its own role: stacks/identity.py).
    return Statement(
        Sid="CompleteOwnLifecycleAction", Effect=Allow,
        Action=[autoscaling.CompleteLifecycleAction, autoscaling.RecordLifecycleActionHeartbeat],
        Resource=[Sub("arn:${AWS::Partition}:autoscaling:${AWS::Region}:${AWS::AccountId}:autoScalingGroup:*")],
        Condition=_own_groups(access, role_names))


def build(t: StackTemplate, identity: str, statements: list[Statement], cloud_controller: bool = False) -> NodeIdentityRefs:
    prefix = naming.logical_id(identity)
    node_role = t.add(Role(
        f"{prefix}Role",
        AssumeRolePolicyDocument=make_simple_assume_policy("ec2.amazonaws.com"),
        Path=f"/{naming.TAG_PREFIX}/",
        Policies=[Policy(PolicyName=f"{identity}-node", PolicyDocument=_document(statements))],
    ))
    unconstrained_writes = [
        "the AWS cloud controller creates load balancers and security groups at run time: nothing to name "
        "before; changes are limited to resources tagged with the cluster"] * cloud_controller + [
        "the SSM Agent registers on \"*\" as AWS's AmazonSSMManagedInstanceCore grants it "
        "(iam_actions.SSM_AGENT_REGISTRATION): it describes only the calling instance"] * any(
        s.Sid == "SsmAgentRegistration" for s in statements)
    if unconstrained_writes:
        t.skip_check(node_role, "CKV_AWS_111", "; ".join(unconstrained_writes))
    profile = t.add(InstanceProfile(f"{prefix}InstanceProfile", Path=f"/{naming.TAG_PREFIX}/",
                                    Roles=[Ref(node_role)]))
    return NodeIdentityRefs(role_arn=GetAtt(node_role, "Arn"), instance_profile_arn=GetAtt(profile, "Arn"),
                            role_name=Ref(node_role))
