"""What a restore drill (deploy/drill.py) runs on: the drill's environment, derived in memory
from the cluster's, and the two fences around its AWS clients.

The drill environment is the cluster's file with only these changes, validated as a file would be:
- its own stack, ``naming.drill_stack_name`` (``<stack>-drill``): every name k3s-infra derives
  (secrets, SSM parameters, roles, the artifact prefix, the lock, the cloud controller's cluster
  tag) follows the stack name, so none is the cluster's; tagged ``naming.DRILL_TAG`` = the
  cluster's stack, the only mark by which a drill deletes a stack it did not just create;
- ``protected: false`` (destroyed whole at the end), ``api.scheme: internal`` (no public door;
  ``api.allowed_cidrs`` kept, admitting to the internal load balancer only; the drill itself reads
  its API through Run Command on a server: drill_api.look), a brought network's ``public_subnets``
  dropped (only an internet-facing API uses them);
- the same servers (count, type, K3s), so recovery time is measured on the cluster's shape;
- every agent pool at 0 nodes and no cluster autoscaler; servers tainted (control-plane
  NoSchedule): restored workloads without a toleration for it find no node. Those with one (the
  cloud controller, node termination handler, DaemonSets tolerating everything) do run, with the
  snapshot's Secrets (docs/operations.md "Restore drills");
- no ``workload_roles``: a restored ServiceAccount names the cluster's role ARN, whose trust
  names the cluster's OIDC issuer, not the drill's, so copies would go unused.

Fences (botocore ``before-parameter-build``, raised before a request is signed or sent):
``read_only`` lets through only Describe/Get/List/Head calls on the cluster's side; ``fenced``
refuses, on the drill's side, any other call that names one of the cluster's own resources
(stacks, buckets, secrets, key, groups, node parameters) or an artifact-bucket key outside
``<drill stack>/``. Functions return data; nothing prints."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from k3s_infra.config import Environment
from k3s_infra.config.types import STACK_NAME_MAX
from k3s_infra.deploy import DeployError, Refused
from k3s_infra.deploy.aws import Aws
from k3s_infra.deploy.groups import nested_stacks, outputs
from k3s_infra.model import naming
from k3s_infra.model import outputs as o

# Operation names that only read (botocore's model names: DescribeStacks, GetObject, HeadBucket...).
READS = ("Describe", "Get", "List", "Head")
# The cluster's own resources among the root's and node stacks' outputs (the network's are shared).
OWNED_OUTPUTS = (o.TOKEN_SECRET, o.AGENT_TOKEN_SECRET, o.KUBECONFIG_SECRET, o.SNAPSHOT_BUCKET, o.CLUSTER_KEY,
                 o.ISSUER_BUCKET, o.API_LOAD_BALANCER, o.API_TARGET_GROUP, o.PUBLIC_API_LOAD_BALANCER,
                 o.PUBLIC_API_TARGET_GROUP, o.DRAIN_QUEUE_URL, o.DRAIN_QUEUE_ARN, o.OIDC_PROVIDER,
                 o.AUTO_SCALING_GROUP, o.LAUNCH_TEMPLATE)
# Parameters that change nothing they name: a copy's source (read), tags (the drill's stack carries
# the cluster's name as its DRILL_TAG value).
NAMES_NOTHING = frozenset({"CopySource", "Tags"})
# The artifact bucket is shared: a call that is not a read names objects there only under the drill's
# prefix, by Key (every keyed S3 call, PutObjectRetention and UpdateObjectEncryption as much as PutObject:
# a list of write operations misses those S3 adds) or, for DeleteObjects, in Delete.Objects.
OBJECT_KEYS = ("Key", "Delete")


class Fenced(DeployError):
    """A call the drill's fences refused: it would have changed the cluster's side."""


def reads(operation: str) -> bool:
    return operation.startswith(READS)


def drill_environment(env: Environment) -> Environment:
    """The drill's environment (see the module's doc); Refused when its stack name cannot be made."""
    name = naming.drill_stack_name(env.stack_name)
    if len(name) > STACK_NAME_MAX or name == env.stack_name:  # the second cannot happen: said, not assumed
        raise Refused(f"deploy.stack_name: a drill needs the stack name {name!r}, longer than the "
                      f"{STACK_NAME_MAX} characters CloudFormation allows; shorten the stack name")
    data = env.model_dump(mode="json")
    data["deploy"]["stack_name"] = name
    data["protected"] = False
    data["api"] = {**data["api"], "scheme": "internal"}
    if not env.network.managed:
        data["network"]["public_subnets"] = []
    data["k3s"]["server_taint"] = True
    for pool in data["agent_pools"]:
        pool.update(min_size=0, desired=0)
    data["addons"]["cluster_autoscaler"]["enabled"] = False
    data["workload_roles"] = []
    drill = Environment.model_validate(data)
    # The tag's key has k3s-infra's own prefix, which deploy.tags refuses from a file: added here.
    tags = {**drill.deploy.tags, naming.DRILL_TAG: env.stack_name}
    return drill.model_copy(update={"deploy": drill.deploy.model_copy(update={"tags": tags})})


def drill_of(stack: dict | None) -> str | None:
    """The cluster a described stack is a drill of (its DRILL_TAG), or None."""
    return next((t.get("Value") for t in (stack or {}).get("Tags", []) if t.get("Key") == naming.DRILL_TAG), None)


def cluster_resources(aws, root: dict) -> frozenset[str]:
    """The cluster's own names and IDs the drill must never change: its stacks (names, IDs), the
    owned outputs of the root and of every nested stack, its node-owned SSM parameters, and the
    instances its groups run now (a Run Command or session of the drill's may name none)."""
    found = {aws.env.stack_name, root["StackId"], naming.cluster_state_parameter(aws.env),
             naming.restore_request_parameter(aws.env)}
    found.update(v for k, v in outputs(root).items() if k in OWNED_OUTPUTS)
    groups = []
    for _, stack in nested_stacks(aws.cloudformation, root["StackId"]):
        found.update(v for v in (stack.get("StackId"), stack.get("StackName")) if v)
        found.update(v for k, v in outputs(stack).items() if k in OWNED_OUTPUTS)
        groups += [v for k, v in outputs(stack).items() if k == o.AUTO_SCALING_GROUP and v]
    if groups:
        pages = aws.autoscaling.get_paginator("describe_auto_scaling_groups").paginate(AutoScalingGroupNames=groups)
        found.update(i["InstanceId"] for page in pages for g in page["AutoScalingGroups"] for i in g["Instances"])
    return frozenset(v for v in found if v)


class _Guarded(Aws):
    """Aws whose every client (but STS's identity check) runs ``guard(operation, params)`` first."""

    def __init__(self, env: Environment, session, guard: Callable[[str, dict], None]):
        super().__init__(env, session)
        self._guard = guard

    def client(self, service: str):
        client = super().client(service)

        def check(model, params, **_) -> None:
            self._guard(model.name, params)

        # First among the handlers of every operation (a debugging or test hook may not run before it).
        client.meta.events.register_first("before-parameter-build.*.*", check)
        return client


def read_only(aws: Aws) -> Aws:
    """The cluster's side of a drill: the same environment and session, reads only."""
    def guard(operation: str, params: dict) -> None:
        if not reads(operation):
            raise Fenced(f"drill refused {operation} on {aws.env.stack_name}'s side: the drill only reads the "
                         f"cluster it rehearses")
    return _Guarded(aws.env, aws.session, guard)


def fenced(drill_env: Environment, session, cluster: frozenset[str]) -> Aws:
    """The drill's side: any call that changes something must name none of ``cluster`` (a
    ``CopyObject``'s source and tags aside: NAMES_NOTHING) and, in the shared artifact bucket, only keys under
    the drill stack's prefix."""
    prefix = f"{naming.cluster_name(drill_env)}/"

    def guard(operation: str, params: dict) -> None:
        if reads(operation):
            return
        for value in _strings({k: v for k, v in params.items() if k not in NAMES_NOTHING}):
            if value in cluster:
                raise Fenced(f"drill refused {operation} naming {value}: it belongs to the cluster, not the drill")
        if params.get("Bucket") == drill_env.artifact_bucket and any(k in params for k in OBJECT_KEYS):
            keys = [params.get("Key")] if "Key" in params else [
                item.get("Key") for item in (params.get("Delete") or {}).get("Objects", [])]
            outside = [k for k in keys if not isinstance(k, str) or not k.startswith(prefix)]
            if outside:
                raise Fenced(f"drill refused {operation} of s3://{drill_env.artifact_bucket}/{outside[0]}: "
                             f"outside the drill's prefix {prefix}")
    return _Guarded(drill_env, session, guard)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
