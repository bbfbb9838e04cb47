"""Rules of values that Kubernetes, K3s or AWS would reject later (at boot or deploy),
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

# --- DNS names: RFC 1123 labels -----------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def dns_name(value: str) -> str:
    """RFC 1123 host name: labels of 1-63 letters, digits and '-', not starting or ending with '-',
    253 characters in all (https://datatracker.ietf.org/doc/html/rfc1123#section-2.1)."""
    if len(value) > 253:
        raise ValueError(f"a DNS name is at most 253 characters, got {len(value)}")
    labels = value.lower().split(".")
    for label in labels:
        if not _DNS_LABEL.match(label):
            raise ValueError(f"{label[:70]!r} is not a DNS label (1-63 letters, digits and '-', "
                             "not starting or ending with '-')")
    return value


def dns_name_or_ip(value: str) -> str:
    """A certificate subject alternative name: an IP address or a DNS name (K3s tls-san)."""
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


# --- cron schedules (K3s etcd-snapshot-schedule-cron: robfig/cron v3 standard parser) -------------

_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
# (name, lowest, highest, names) of the five fields; '?' means '*' in day fields (robfig/cron parser.go).
_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
           ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))
_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def cron(value: str) -> str:
    if value.strip() in _DESCRIPTORS:
        return value
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(f"{value[:80]!r}: a cron schedule has 5 fields (minute hour day month weekday), "
                         f"got {len(fields)}")
    for text, (name, low, high, names) in zip(fields, _FIELDS):
        for item in text.split(","):
            _cron_item(item, name, low, high, names)
    return value


def _cron_item(item: str, name: str, low: int, high: int, names: dict[str, int]) -> None:
    span, _, step = item.partition("/")
    if step and (not step.isdigit() or not 1 <= int(step) <= high):
        raise ValueError(f"the {name} field: step {step[:20]!r} must be a number from 1 to {high}")
    if span in ("*", "?") and (span == "*" or name.startswith("day")):
        return
    start, _, end = span.partition("-")

    def number(text: str) -> int:
        found = names.get(text.lower()) if names else None
        if found is None and not text.isdigit():
            raise ValueError(f"the {name} field: {item[:20]!r} is not a number{' or name' if names else ''}")
        found = int(text) if found is None else found
        if not low <= found <= high:
            raise ValueError(f"the {name} field: {found} is outside {low}-{high}")
        return found

    first = number(start)
    if end and number(end) < first:
        raise ValueError(f"the {name} field: range {span[:20]!r} runs backwards")


# --- AWS names ---------------------------------------------------------------------------------

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
