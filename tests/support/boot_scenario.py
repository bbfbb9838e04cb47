"""The AWS and cluster side of a boot sandbox scenario: auto scaling groups as
DescribeAutoScalingGroups answers them, etcd members as K3s lists them, instances as EC2
knows them. Built from the rendered node stacks wherever the templates say (group tags,
lifecycle hooks), never from what the node script expects."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def member_name(instance_id: str) -> str:
    """An etcd member's name as K3s gives it: <node name>-<8 hex> (k3s-io/k3s pkg/etcd/etcd.go,
    setName); nodes are named by instance ID (boot.sh discover). The same as the stubs' own."""
    return f"{instance_id}-{hashlib.sha256(instance_id.encode()).hexdigest()[:8]}"


def member(instance_id: str, learner: bool = False) -> dict:
    """An etcd member (etcdserverpb.Member's fields) of a K3s server on that instance."""
    name = member_name(instance_id)
    digest = hashlib.sha256(name.encode()).digest()
    address = f"10.0.{digest[0]}.{digest[1]}"
    return {"ID": int.from_bytes(digest[:8], "big"), "name": name, "peerURLs": [f"https://{address}:2380"],
            "clientURLs": [f"https://{address}:2379"], "isLearner": learner}


def group_instance(instance_id: str, lifecycle: str = "InService", health: str = "Healthy",
                   zone: str = "eu-west-1b") -> dict:
    """An Instance of DescribeAutoScalingGroups
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Instance.html)."""
    return {"InstanceId": instance_id, "InstanceType": "m6i.large", "AvailabilityZone": zone,
            "LifecycleState": lifecycle, "HealthStatus": health,
            "LaunchTemplate": {"LaunchTemplateId": "lt-0123456789abcdef0", "LaunchTemplateName": "k3s-nodes",
                               "Version": "1"},
            "ProtectedFromScaleIn": False}


@dataclass(frozen=True)
class Group:
    """An auto scaling group: its description (API_AutoScalingGroup.html) and its hooks' names."""

    description: dict
    hooks: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return self.description["AutoScalingGroupName"]


def node_group(template: dict, name: str, instances: list[tuple[str, str, str]] | list[str],
               desired: int | None = None) -> Group:
    """The group `name` of a rendered node stack as AWS describes it once created: the
    template's tags (Fn::Sub of ${AWS::StackName} resolved with `name`) and lifecycle hooks,
    these instances ((id, lifecycle state, health) or bare IDs: InService and Healthy), and
    `desired` (default: as many as the instances)."""
    (resource,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
    stack_name = name
    properties = resource["Properties"]

    def value(text):
        if isinstance(text, dict):
            return text["Fn::Sub"].replace("${AWS::StackName}", stack_name)
        return str(text)

    tags = [{"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": tag["Key"], "Value": value(tag["Value"]),
             "PropagateAtLaunch": tag.get("PropagateAtLaunch") in (True, "true")} for tag in properties.get("Tags", [])]
    members = [group_instance(*i) if isinstance(i, tuple) else group_instance(i) for i in instances]
    desired = len(members) if desired is None else desired
    description = {
        "AutoScalingGroupName": name,
        "AutoScalingGroupARN": f"arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:"
                               f"0a1b2c3d-0000-4000-8000-000000000000:autoScalingGroupName/{name}",
        "MinSize": min(desired, 1), "MaxSize": max(desired, 1) + 1, "DesiredCapacity": desired,
        "DefaultCooldown": 300, "AvailabilityZones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
        "LoadBalancerNames": [], "TargetGroupARNs": [], "HealthCheckType": properties.get("HealthCheckType", "EC2"),
        "HealthCheckGracePeriod": int(properties.get("HealthCheckGracePeriod", 300)), "Instances": members,
        "CreatedTime": "2025-01-01T00:00:00+00:00", "SuspendedProcesses": [], "EnabledMetrics": [],
        "Tags": tags, "TerminationPolicies": ["Default"], "NewInstancesProtectedFromScaleIn": False,
        "CapacityRebalance": False,
    }
    hooks = tuple(h["LifecycleHookName"] for h in properties.get("LifecycleHookSpecificationList", []))
    return Group(description, hooks)


def lone_group(instance_id: str, lifecycle: str = "InService") -> Group:
    """The group that launched a booting node, when the scenario names none: its only instance."""
    description = {"AutoScalingGroupName": "k3s-node-group", "DesiredCapacity": 1, "MinSize": 1, "MaxSize": 2,
                   "Instances": [group_instance(instance_id, lifecycle)], "Tags": []}
    return Group(description)


@dataclass
class Scenario:
    """What a boot sandbox run meets (Sandbox.run's keyword arguments).

    The boot's world: marker None: no cluster-state parameter (ParameterNotFound);
    api_up_after: the API behind the NLB answers after that many probes (None: never);
    targets: the API target group's target states (bare states get made-up IDs, or (ID, state)
    pairs); own_target: this instance's state there (None: not registered yet); objects: (key,
    LastModified) in the snapshot bucket; restore_request: the restore request's value;
    metadata: the launch template's MetadataOptions (default: IMDSv2 required); secure_tokens:
    the token secrets hold what the first server published (else the short values Secrets
    Manager generated); publish_after: they hold short values for that many reads, then the
    secure ones; binary: what the artifact bucket's K3s object holds instead of the genuine
    (stub) K3s, images: its airgap images object's; download_failures: reads of the staged K3s files that find no connection first;
    denied_parameters: SSM names the instance role may not read; denied_secrets: secret ARNs it
    may not write; unreachable: AWS services that do not answer; restore_hangs: K3s's
    --cluster-reset never returns; systemctl_failures: systemctl verbs that fail;
    imds_token_failures, imds_get_failures: the metadata service answers that many token PUTs,
    metadata GETs with 503 first; bundle: the bundle parameter's value instead of the rendered
    one (a tampered bundle); vanishing_parameters: SSM parameters someone else deletes right
    after the node first read them; signal_failures: SignalResource calls that find no
    connection before one gets through; targets_after: (reads, targets): from DescribeTargetHealth
    call reads + 1 on, the target group holds these targets instead (a server that got healthy,
    or registered, meanwhile).

    The node and its cluster: instance_id; node_ready: K3s gets ready (the kubelet healthy, the
    API ready); node_appears: the Node registers once it is; members: instance IDs of the other
    etcd members (voters); promote_after: this server's own member (a learner when it joins)
    is promoted after that many /db/info reads (None: never); nodes: the Nodes of other
    instances (default: one per member); instances: EC2 states by instance ID (default: every
    instance the scenario names runs); groups: the auto scaling groups (boot_scenario.Group;
    default: one holding only this instance); snapshot_fails: `k3s etcd-snapshot save` fails;
    local_k3s_up: this server's K3s answers once started (False: it is down); gone_after:
    instances that EC2 lists as they are for that many DescribeInstances calls, then as
    terminated (an instance its group holds in Terminating:Wait while its hooks run:
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/lifecycle-hooks-overview.html);
    kubectl_hangs: `k3s kubectl` never answers (a black-holed API connection);
    service_account_keys: the sandbox's signing keys (service_accounts.signing_key numbers) whose
    JWKS the API serves; keys_after: (reads, keys): from JWKS read reads + 1 on, these instead
    (a rotation: https://docs.k3s.io/cli/certificate); pods: (namespace, name, service account,
    has AWS_ROLE_ARN) the API lists; webhook_ready: the webhook Deployment's ready replicas
    (None: no such Deployment); addons_body: the bytes the add-ons' object holds instead of
    what the deployer uploaded (a tampered object).

    The run: mode "boot" (cloud-init's runcmd) or "watch" (the server's watch service, after a
    boot that completed: bundle installed, K3s installed and running) for watch_rounds rounds,
    K3s counted down after unhealthy_after seconds; lifecycle_state: the target lifecycle state
    IMDS serves (None: the key is absent); join/token attempts, start_timeout, retry_base,
    retry_max, boot_deadline: the script's test hooks (K3S_INFRA_*); shared: the state of an
    earlier run whose AWS side (parameters, objects, groups, reports, tags) and cluster data
    (Secrets) this one continues."""

    marker: str | None = None
    api_up_after: int | None = None
    unreachable: tuple[str, ...] = ()
    join_attempts: int = 6
    targets: tuple = ()
    restore_request: str | None = None
    objects: tuple[tuple[str, str], ...] = ()
    node_ready: bool = True
    signal_waited_for: bool = True
    metadata: dict | None = None
    secure_tokens: bool = True
    token_attempts: int = 3
    arch: str = "x86_64"
    binary: str | None = None
    images: str | None = None
    download_failures: int = 0
    publish_after: int | None = None
    own_target: str | None = None
    denied_parameters: tuple[str, ...] = ()
    denied_secrets: tuple[str, ...] = ()
    restore_hangs: bool = False
    systemctl_failures: tuple[str, ...] = ()
    start_timeout: int = 20
    imds_token_failures: int = 0
    imds_get_failures: int = 0
    bundle: str | None = None
    vanishing_parameters: tuple[str, ...] = ()
    signal_failures: int = 0
    instance_id: str | None = None
    node_appears: bool = True
    members: tuple[str, ...] = ()
    promote_after: int | None = 0
    nodes: tuple[str, ...] | None = None
    instances: dict[str, str] | None = None
    groups: tuple[Group, ...] | None = None
    snapshot_fails: bool = False
    local_k3s_up: bool = True
    gone_after: dict[str, int] | None = None
    targets_after: tuple | None = None
    kubectl_hangs: bool = False
    service_account_keys: tuple[int, ...] = (0,)
    pods: tuple[tuple[str, str, str, bool], ...] = ()
    webhook_ready: int | None = None
    addons_body: str | None = None
    keys_after: tuple | None = None
    mode: str = "boot"
    watch_rounds: int = 2
    unhealthy_after: int = 0
    lifecycle_state: str | None = None
    retry_base: int = 0
    retry_max: int = 0
    boot_deadline: int | None = None
    shared: dict | None = None
    timeout: int = 60
    # Facts the stacks wrote for the boot (boot.env FACTS), by name: the value read, None for
    # a parameter that does not exist (yet); unnamed facts hold their PARAMETERS value.
    facts: dict | None = None
    # bench/boot_phases.py: the staged K3s files from this S3 endpoint (a moto server) instead
    # of the stub's state, and bash's trace (with times) into this file.
    s3_endpoint: str | None = None
    xtrace: str | None = None


# What a later run continues from an earlier one's state (Scenario.shared).
SHARED = ("parameters", "objects", "groups", "lifecycle_hooks", "health_reports", "lifecycle_actions", "tags",
          "snapshots_saved", "issuer_objects", "cluster_secrets")
