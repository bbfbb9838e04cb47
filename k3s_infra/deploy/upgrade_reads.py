"""What the upgrade pre-flight (deploy/upgrade_checks.py) reads of a running cluster: the K3s
version the stack pins, its servers as AWS sees them, and through the Kubernetes API
(deploy/kubeapi.py) readiness, nodes and metrics. Plain data out; the rules judge it."""

from __future__ import annotations

from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from k3s_infra.config import architectures
from k3s_infra.deploy import quorum
from k3s_infra.deploy.groups import group_of, parameters
from k3s_infra.deploy.kubeapi import KubeApi, KubeApiError, get_json
from k3s_infra.model import naming
from k3s_infra.model import outputs as o

VERSION_METADATA = "k3s-version"  # set on every staged binary (deploy/artifacts.py _upload)


def deployed_version(aws, root: dict) -> str | None:
    """The K3s version of the binary the root stack pins: its digest is a root parameter
    (outputs.K3S_BINARY_SHA256S) naming the staged object, whose metadata says the version
    (S3 HeadObject returns user metadata without its x-amz-meta- prefix:
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html). None when it cannot be read."""
    pinned = parameters(root)
    for arch, key in o.K3S_BINARY_SHA256S.items():
        digest = pinned.get(key)
        if not digest:
            continue
        name = naming.k3s_binary_name(architectures.K3S_NAMES[arch])
        try:
            head = aws.s3.head_object(Bucket=aws.env.artifact_bucket,
                                      Key=naming.k3s_artifact_key(aws.env, digest, name))
        except (ClientError, BotoCoreError):
            continue
        version = head.get("Metadata", {}).get(VERSION_METADATA)
        if version:
            return version
    return None


def server_problems(aws, root: dict) -> tuple[int, list[str]]:
    """(servers the groups want, what is wrong with them): every server in service, healthy in
    its group and behind the API target group, as many as wanted (deploy/quorum.py)."""
    groups, target_group = [], None
    for logical in quorum.SERVER_STACKS:
        stack, group = group_of(aws, root["StackId"], logical)
        if group is not None:
            groups.append(group)
        target_group = target_group or parameters(stack).get(o.API_TARGET_GROUP)
    if not groups:
        return aws.env.servers.count, ["the server groups cannot be found"]
    expected = sum(int(g["DesiredCapacity"]) for g in groups)
    if not target_group:
        return expected, ["the API target group cannot be found"]
    targets = aws.elbv2.describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
    return expected, quorum.servers_not_ready(groups, targets)


def node_versions(items: list[dict]) -> list[tuple[str, str]]:
    """(node name, kubelet version) of /api/v1/nodes items. K3s reports its own version as the
    kubelet's ('v1.33.5+k3s1'); a server runs the API server of that same binary."""
    return [(node.get("metadata", {}).get("name", "?"), version) for node in items
            if (version := node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion"))]


@dataclass(frozen=True)
class ApiReads:
    """What the API answered; None where it did not, with the reason in ``errors``."""
    readyz: str | None = None
    nodes: list[dict] | None = None
    metrics: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


def read_api(api: KubeApi) -> ApiReads:
    """/readyz?verbose (its body also when it answers 500: the failing checks are listed there),
    /api/v1/nodes and /metrics."""
    found: dict = {"errors": {}}
    try:
        status, body = api.get("/readyz?verbose")
        if status not in (200, 500):  # 500: not ready, the failing checks listed; anything else: no answer
            raise KubeApiError(f"GET /readyz on {api.server}: HTTP {status}: {body[:200].strip()}")
        found["readyz"] = body
        doc = get_json(api, "/api/v1/nodes")
        if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
            raise KubeApiError(f"GET /api/v1/nodes on {api.server}: not a NodeList")
        found["nodes"] = doc["items"]
        status, body = api.get("/metrics")
        if status != 200:
            raise KubeApiError(f"GET /metrics on {api.server}: HTTP {status}")
        found["metrics"] = body
    except KubeApiError as exc:  # the first failure stops the rest: the same reason would repeat
        found["errors"] = {key: str(exc) for key in ("readyz", "nodes", "metrics") if key not in found}
    return ApiReads(**found)
