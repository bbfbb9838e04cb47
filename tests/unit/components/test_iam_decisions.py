"""What each node, and each controller's service account, may and may not do on AWS, decided
by evaluating its role's policy (k3s_infra/components/iam.py as the NodeIam stack renders
it; components/workload_iam.py as the Identity stack does, the role found by evaluating its
trust for the controller's service account).

The requests are built from what a node really asks for, not from the IAM component: the
secret ARNs, parameter names, snapshot bucket/folder and signal target in the node's own
user data (boot.env, config.yaml), the tags of its own auto scaling group, the role reached
through its launch template's instance profile, and AWS's ARN formats. Every nested-stack
output is replaced by a distinct made-up value, so a grant on the wrong secret, parameter
or stack cannot match by accident (the cluster as read: tests/support/iam_policies.py
Cluster). The evaluator is tests/support/iam_eval.py (IAM's documented matching rules).
"""

from __future__ import annotations

import json

import pytest

from k3s_infra.config import available_environments, load_environment
from k3s_infra.render import build_templates

from tests.support.iam_eval import Request, allowed
from tests.support.iam_policies import AUTOSCALER_SERVICE_ACCOUNT, NTH_SERVICE_ACCOUNT, UUID, Cluster, Node
from tests.support.oracle_helpers import ALL_ADDONS


@pytest.fixture(params=[*available_environments(), "all-addons"])
def cluster(request, rendered) -> Cluster:
    if request.param == "all-addons":
        env = load_environment(path=ALL_ADDONS)
        return Cluster(env, {k: json.loads(json.dumps(t.to_dict())) for k, t in build_templates(env).items()})
    return Cluster(rendered[request.param].env, rendered[request.param].templates)


def check(node: Node | tuple[str, list[dict]], decisions: list[tuple[str, Request, bool]]) -> None:
    """A node, or (who, policies) of a service account's role."""
    who, policies = (f"{node.stack_id} ({node.role})", node.policies) if isinstance(node, Node) else node
    wrong = [f"{what}: expected {'allowed' if want else 'denied'}" for what, request, want in decisions
             if allowed(policies, request) != want]
    assert not wrong, f"{who}: " + "; ".join(wrong)


def secret_read(arn: str) -> Request:
    return Request("secretsmanager:GetSecretValue", arn)


def test_every_node_reads_its_tokens_and_nothing_else(cluster):
    other = cluster.arn("secretsmanager", "secret:someone-else-AbCdEf")
    server_token = cluster.of_role("server-init")[0].boot["TOKEN_SECRET"]
    kubeconfig = cluster.of_role("server-init")[0].boot["KUBECONFIG_SECRET"]
    for node in cluster.nodes:
        decisions = [("read own token", secret_read(node.boot["TOKEN_SECRET"]), True),
                     ("read an unrelated secret", secret_read(other), False),
                     ("write an unrelated secret", Request("secretsmanager:PutSecretValue", other), False)]
        if node.role == "agent":
            decisions += [("agent reads the server token", secret_read(server_token), False)]
        else:
            decisions.append(("read the agent token", secret_read(node.boot["AGENT_TOKEN_SECRET"]), True))
        if node.role != "server-init":
            # Only the first server publishes the tokens (whose K10<CA hash> pins the cluster CA
            # for every later join) and the kubeconfig.
            decisions += [(f"{node.role} reads the kubeconfig", secret_read(kubeconfig), False),
                          *((f"{node.role} rewrites {arn}", Request("secretsmanager:PutSecretValue", arn), False)
                            for arn in (server_token, node.boot["TOKEN_SECRET"], kubeconfig,
                                        cluster.of_role("server-init")[0].boot["AGENT_TOKEN_SECRET"]))]
        check(node, decisions)


def test_the_first_server_publishes_tokens_and_kubeconfig(cluster):
    (first,) = cluster.of_role("server-init")
    check(first, [(f"publish {key}", Request("secretsmanager:PutSecretValue", first.boot[key]), True)
                  for key in ("TOKEN_SECRET", "AGENT_TOKEN_SECRET", "KUBECONFIG_SECRET")])


def test_the_first_server_owns_the_marker_and_the_restore_request_only(cluster):
    (first,) = cluster.of_role("server-init")
    # Parameter ARNs: arn:aws:ssm:<region>:<account>:parameter/<name without its leading slash>
    # (https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-access.html).
    marker = cluster.arn("ssm", "parameter" + first.boot["STATE_PARAMETER"])
    restore = cluster.arn("ssm", "parameter" + first.boot["RESTORE_PARAMETER"])
    elsewhere = cluster.arn("ssm", "parameter/k3s-infra/another-cluster/cluster-state")
    check(first, [
        ("read the marker", Request("ssm:GetParameter", marker), True),
        ("create the marker", Request("ssm:PutParameter", marker), True),
        ("delete the marker", Request("ssm:DeleteParameter", marker), False),
        ("read the restore request", Request("ssm:GetParameter", restore), True),
        ("delete the restore request", Request("ssm:DeleteParameter", restore), True),
        # A lone first server names its pre-termination snapshot for its replacement (watch.sh);
        # the boot acts on a request only under its guards (first_server.sh request_snapshot).
        ("write a restore request", Request("ssm:PutParameter", restore), True),
        ("read another cluster's marker", Request("ssm:GetParameter", elsewhere), False),
    ])
    for node in cluster.of_role("server", "agent"):
        check(node, [(f"{node.role} reads the marker", Request("ssm:GetParameter", marker), False),
                     (f"{node.role} writes the marker", Request("ssm:PutParameter", marker), False),
                     (f"{node.role} writes a restore request", Request("ssm:PutParameter", restore), False),
                     (f"{node.role} deletes the restore request", Request("ssm:DeleteParameter", restore), False)])


def test_only_the_first_server_writes_the_issuer_documents_and_nothing_else_there(cluster):
    """The two documents of service account issuer discovery, at the paths the API server
    serves them below the issuer (https://kubernetes.io/docs/tasks/configure-pod-container/
    configure-service-account/#service-account-issuer-discovery); the bucket is the first
    server's boot.env ISSUER_BUCKET."""
    (first,) = cluster.of_role("server-init")
    bucket = first.boot["ISSUER_BUCKET"]
    obj = lambda key: f"arn:aws:s3:::{bucket}/{key}"  # noqa: E731
    documents = (".well-known/openid-configuration", "openid/v1/jwks")
    assert (first.boot["DISCOVERY_KEY"], first.boot["JWKS_KEY"]) == documents
    for node in cluster.nodes:
        first_server = node.role == "server-init"
        check(node, [*((f"publish {key}", Request("s3:PutObject", obj(key)), first_server) for key in documents),
                     ("write another object there", Request("s3:PutObject", obj("index.html")), False),
                     ("write beside the JWKS", Request("s3:PutObject", obj("openid/v1/jwks2")), False),
                     ("write the JWKS in another bucket", Request("s3:PutObject", "arn:aws:s3:::other/openid/v1/jwks"),
                      False),
                     *((f"delete {key}", Request("s3:DeleteObject", obj(key)), False) for key in documents),
                     ("change the bucket policy", Request("s3:PutBucketPolicy", f"arn:aws:s3:::{bucket}"), False)])


def test_each_server_reads_its_own_bundle_and_nothing_writes_one(cluster):
    """A server reads the bundle its boot.env names (BUNDLE_PARAMETER); only CloudFormation
    writes it; agents have none; another cluster's is out of reach."""
    foreign = cluster.arn("ssm", "parameter/k3s-infra/another-cluster/node-bundle/server")
    bundles = {n.stack_id: n.boot["BUNDLE_PARAMETERS"].split() for n in cluster.of_role("server-init", "server")}
    for node in cluster.of_role("server-init", "server"):
        others = [name for stack_id, names in bundles.items() if stack_id != node.stack_id for name in names]
        for name in bundles[node.stack_id]:
            own = cluster.arn("ssm", "parameter" + name)
            check(node, [("read its bundle", Request("ssm:GetParameter", own), True),
                         ("overwrite its bundle", Request("ssm:PutParameter", own), False)])
        check(node, [("read another cluster's bundle", Request("ssm:GetParameter", foreign), False),
                     *((f"read {name}", Request("ssm:GetParameter", cluster.arn("ssm", "parameter" + name)), False)
                       for name in others)])
    bundles = {name for names in bundles.values() for name in names}
    for node in cluster.of_role("agent"):
        check(node, [(f"agent reads {name}", Request("ssm:GetParameter", cluster.arn("ssm", "parameter" + name)), False)
                     for name in bundles])


def test_each_node_signals_its_own_stack_only(cluster):
    """SignalResource is authorised on the stack ARN (arn:aws:cloudformation:<region>:<account>:
    stack/<name>/<id>); the name is boot.env's SIGNAL_STACK."""
    stack = lambda name: cluster.arn("cloudformation", f"stack/{name}/{UUID}")  # noqa: E731
    servers = {n.boot["SIGNAL_STACK"] for n in cluster.of_role("server-init", "server")}
    agents = {n.boot["SIGNAL_STACK"] for n in cluster.of_role("agent")}
    foreign = f"another-cluster-{cluster.nodes[0].stack_id}-1A2B3C4D5E6F"
    for node in cluster.nodes:
        others = agents if node.role != "agent" else servers
        check(node, [("signal own stack", Request("cloudformation:SignalResource", stack(node.boot["SIGNAL_STACK"])),
                      True),
                     ("signal another cluster's stack", Request("cloudformation:SignalResource", stack(foreign)),
                      False),
                     *((f"signal {name}", Request("cloudformation:SignalResource", stack(name)), False)
                       for name in others)])


def _group_request(cluster: Cluster, action: str, node: Node, tags: dict[str, str] | None = None) -> Request:
    tags = node.group_tags if tags is None else tags
    context = {f"{prefix}:ResourceTag/{k}": v for k, v in tags.items() for prefix in ("aws", "autoscaling")}
    return Request(action, cluster.group_arn(node), context)


def test_health_and_lifecycle_reach_only_groups_of_the_own_role(cluster):
    """An agent must never mark a server unhealthy (etcd quorum); nobody reaches another cluster."""
    for node in cluster.nodes:
        foreign = dict(node.group_tags, **{"k3s-infra:cluster": "another-cluster"})
        decisions = [("report own health", _group_request(cluster, "autoscaling:SetInstanceHealth", node), True),
                     ("complete own lifecycle action",
                      _group_request(cluster, "autoscaling:CompleteLifecycleAction", node), True),
                     ("health of another cluster's group",
                      _group_request(cluster, "autoscaling:SetInstanceHealth", node, foreign), False),
                     ("lifecycle of another cluster's group",
                      _group_request(cluster, "autoscaling:CompleteLifecycleAction", node, foreign), False)]
        for other in cluster.nodes:
            if (other.role == "agent") != (node.role == "agent"):
                decisions.append((f"health of {other.stack_id}",
                                  _group_request(cluster, "autoscaling:SetInstanceHealth", other), False))
                if node.role == "agent":
                    decisions.append((f"lifecycle of {other.stack_id}",
                                      _group_request(cluster, "autoscaling:CompleteLifecycleAction", other), False))
        check(node, decisions)


def test_snapshots_stay_in_the_folder_k3s_uses(cluster):
    for node in cluster.nodes:
        if node.role == "agent" or "etcd-s3-bucket" not in node.k3s:
            continue
        bucket, folder = node.k3s["etcd-s3-bucket"], node.k3s["etcd-s3-folder"]
        obj = lambda key: f"arn:aws:s3:::{bucket}/{key}"  # noqa: E731
        listing = lambda **context: Request("s3:ListBucket", f"arn:aws:s3:::{bucket}", context)  # noqa: E731
        check(node, [
            *((f"{verb} a snapshot", Request(f"s3:{verb}", obj(f"{folder}/etcd-snapshot-1")), True)
              for verb in ("PutObject", "GetObject", "DeleteObject")),
            ("put outside the folder", Request("s3:PutObject", obj("elsewhere/etcd-snapshot-1")), False),
            ("put beside the folder", Request("s3:PutObject", obj(f"{folder}-other/x")), False),
            ("read another bucket", Request("s3:GetObject", f"arn:aws:s3:::other-bucket/{folder}/x"), False),
            # K3s checks the bucket first (HeadBucket: ListBucket without a prefix).
            ("check the bucket", listing(), True),
            ("list the folder", listing(**{"s3:prefix": f"{folder}/"}), True),
            ("list the folder as K3s does", listing(**{"s3:prefix": folder}), True),
            ("list the bucket root with an empty prefix", listing(**{"s3:prefix": ""}), False),
            # Unavoidable: S3 sends no s3:prefix for HeadBucket nor for a listing without a
            # prefix, and K3s needs HeadBucket (BucketExists) before any snapshot.
            ("list the bucket without a prefix", listing(), True),
            ("list elsewhere", listing(**{"s3:prefix": "elsewhere/"}), False),
        ])
    for node in cluster.of_role("agent"):
        check(node, [("agent reads snapshots", Request("s3:GetObject", "arn:aws:s3:::any/etcd/x"), False)])


def test_the_cluster_key_is_usable_only_through_secrets_manager(cluster):
    key = cluster.root_values["ClusterData.Outputs.ClusterKeyArn"]
    via = lambda service: {"kms:ViaService": f"{service}.{cluster.env.region}.amazonaws.com"}  # noqa: E731
    for node in cluster.nodes:
        check(node, [("decrypt via Secrets Manager", Request("kms:Decrypt", key, via("secretsmanager")), True),
                     ("decrypt directly", Request("kms:Decrypt", key), False),
                     ("decrypt via SSM", Request("kms:Decrypt", key, via("ssm")), False),
                     # Only the first server writes secrets (PutSecretValue needs a data key).
                     ("encrypt with a new data key via Secrets Manager",
                      Request("kms:GenerateDataKey", key, via("secretsmanager")), node.role == "server-init")])


def test_add_on_values_reach_servers_only_and_the_drain_queue_only_the_handler(cluster):
    arns = [entry.split("=", 2)[2] for n in cluster.of_role("server-init")
            for entry in n.boot.get("ADDON_SECRETS", "").split()]
    queue = cluster.root_values["Draining.Outputs.DrainQueueArn"]
    other = cluster.arn("sqs", "someone-else")
    for node in cluster.nodes:
        check(node, [*((f"read add-on secret {arn}", secret_read(arn), node.role != "agent") for arn in arns),
                     *((f"{verb} drain messages", Request(f"sqs:{verb}", queue), False)
                       for verb in ("ReceiveMessage", "DeleteMessage")),
                     ("receive from another queue", Request("sqs:ReceiveMessage", other), False)])
    handler = cluster.policies_of(NTH_SERVICE_ACCOUNT)
    assert (handler is not None) == cluster.env.draining
    if handler:
        check((NTH_SERVICE_ACCOUNT, handler), [
            ("receive drain messages", Request("sqs:ReceiveMessage", queue), True),
            ("delete drain messages", Request("sqs:DeleteMessage", queue), True),
            ("receive from another queue", Request("sqs:ReceiveMessage", other), False),
            ("send to its queue", Request("sqs:SendMessage", queue), False),
            ("purge its queue", Request("sqs:PurgeQueue", queue), False),
            ("read a secret", secret_read(cluster.of_role("server-init")[0].boot["TOKEN_SECRET"]), False)])


def test_the_handler_completes_lifecycle_actions_of_this_clusters_groups_only(cluster):
    """Queue-processor mode completes the termination hook of the node's group (its README);
    Auto Scaling authorises it per group with autoscaling:ResourceTag/<key>."""
    handler = cluster.policies_of(NTH_SERVICE_ACCOUNT)
    if handler is None:
        return
    decisions = []
    for group in cluster.nodes:
        foreign = dict(group.group_tags, **{"k3s-infra:cluster": "another-cluster"})
        untagged = {k: v for k, v in group.group_tags.items() if k != "k3s-infra:cluster"}
        decisions += [
            (f"complete {group.stack_id}'s hook",
             _group_request(cluster, "autoscaling:CompleteLifecycleAction", group), True),
            (f"complete another cluster's {group.stack_id}",
             _group_request(cluster, "autoscaling:CompleteLifecycleAction", group, foreign), False),
            (f"complete an untagged {group.stack_id}",
             _group_request(cluster, "autoscaling:CompleteLifecycleAction", group, untagged), False),
            *((f"{action} {group.stack_id}", _group_request(cluster, f"autoscaling:{action}", group), False)
              for action in ("SetInstanceHealth", "SetDesiredCapacity", "TerminateInstanceInAutoScalingGroup"))]
    check((NTH_SERVICE_ACCOUNT, handler), decisions)


def test_the_cloud_controller_changes_only_its_own_resources(cluster):
    """kubernetes.io/cluster/<name>: `owned` marks what the controller made, `shared` what it may
    use (cloud-provider-aws tagging); CloudFormation's resources never carry `owned`."""
    key = f"kubernetes.io/cluster/{cluster.env.stack_name}"
    sg = cluster.arn("ec2", "security-group/sg-0123456789abcdef0")
    lb = cluster.arn("elasticloadbalancing", "loadbalancer/net/a1b2c3/0123456789abcdef")
    tagged = lambda value: {f"aws:ResourceTag/{key}": value}  # noqa: E731
    on_create = {"ec2:CreateAction": "CreateSecurityGroup", f"aws:RequestTag/{key}": "owned", "aws:TagKeys": [key]}
    service_role = cluster.arn("iam", "role/aws-service-role/elasticloadbalancing.amazonaws.com/"
                                      "AWSServiceRoleForElasticLoadBalancing", region=False)
    for node in cluster.nodes:
        server = node.role != "agent"
        check(node, [
            ("create a security group", Request("ec2:CreateSecurityGroup", "*"), server),
            ("tag its new security group", Request("ec2:CreateTags", sg, on_create), server),
            ("tag an existing security group", Request("ec2:CreateTags", sg, {f"aws:RequestTag/{key}": "owned",
                                                                             "aws:TagKeys": [key]}), False),
            ("open a node group port", Request("ec2:AuthorizeSecurityGroupIngress", sg, tagged("shared")), server),
            ("open a port on its own group", Request("ec2:AuthorizeSecurityGroupIngress", sg, tagged("owned")), server),
            ("tag its new load balancer", Request("elasticloadbalancing:AddTags", lb, {
                "elasticloadbalancing:CreateAction": "CreateLoadBalancer", f"aws:RequestTag/{key}": "owned",
                "aws:TagKeys": [key]}), server),
            ("tag the API load balancer", Request("elasticloadbalancing:AddTags", lb, {
                f"aws:RequestTag/{key}": "owned", "aws:TagKeys": [key]}), False),
            ("open a port on an untagged group", Request("ec2:AuthorizeSecurityGroupIngress", sg), False),
            ("delete its own group", Request("ec2:DeleteSecurityGroup", sg, tagged("owned")), server),
            ("delete a shared group", Request("ec2:DeleteSecurityGroup", sg, tagged("shared")), False),
            ("delete its own load balancer", Request("elasticloadbalancing:DeleteLoadBalancer", lb,
                                                     tagged("owned")), server),
            ("delete the API load balancer", Request("elasticloadbalancing:DeleteLoadBalancer", lb), False),
            ("create ELB's service-linked role", Request("iam:CreateServiceLinkedRole", service_role, {
                "iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}), server),
            ("create another service-linked role", Request("iam:CreateServiceLinkedRole", service_role, {
                "iam:AWSServiceName": "autoscaling.amazonaws.com"}), False),
        ])


def test_only_the_autoscaler_scales_and_only_groups_tagged_for_it(cluster):
    """No node scales anything; the autoscaler's role (when it is on) scales every agent pool,
    which carries its discovery tag, and no server group nor another cluster's pool."""
    scaling = ("SetDesiredCapacity", "TerminateInstanceInAutoScalingGroup")
    for node in cluster.nodes:
        check(node, [(f"{a} {g.stack_id}", _group_request(cluster, f"autoscaling:{a}", g), False)
                     for g in cluster.nodes for a in scaling])
    autoscaler = cluster.policies_of(AUTOSCALER_SERVICE_ACCOUNT)
    assert (autoscaler is not None) == cluster.env.autoscaling
    if autoscaler:
        decisions = []
        for group in cluster.nodes:
            foreign = {k.replace(cluster.env.stack_name, "another-cluster"): v for k, v in group.group_tags.items()}
            decisions += [*((f"{a} {group.stack_id}", _group_request(cluster, f"autoscaling:{a}", group),
                             group.role == "agent") for a in scaling),
                          (f"scale another cluster's {group.stack_id}",
                           _group_request(cluster, "autoscaling:SetDesiredCapacity", group, foreign), False)]
        check((AUTOSCALER_SERVICE_ACCOUNT, autoscaler), decisions)


def test_every_policy_document_uses_the_current_language_version(cluster):
    """2012-10-17: without it IAM applies the 2008 language (no policy variables; AWS: "Always
    include a Version element", reference_policies_elements_version.html)."""
    for node in cluster.nodes:
        assert [p["Version"] for p in node.policies] == ["2012-10-17"] * len(node.policies)


def test_only_ec2_instances_can_assume_a_node_role(cluster):
    """The trust policy of a role for EC2 instances names the service principal
    ec2.amazonaws.com and nothing else (IAM User Guide, "Use an IAM role to grant permissions
    to applications running on Amazon EC2 instances"); roles sit under the project's path."""
    for node in cluster.nodes:
        (statement,) = node.iam_role["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Effect"] == "Allow" and statement["Principal"] == {"Service": ["ec2.amazonaws.com"]}
        assert statement["Action"] in ("sts:AssumeRole", ["sts:AssumeRole"]) and "Condition" not in statement
        assert node.iam_role["Path"] == "/k3s-infra/"
    profiles = [r["Properties"] for r in cluster.templates["NodeIam"]["Resources"].values()
                if r["Type"] == "AWS::IAM::InstanceProfile"]
    assert profiles and all(p["Path"] == "/k3s-infra/" for p in profiles)


def test_each_node_tags_only_its_own_instance_and_only_ready(cluster):
    """The boot's last step (issue 21.7): ``aws ec2 create-tags --resources <own instance ID>
    --tags Key=k3s-infra:ready,Value=true``. EC2 authorises CreateTags on the instance ARN
    (arn:aws:ec2:<region>:<account>:instance/<id>) with the tags asked for as
    aws:RequestTag/<key> and aws:TagKeys, the instance's own ec2:InstanceID, and, for role
    credentials an instance got from its profile, that instance's ARN as ec2:SourceInstanceARN
    (EC2 User Guide, "Condition keys for Amazon EC2"; IAM User Guide, policy variables)."""
    instance = lambda instance_id: cluster.arn("ec2", f"instance/{instance_id}")  # noqa: E731
    own, other = "i-0123456789abcdef0", "i-0fedcba9876543210"

    def tag(target: str, tags: dict[str, str], source: str | None = own) -> Request:
        context = {"ec2:InstanceID": target, "aws:TagKeys": list(tags),
                   **{f"aws:RequestTag/{k}": v for k, v in tags.items()}}
        if source is not None:
            context["ec2:SourceInstanceARN"] = instance(source)
        return Request("ec2:CreateTags", instance(target), context)

    ready = {"k3s-infra:ready": "true"}
    for node in cluster.nodes:
        check(node, [
            ("tag own instance ready", tag(own, ready), True),
            ("tag another instance ready", tag(other, ready), False),
            ("tag own instance with its role", tag(own, {"k3s-infra:role": "server"}), False),
            ("tag own instance for a cloud controller",
             tag(own, {f"kubernetes.io/cluster/{cluster.env.stack_name}": "owned"}), False),
            ("tag own instance not ready", tag(own, {"k3s-infra:ready": "false"}), False),
            ("tag own instance ready and more", tag(own, {**ready, "k3s-infra:role": "server"}), False),
            ("tag ready without instance credentials", tag(own, ready, source=None), False),
            ("tag an instance of another account ready",
             Request("ec2:CreateTags", f"arn:aws:ec2:{cluster.env.region}:999999999999:instance/{own}",
                     tag(own, ready).context), False),
        ])
