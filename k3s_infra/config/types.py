"""Field shapes and the strict base model shared by every configuration section."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
)

from k3s_infra.config import cron, rules, secret_scan

# --- field shapes -------------------------------------------------------------

# pattern -> what a person should write there, for error messages.
HINTS: dict[str, str] = {}


def shape(pattern: str, hint: str, *rules: object, scanned: bool = False, **constraints: int) -> type[str]:
    """A string of this pattern (for editors' JSON Schema and short messages), then the
    ``rules`` a pattern cannot say (lengths per part, reserved names, ranges). ``scanned``:
    a field anyone who can list the resources reads (a tag, a label, a stack name, a URL)
    refuses a value shaped like a secret first, before a pattern message could quote it; so does
    every field that lands in a template (names, paths, ARNs), readable by anyone who can read the stack."""
    HINTS[pattern] = hint
    before = (BeforeValidator(no_secret),) if scanned else ()
    # Last, so it wraps the rest and runs first, and the pattern stays in the JSON Schema.
    return Annotated[str, StringConstraints(pattern=pattern, **constraints), *map(AfterValidator, rules), *before]


def no_secret(value: object) -> object:
    """Refuse text shaped like a credential (secret_scan.value_kind), without quoting it."""
    if isinstance(value, str):
        kind = secret_scan.value_kind(value)
        if kind:
            raise ValueError(f"looks like {kind}; this field is readable by anyone who can list the resources "
                             "or read the templates (the value is not shown)")
    return value


def no_url_credentials(value: object) -> object:
    """A URL nodes or the helm controller fetch: user info ('user:token@'), a query string or a
    fragment could carry a token into templates and logs; refused without quoting the URL."""
    if isinstance(value, str):
        authority = value.partition("://")[2].split("/", 1)[0]
        if "@" in authority:
            raise ValueError("carries credentials before '@' in the URL; nodes and charts fetch it "
                             "anonymously (the value is not shown)")
        if "?" in value or "#" in value:
            raise ValueError("has a query string or fragment, where tokens travel (X-Amz-Signature=, token=); "
                             "give the base URL only (the value is not shown)")
    return no_secret(value)


Name = shape(r"^[a-z][a-z0-9-]{0,22}[a-z0-9]$", "lowercase letters, digits and '-', 2-24 characters",
             scanned=True)
VpcId = shape(r"^vpc-[0-9a-f]{8,17}$", "a VPC ID like vpc-0a1b2c3d4e5f60718")
SubnetId = shape(r"^subnet-[0-9a-f]{8,17}$", "a subnet ID like subnet-0a1b2c3d4e5f60701")
AccountId = shape(r"^[0-9]{12}$", "a 12-digit AWS account ID, quoted")
Region = shape(r"^[a-z]{2,4}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", "an AWS region like eu-west-1",
                rules.region)
AvailabilityZone = shape(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9][a-z]$", "an availability zone like eu-west-1a")
InstanceType = shape(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$", "an EC2 instance type like t3.medium")
K3sVersion = shape(r"^v1\.[0-9]{2,}\.[0-9]+\+k3s[0-9]+$", "a K3s release like v1.33.5+k3s1")
SsmPath = shape(r"^/[A-Za-z0-9_.\-/]+$", "an SSM parameter path starting with /", rules.ssm_parameter_name,
                 scanned=True, max_length=rules.SSM_NAME_MAX)
AmiId = shape(r"^ami-[0-9a-f]{8,17}$", "an AMI ID like ami-0a1b2c3d4e5f60718")
LabelKey = shape(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$",
                  "a Kubernetes label key like example.com/tier", rules.node_label_key)
LabelValue = shape(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$", "a Kubernetes label value", scanned=True)
# key[=value]:effect, the value optional and possibly empty ('key=:NoSchedule'): kubectl taint
# docs ("The value is optional") and k8s.io/kubernetes pkg/util/taints/taints.go parseTaint,
# which checks a given value with IsValidLabelValue, where "" is valid.
Taint = shape(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9][-A-Za-z0-9_.]{0,62}"
               r"(=([A-Za-z0-9][-A-Za-z0-9_.]{0,62})?)?:(NoSchedule|PreferNoSchedule|NoExecute)$",
               "a taint like key=value:NoSchedule or key:NoSchedule", rules.taint, scanned=True)
DnsName = shape(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$", "a DNS name", rules.dns_name, scanned=True)
SubjectName = shape(r"^[A-Za-z0-9:]([A-Za-z0-9.:-]{0,251}[A-Za-z0-9])?$", "a DNS name or IP address",
                     rules.dns_name_or_ip, scanned=True)
CronSchedule = shape(r"^((CRON_TZ|TZ)=\S* +)?(@\S+( \S+)?|\S+(\s+\S+){4})$",
                      "a five-field cron schedule like '0 */6 * * *', or @daily / @every 6h, optionally after "
                      "CRON_TZ=<zone> ", cron.cron)
TagKey = shape(r"^[\w .:/=+\-@]+$", "a tag key (letters, digits, spaces and _.:/=+-@)", min_length=1, max_length=128)
TagValue = shape(r"^[\w .:/=+\-@]*$", "a tag value (letters, digits, spaces and _.:/=+-@)", max_length=256,
                  scanned=True)
Url = Annotated[shape(r"^https://[A-Za-z0-9.\-]+(:[0-9]+)?(/[\w.\-/~%]*)?$", "an https:// URL", rules.url_host),
                BeforeValidator(no_url_credentials)]
# At most 80 characters, so no nested stack's generated name <root>-<child ID>-<suffix> ever
# reaches CloudFormation's 128-character stack name limit (AWS::CloudFormation::Stack, "StackName"
# / CreateStack API: "no longer than 128 characters"), where the generated name would be cut and
# the node roles' SignalResource ARNs (stack/<root>-<child ID>-*) and the names derived from the
# root stop matching: 128 - len("-AgentPool<24-character pool>-") 35 - suffix 13 = 80 (pinned by
# tests/unit/config/test_stack_name_limit.py against model/naming.py).
STACK_NAME_MAX = 80
StackName = shape(rf"^[A-Za-z][A-Za-z0-9-]{{0,{STACK_NAME_MAX - 1}}}$",
                  f"a CloudFormation stack name of at most {STACK_NAME_MAX} characters", scanned=True)
BucketName = shape(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", "an S3 bucket name", rules.bucket_name, scanned=True)
SemVer = shape(r"^[0-9]+\.[0-9]+\.[0-9]+$", "a version like 1.2.3")
ImageTag = shape(r"^v[0-9]+\.[0-9]+\.[0-9]+$", "an image tag like v1.33.0")
ChartVersion = shape(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.\-]+)?$", "a pinned chart version like 1.2.3")


def network_cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"not a valid CIDR block: {exc}") from None


class Strict(BaseModel):
    """Base of every section: unknown keys are errors, values are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
