"""Rules of values that Kubernetes, K3s or AWS would reject later (cron schedules: ``cron``) (at boot or deploy),
checked at render so the mistake is reported with its field. Each function returns
the value or raises ValueError with a short reason; each rule cites its source.
"""

from __future__ import annotations

import ipaddress
import json
import re
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from k3s_infra.config.text import shown

# --- DNS names: RFC 1123 labels -----------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def dns_name(value: str) -> str:
    """RFC 1123 host name: labels of 1-63 letters, digits and '-', not starting or ending with '-',
    253 characters in all (https://datatracker.ietf.org/doc/html/rfc1123#section-2.1). Its last
    label is not all digits: "a valid host name can never have the dotted-decimal form #.#.#.#,
    since at least the highest-level component label will be alphabetic" (same section), so
    '300.1.1.1' or '010.000.000.001' is a mistyped address, not a name."""
    if len(value) > 253:
        raise ValueError(f"a DNS name is at most 253 characters, got {len(value)}")
    labels = value.lower().split(".")
    for label in labels:
        if not _DNS_LABEL.match(label):
            raise ValueError(f"{label[:70]!r} is not a DNS label (1-63 letters, digits and '-', "
                             "not starting or ending with '-')")
    if labels[-1].isdigit():
        raise ValueError(f"{value[:80]!r} is neither an IP address (each of 4 parts 0-255, no leading zeros) "
                         "nor a DNS name (whose last label is not all digits)")
    return value


def hostname(value: str) -> str:
    """An Ingress host (Rancher's hostname): a lowercase RFC 1123 subdomain, never an IP address
    (k8s.io/kubernetes pkg/apis/networking/validation/validation.go validateIngressRules:
    "must be a DNS name, not an IP address"; apimachinery IsDNS1123Subdomain is lowercase)."""
    if not isinstance(value, str):
        raise ValueError(f"must be a DNS name, got {type(value).__name__} {shown(value, 40)}")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        raise ValueError(f"{value!r} is an IP address; an ingress host must be a DNS name")
    if value != value.lower():
        raise ValueError(f"{value[:80]!r}: an ingress host is lowercase")
    return dns_name(value)


def dns_name_or_ip(value: str) -> str:
    """A certificate subject alternative name: an IP address or a DNS name (K3s tls-san). K3s
    reads an entry with Go's net.ParseIP, which, like Python's ipaddress, refuses leading zeros
    ('010.0.0.1' would silently become a DNS name that matches nothing): dns_name refuses it."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return dns_name(value)


# --- Kubernetes labels and taints ---------------------------------------------------------------
# Qualified names and label values: k8s.io/apimachinery/pkg/util/validation/validation.go
# (IsQualifiedName: optional DNS-subdomain prefix <= 253, name <= 63; IsValidLabelValue <= 63).

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")

# Labels the kubelet sets itself, or that the boot sets (boot.sh: node-label+ topology.*).
# kubernetes/kubernetes staging/src/k8s.io/kubelet/pkg/apis/well_known_labels.go (kubeletLabels).
SET_BY_NODE = frozenset({
    "kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch", "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/region", "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region", "failure-domain.beta.kubernetes.io/zone",
})
# The kubernetes.io / k8s.io namespaces a kubelet may set with --node-labels (same file,
# kubeletLabelNamespaces; checked by cmd/kubelet/app/options/options.go ValidateKubeletFlags:
# any other kubernetes.io or k8s.io label, node-role.kubernetes.io included, stops the kubelet).
KUBELET_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


def qualified_name(key: str) -> str:
    """What the label key and taint patterns (config.types) cannot say: the prefix is a DNS
    subdomain (labels of at most 63, at most 253 in all) and the name ends in a letter or digit."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        dns_name(prefix)
    if not _NAME.match(name):
        raise ValueError(f"{key[:80]!r}: the name part must be 1-63 letters, digits, '-', '_' or '.', "
                         "starting and ending with a letter or digit")
    return key


def label_value(value: str) -> str:
    if not _LABEL_VALUE.match(value):
        raise ValueError(f"{value[:80]!r} is not a label value: at most 63 letters, digits, '-', '_' or '.', "
                         "starting and ending with a letter or digit")
    return value


def _kubernetes_namespace(namespace: str) -> bool:
    return any(namespace == d or namespace.endswith("." + d) for d in ("kubernetes.io", "k8s.io"))


def node_label_key(key: str) -> str:
    """A label a node may give itself at registration (--node-labels)."""
    qualified_name(key)
    if key in SET_BY_NODE:
        raise ValueError(f"{key!r} is set by the kubelet or the boot itself")
    namespace = key.rpartition("/")[0]
    if _kubernetes_namespace(namespace) and not any(
            namespace == allowed or namespace.endswith("." + allowed) for allowed in KUBELET_NAMESPACES):
        raise ValueError(f"{key!r}: the kubelet refuses kubernetes.io/k8s.io labels outside "
                         f"{' and '.join(KUBELET_NAMESPACES)} (node-role.kubernetes.io is set by an admin, "
                         "not by the node)")
    return key


def taint(value: str) -> str:
    """key[=value]:effect (k8s.io/kubernetes pkg/util/taints/taints.go parseTaint); the Taint
    pattern has checked the shape and the effect, this the key's and value's own rules."""
    key_value = value.rpartition(":")[0]
    key, _, taint_value = key_value.partition("=")
    qualified_name(key)
    if taint_value:
        label_value(taint_value)
    return value


def taint_identity(value: str) -> tuple[str, str]:
    """(key, effect): Kubernetes allows one taint per key and effect on a node."""
    key_value, _, effect = value.rpartition(":")
    return key_value.split("=", 1)[0], effect


# --- AWS tags -------------------------------------------------------------------------------

# The project's own tag prefix; model/naming.py TAG_PREFIX must equal it (config imports
# nothing of the model; tests/unit/config/test_reserved_tags.py pins that they agree).
TAG_PREFIX = "k3s-infra"
# Tag keys something else acts on, as prefixes (lowercase), with who reads them:
RESERVED_TAG_PREFIXES = {
    # AWS: "Do not use aws:, AWS:, or any upper or lowercase combination of such as a prefix
    # for either keys or values" (e.g. Amazon ECS API Reference, Tag).
    "aws:": "AWS reserves the aws: prefix",
    # cloud-provider-aws pkg/providers/v1/tags.go: kubernetes.io/cluster/<cluster> marks what
    # the cloud controller owns; other kubernetes.io/ tags place load balancers.
    "kubernetes.io/": "the AWS cloud controller reads kubernetes.io/ tags",
    # kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md (Auto-Discovery):
    # a group tagged k8s.io/cluster-autoscaler/enabled and .../<cluster> is scaled (etcd
    # servers scaled in), node-template tags describe its nodes.
    "k8s.io/cluster-autoscaler": "the cluster autoscaler scales groups by k8s.io/cluster-autoscaler tags",
    # aws-node-termination-handler's managedTag (catalog.NTH_MANAGED_TAG): drained groups.
    "aws-node-termination-handler/": "the node termination handler drains groups by this tag",
}


def user_tag(key: str, value: str) -> None:
    """Refuse a user tag (deploy.tags, put on every resource) that AWS reserves or that
    k3s-infra, the cloud controller, the autoscaler or the termination handler act on, or whose
    key CloudFormation would read as a function (the tags are a plain map in some templates)."""
    lowered = key.lower()
    reason = template_key(key)
    if reason:
        raise ValueError(f"{reason}; no AWS tag needs this key")
    if key == "Name":
        raise ValueError("the Name tag is set per resource by k3s-infra (naming.name_tag)")
    if lowered == TAG_PREFIX or (lowered.startswith(TAG_PREFIX) and not lowered[len(TAG_PREFIX)].isalnum()):
        raise ValueError(f"the key uses k3s-infra's own prefix ({TAG_PREFIX}): k3s-infra sets and reads those "
                         "tags itself")
    for prefix, why in RESERVED_TAG_PREFIXES.items():
        if lowered.startswith(prefix):
            raise ValueError(f"the key uses a reserved prefix ({prefix}): {why}")
    if value.lower().startswith("aws:"):
        raise ValueError("the value starts with aws:, which AWS reserves for its own tag values")


# --- keys of maps written into templates ------------------------------------------------------

def template_key(key: object) -> str | None:
    """Why CloudFormation would not read ``key`` of a user's map as data, or None. A map whose one
    key is ``Ref`` or ``Fn::<name>`` is an intrinsic function, and ``Condition`` names a template
    condition (CloudFormation User Guide, "Intrinsic function reference" and "Condition
    functions"): a tag map {"Ref": "x"} becomes a reference to resource x. Case matters there, as
    here ('ref' is data)."""
    if key in ("Ref", "Condition") or (isinstance(key, str) and key.startswith("Fn::")):
        return (f"the key {key} is read by CloudFormation as an intrinsic function or a condition "
                "reference, not as data")
    return None


# --- AWS names ---------------------------------------------------------------------------------

# Parameter Store (Systems Manager User Guide, "Parameter Store requirements and constraints" /
# "Working with parameter hierarchies"): "a maximum depth of fifteen levels", and at most 1,011
# characters for a name "including the full length of the parameter ARN"
# (arn:<partition>:ssm:<region>:<account>:parameter/<name>).
SSM_NAME_MAX = 1011
SSM_LEVELS_MAX = 15


def ssm_parameter_name(value: str) -> str:
    levels = [part for part in value.split("/") if part]
    if len(levels) > SSM_LEVELS_MAX:
        raise ValueError(f"an SSM parameter name has at most {SSM_LEVELS_MAX} levels, got {len(levels)}")
    return value


def ssm_arn_too_long(name: str, partition: str, region: str, account_id: str) -> str | None:
    """Why ``name`` is too long for Parameter Store in this account and region, or None."""
    arn = f"arn:{partition}:ssm:{region}:{account_id}:parameter{name}"
    if len(arn) > SSM_NAME_MAX:
        return (f"an SSM parameter name is at most {SSM_NAME_MAX:,} characters with its ARN "
                f"({len(arn) - len(name)} here), got {len(name):,} + {len(arn) - len(name)}")
    return None


def url_host(value: str) -> str:
    """The host of an https URL: an RFC 1123 host name (``dns_name``: labels of 1-63 letters,
    digits and '-', not starting or ending with '-', 253 in all) or an IPv4 address (a mirror
    reached by address; the URL pattern has no [IPv6] form), and a port from 1 to 65535."""
    host, _, port = value.removeprefix("https://").split("/", 1)[0].partition(":")
    if port and not 1 <= int(port[:6]) <= 65535:
        raise ValueError(f"port {port[:10]} is outside 1-65535")
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        dns_name(host)
    return value



_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name(value: str) -> str:
    if not _BUCKET.match(value):
        raise ValueError(f"{value[:80]!r}: an S3 bucket name is 3-63 lowercase letters, digits, '.' and '-', "
                         "starting and ending with a letter or digit")
    if ".." in value or ".-" in value or "-." in value:
        raise ValueError(f"{value!r}: an S3 bucket name has no '..', '.-' or '-.'")
    if re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+", value):
        raise ValueError(f"{value!r}: an S3 bucket name cannot look like an IP address")
    if value.startswith(_BUCKET_PREFIXES) or value.endswith(_BUCKET_SUFFIXES):
        raise ValueError(f"{value!r}: S3 reserves the prefixes {', '.join(_BUCKET_PREFIXES)} and the suffixes "
                         f"{', '.join(_BUCKET_SUFFIXES)}")
    return value


@lru_cache(maxsize=1)
def _partitions() -> tuple[dict, ...]:
    """botocore's data/partitions.json (read, not imported: botocore's endpoint machinery
    would cost a render more than the file itself, ~4 ms); empty without botocore."""
    spec = find_spec("botocore")
    if spec is None or not spec.submodule_search_locations:
        return ()
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "partitions.json"
    try:
        return tuple(json.loads(path.read_text(encoding="utf-8")).get("partitions", ()))
    except (OSError, ValueError):
        return ()


@lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Regions of every AWS partition."""
    return frozenset(region for partition in _partitions()
                     for region in partition.get("regions", {}) if not region.endswith("-global"))


def partition_of(region_name: str) -> tuple[str, str]:
    """(partition, DNS suffix) of a region, e.g. ("aws-us-gov", "amazonaws.com"); without
    botocore's data the longest of each, so sizes computed from it are never short."""
    for partition in _partitions():
        if region_name in partition.get("regions", {}):
            return partition["id"], partition["outputs"]["dnsSuffix"]
    return "aws-us-gov", "amazonaws.com.cn"


def region(value: str) -> str:
    regions = known_regions()
    if regions and value not in regions:
        raise ValueError(f"{value!r} is not an AWS region known to botocore (an older botocore may not "
                         "know a new region: upgrade boto3)")
    return value


# --- Helm chart kubeVersion constraints --------------------------------------------------------
# Helm refuses to install a chart whose Chart.yaml kubeVersion the cluster's version does not
# satisfy ("chart requires kubeVersion: ... which is incompatible with Kubernetes ..."); K3s's
# helm controller then retries the install job forever. The syntax is Masterminds/semver's; the
# charts in the catalog use comparisons joined by spaces or commas, '||' and '^' / '~'.
_TERM = re.compile(r"^(>=|<=|!=|>|<|=|\^|~)?v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(-[0-9A-Za-z.-]+)?$")


def kube_version_allows(constraint: str, k3s_version: str) -> bool:
    """Whether K3s ``k3s_version`` ('v1.33.5+k3s1', Kubernetes 1.33.5) satisfies ``constraint``."""
    major, minor, patch = (int(p) for p in k3s_version.lstrip("v").split("+")[0].split(".")[:3])
    version = (major, minor, patch, 1)  # a release sorts after every pre-release of itself
    for alternative in constraint.split("||"):
        terms = re.sub(r"(>=|<=|!=|>|<|=|\^|~)\s+", r"\1", alternative.strip()).replace(",", " ").split()
        if terms and all(_satisfies(term, version) for term in terms):
            return True
    return False


def _satisfies(term: str, version: tuple[int, int, int, int]) -> bool:
    match = _TERM.match(term)
    if not match:
        raise ValueError(f"unsupported kubeVersion term {term!r}")
    op, major, minor, patch, pre = match.groups()
    bound = (int(major), int(minor or 0), int(patch or 0), 0 if pre else 1)
    upper = {"^": (bound[0] + 1, 0, 0, 0) if bound[0] else (0, bound[1] + 1, 0, 0),
             "~": (bound[0], bound[1] + 1, 0, 0)}
    if op in upper:
        return bound <= version < upper[op]
    return {">=": version >= bound, ">": version > bound, "<": version < bound, "<=": version <= bound,
            "!=": version[:3] != bound[:3]}.get(op or "=", version[:3] == bound[:3])
