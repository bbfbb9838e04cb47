"""Values Kubernetes, K3s or AWS would reject at boot or deploy are refused at render, naming
the field (k3s_infra/config/rules.py). Expected limits come from the cited sources, not from
the code:
- Kubernetes qualified names / label values: k8s.io/apimachinery pkg/util/validation
  (prefix: DNS subdomain <= 253; name and value <= 63).
- Kubelet self-labels: kubernetes/kubernetes staging/src/k8s.io/kubelet/pkg/apis/well_known_labels.go
  (only kubelet.kubernetes.io / node.kubernetes.io namespaces; node-role.* refused).
- kube-apiserver: an IPv4 service range is at most /12; its first host is the `kubernetes` Service.
- robfig/cron v3.0.1 (K3s etcd-snapshot-schedule-cron): 5 fields, minute 0-59 ... weekday 0-6 (spec.go
  bounds: dow is {0, 6}; 7 is not Sunday there), names (more in test_cron.py).
- S3 bucket naming rules: https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
- Regions: botocore data/partitions.json.
"""

from __future__ import annotations

import pytest

from k3s_infra.config import ConfigError, validate
from k3s_infra.config import rules as config_rules


def pool(d: dict) -> dict:
    return d["agent_pools"][0]


def problems(document: dict) -> list[tuple[str, str]]:
    """(field path, message) of each problem validation reports; it must refuse the document."""
    with pytest.raises(ConfigError) as caught:
        validate(document, "dev.yaml")
    return caught.value.problems


def k3s(d: dict) -> dict:
    return d.setdefault("k3s", {})


REFUSED = {
    "node-role label": (lambda d: pool(d)["labels"].update({"node-role.kubernetes.io/worker": "true"}),
                        "agent_pools[general].labels.node-role.kubernetes.io/worker", "kubelet refuses"),
    "k8s.io label": (lambda d: pool(d)["labels"].update({"example.k8s.io/x": "y"}),
                     "agent_pools[general].labels.example.k8s.io/x", "kubelet refuses"),
    "zone label set by boot": (lambda d: pool(d)["labels"].update({"topology.kubernetes.io/zone": "a"}),
                               "agent_pools[general].labels.topology.kubernetes.io/zone", "set by the kubelet or the boot"),
    "label prefix too long": (lambda d: pool(d)["labels"].update({("a" * 60 + ".") * 5 + "io/x": "y"}),
                              "agent_pools[general].labels", "at most 253"),
    "label value too long": (lambda d: pool(d)["labels"].update({"tier": "a" * 64}),
                             "agent_pools[general].labels.tier", "not valid"),
    "taint twice per key and effect": (lambda d: pool(d).update(taints=["a=b:NoSchedule", "a=c:NoSchedule"]),
                                       "agent_pools[general].taints", "one taint per key and effect"),
    "taint key name too long": (lambda d: pool(d).update(taints=["example.com/" + "k" * 64 + ":NoSchedule"]),
                                "agent_pools[general].taints[0]", "not valid"),
    "pool names collide": (lambda d: d["agent_pools"].extend([dict(pool(d), name="web-1"), dict(pool(d), name="web1")]),
                           "agent_pools", "both become stack"),
    "service range over /12": (lambda d: k3s(d).update(service_cidr="10.0.0.0/8", cluster_dns="10.0.0.10",
                                                      cluster_cidr="172.16.0.0/16"),
                               "k3s.service_cidr", "larger than /12"),
    "dns is the API service": (lambda d: k3s(d).update(cluster_dns="10.43.0.1"), "k3s.cluster_dns", "API service"),
    "dns is the network": (lambda d: k3s(d).update(cluster_dns="10.43.0.0"), "k3s.cluster_dns", "network or broadcast"),
    "dns is broadcast": (lambda d: k3s(d).update(cluster_dns="10.43.255.255"), "k3s.cluster_dns", "broadcast"),
    # The nodes have IPv4 addresses only: an IPv6 pod range needs IPv6 node addresses (docs.k3s.io
    # networking, "Single-stack IPv6"), so it is refused, not half-configured.
    "IPv6 pod range": (lambda d: k3s(d).update(cluster_cidr="fd00:10:42::/56"), "k3s.cluster_cidr", "IPv4 addresses only"),
    "public pod range": (lambda d: k3s(d).update(cluster_cidr="8.8.0.0/16"), "k3s.cluster_cidr", "not a private range"),
    "pod range too small": (lambda d: k3s(d).update(cluster_cidr="10.42.0.0/23"), "k3s.cluster_cidr", "holds 2 nodes"),
    "cron minute out of range": (lambda d: k3s(d).update(etcd_snapshots={"schedule": "60 * * * *"}),
                                 "k3s.etcd_snapshots.schedule", "0-59"),
    "cron bad name": (lambda d: k3s(d).update(etcd_snapshots={"schedule": "0 0 * foo *"}),
                      "k3s.etcd_snapshots.schedule", "month"),
    "cron zero step": (lambda d: k3s(d).update(etcd_snapshots={"schedule": "*/0 * * * *"}),
                       "k3s.etcd_snapshots.schedule", "step"),
    "cron backwards": (lambda d: k3s(d).update(etcd_snapshots={"schedule": "0 5-2 * * *"}),
                       "k3s.etcd_snapshots.schedule", "backwards"),
    # robfig/cron v3 spec.go: dow bounds{0, 6}; K3s would drop the schedule and never snapshot.
    "cron sunday as 7": (lambda d: k3s(d).update(etcd_snapshots={"schedule": "0 3 * * 7"}),
                         "k3s.etcd_snapshots.schedule", "outside 0-6"),
    "cron six fields": (lambda d: k3s(d).update(etcd_snapshots={"schedule": "0 0 * * * *"}),
                        "k3s.etcd_snapshots.schedule", "five-field"),
    "dns label too long": (lambda d: k3s(d).update(tls_san=["a" * 64 + ".example.com"]), "k3s.tls_san[0]", "DNS label"),
    "domain label starts with -": (lambda d: k3s(d).update(cluster_domain="cluster.-local"), "k3s.cluster_domain",
                                   "DNS label"),
    "bucket with ..": (lambda d: d["deploy"].update(artifact_bucket="my..bucket"), "deploy.artifact_bucket", ".."),
    "bucket like an IP": (lambda d: d["deploy"].update(artifact_bucket="192.168.1.1"), "deploy.artifact_bucket", "IP"),
    "bucket xn--": (lambda d: d["deploy"].update(artifact_bucket="xn--bucket"), "deploy.artifact_bucket", "reserves"),
    "bucket -s3alias": (lambda d: d["deploy"].update(artifact_bucket="bucket-s3alias"), "deploy.artifact_bucket",
                        "reserves"),
    "unknown region": (lambda d: d.update(region="eu-west-9"), "region", "not an AWS region known to botocore"),
    "tag Name": (lambda d: d["deploy"]["tags"].update(Name="x"), "deploy.tags", "'Name'"),
    "huge on-demand base": (lambda d: pool(d).update(spot={"on_demand_base_capacity": 10 ** 9}),
                            "agent_pools[general].spot.on_demand_base_capacity", "less than or equal"),
    # A pool runs one image (one launch template), so one architecture.
    "pool mixing architectures": (lambda d: pool(d).update(instance_types=["m6i.large", "m7g.large"]),
                                  "agent_pools[general].instance_types", "m7g.large (arm64)"),
    "x86 image for graviton servers": (lambda d: (
        d["servers"].update(instance_type="t4g.small"),
        d.setdefault("nodes", {}).update(ami_parameter={
            "arm64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"})),
        "nodes.ami_parameter.arm64", "x86_64"),
    "single image parameter (old form)": (
        lambda d: d.setdefault("nodes", {}).update(ami_parameter="/aws/service/ami-amazon-linux-latest/x"),
        "nodes.ami_parameter", "x86_64:"),
    "single ami_id (old form)": (lambda d: d.setdefault("nodes", {}).update(ami_id="ami-0123456789abcdef0"),
                                 "nodes.ami_id", "x86_64:"),
    "unknown architecture key": (lambda d: d.setdefault("nodes", {}).update(ami_parameter={"aarch64": "/x"}),
                                 "nodes.ami_parameter.aarch64", ""),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_values_aws_k3s_or_kubernetes_would_reject_are_refused(dev, case):
    mutate, path, fragment = REFUSED[case]
    mutate(dev)
    found = problems(dev)
    assert any(p.startswith(path) and fragment in m for p, m in found), found


ACCEPTED = {
    "kubelet namespace label": lambda d: pool(d)["labels"].update({"node.kubernetes.io/pool": "a",
                                                                    "x.kubelet.kubernetes.io/y": "b"}),
    # Kubernetes allows one taint per key and effect; the autoscaler's node-template tags hold one
    # taint per key, so this needs the autoscaler off (it refuses such pools itself).
    "taints per effect": lambda d: (pool(d).update(taints=["a=b:NoSchedule", "a=b:NoExecute"]),
                                    d.setdefault("addons", {}).update(cluster_autoscaler={"enabled": False})),
    "cron names, ranges, steps, lists": lambda d: k3s(d).update(
        etcd_snapshots={"schedule": "5,35 1-23/2 ? jan-jun MON-FRI"}),
    "cron descriptor": lambda d: k3s(d).update(etcd_snapshots={"schedule": "@daily"}),
    "cron sunday as 0 and by name": lambda d: k3s(d).update(etcd_snapshots={"schedule": "0 3 * * 0,sun"}),
    "tls_san IP": lambda d: k3s(d).update(tls_san=["10.0.0.5", "api.example.com"]),
    "dotted bucket": lambda d: d["deploy"].update(artifact_bucket="my.bucket-1"),
    "china region": lambda d: d.update(region="cn-north-1", network=dict(d["network"], subnets=[
        {"id": "subnet-0a1b2c3d4e5f60701"}, {"id": "subnet-0a1b2c3d4e5f60702"}])),
    "graviton servers and pool (default images)": lambda d: (
        d["servers"].update(instance_type="t4g.small"), pool(d).update(instance_types=["m7g.large", "c7gn.large"])),
    "graviton with a company image naming no architecture": lambda d: (
        d.setdefault("nodes", {}).update(ami_parameter={"arm64": "/company/golden/k3s-node"}),
        pool(d).update(instance_types=["m7g.large"])),
    "x86 GPU family g": lambda d: pool(d).update(instance_types=["g4dn.xlarge"]),
    # RFC 1123/1035: a host name of 253 characters in all (labels of at most 63) is valid.
    "tls_san name of 253 characters": lambda d: k3s(d).update(tls_san=[".".join(["a" * 63] * 3 + ["b" * 61])]),
    "tls_san IPv6": lambda d: k3s(d).update(tls_san=["fd00::1"]),
    # robfig/cron: a step from 1 up to the field's maximum ("*/1", "*/59" minutes, "*/23" hours).
    "cron steps 1 and the field maximum": lambda d: k3s(d).update(etcd_snapshots={"schedule": "*/59 */1 * * *"}),
    "cron hour step at its maximum": lambda d: k3s(d).update(etcd_snapshots={"schedule": "0 */23 * * *"}),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_valid_values_near_the_limits_are_accepted(dev, case):
    ACCEPTED[case](dev)
    validate(dev, "dev.yaml")


def test_addon_hostname_is_a_dns_name(dev):
    dev["addons"] = {"rancher": {"enabled": True, "values": {"hostname": "rancher." + "a" * 64 + ".example.com"}}}
    assert [p for p, _ in problems(dev)] == ["addons.rancher.values.hostname"]


def test_a_tls_san_name_one_character_too_long_is_refused(dev):
    k3s(dev).update(tls_san=[".".join(["a" * 63] * 3 + ["b" * 62])])  # 254 characters
    assert [p for p, _ in problems(dev)] == ["k3s.tls_san[0]"]


def test_a_word_in_a_numeric_cron_field_is_a_config_error(dev):
    k3s(dev).update(etcd_snapshots={"schedule": "often * * * *"})
    ((path, message),) = problems(dev)
    assert path == "k3s.etcd_snapshots.schedule" and "minute field: 'often' is not a number" in message


def test_without_botocores_data_sizes_assume_the_longest_partition(monkeypatch):
    """The user data guard must never count short: with no partition data it takes the longest
    partition name and DNS suffix botocore knows."""
    from k3s_infra.config import rules as config_rules

    partitions = config_rules._partitions()
    assert partitions  # botocore is a dependency here
    longest = (max((p["id"] for p in partitions), key=len), max((p["outputs"]["dnsSuffix"] for p in partitions), key=len))
    monkeypatch.setattr(config_rules, "_partitions", lambda: ())
    assert config_rules.partition_of("eu-west-1") == longest


def rancher(d: dict, hostname: str) -> None:
    d["addons"] = {"rancher": {"enabled": True, "values": {"hostname": hostname}}}


MESSAGES = {
    # field path, mutation, the exact message (what the user reads)
    "name too long": ("addons.rancher.values.hostname", lambda d: rancher(d, "a." * 150),
                      "a DNS name is at most 253 characters, got 300"),
    "bad label": ("addons.rancher.values.hostname", lambda d: rancher(d, "-a.example.com"),
                  "'-a' is not a DNS label (1-63 letters, digits and '-', not starting or ending with '-')"),
    "step 0": ("k3s.etcd_snapshots.schedule", lambda d: k3s(d).update(etcd_snapshots={"schedule": "*/0 * * * *"}),
               "the minute field: step '0' must be a number from 1 to 59"),
    "long step": ("k3s.etcd_snapshots.schedule", lambda d: k3s(d).update(
        etcd_snapshots={"schedule": f"*/{'9' * 25} * * * *"}),
        f"the minute field: step '{'9' * 20}' must be a number from 1 to 59"),
    "backwards": ("k3s.etcd_snapshots.schedule", lambda d: k3s(d).update(
        etcd_snapshots={"schedule": f"{'0' * 9}30-{'0' * 9}10 * * * *"}),
        f"the minute field: range '{('0' * 9 + '30-' + '0' * 9 + '10')[:20]}' runs backwards"),
    "long word": ("k3s.etcd_snapshots.schedule", lambda d: k3s(d).update(
        etcd_snapshots={"schedule": f"{'w' * 30} * * * *"}),
        f"the minute field: '{'w' * 20}' is not a number"),
    "bad month": ("k3s.etcd_snapshots.schedule", lambda d: k3s(d).update(
        etcd_snapshots={"schedule": "0 3 * foo *"}), "the month field: 'foo' is not a number or name"),
    # robfig/cron: '?' stands for "no specific value" in the day fields only.
    "question mark in minutes": ("k3s.etcd_snapshots.schedule", lambda d: k3s(d).update(
        etcd_snapshots={"schedule": "? * * * *"}), None),
}


@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_refusals_say_exactly_what_is_wrong(dev, case):
    path, mutate, message = MESSAGES[case]
    mutate(dev)
    ((got_path, got_message),) = problems(dev)
    assert got_path == path
    if message is not None:
        assert got_message == message


def test_a_one_value_range_and_a_prefix_of_253_characters_are_accepted(dev):
    k3s(dev).update(etcd_snapshots={"schedule": "10-10 3 * * *"})
    pool(dev)["labels"].update({".".join(["a" * 63] * 3 + ["b" * 61]) + "/name": "v"})
    dev.setdefault("addons", {}).update(cluster_autoscaler={"enabled": False})  # labels become tags there
    validate(dev, "dev.yaml")


def test_names_one_character_over_their_limit_are_refused(dev):
    """DNS names: 253 characters (RFC 1035); a label-key prefix is a DNS subdomain of at most 253
    (k8s.io/apimachinery pkg/util/validation, IsQualifiedName)."""
    long_name = ".".join(["a" * 63] * 3 + ["b" * 62])  # 254 characters
    rancher(dev, long_name)
    with pytest.raises(ConfigError, match="a DNS name is at most 253 characters, got 254"):
        validate(dev, "dev.yaml")
    dev["addons"] = {}
    pool(dev)["labels"].update({long_name + "/name": "v"})
    dev["addons"] = {"cluster_autoscaler": {"enabled": False}}
    assert [p for p, _ in problems(dev)] == [f"agent_pools[general].labels.{long_name}/name"]


def test_a_long_bad_label_is_quoted_in_part(dev):
    rancher(dev, "a" * 80 + "-.example.com")
    with pytest.raises(ConfigError, match=rf"'{'a' * 70}' is not a DNS label"):
        validate(dev, "dev.yaml")


# --- S3 bucket names (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html)

@pytest.mark.parametrize("name", ["my.-bucket", "my-.bucket", "a..b"])
def test_a_period_next_to_a_dash_or_a_period_is_refused(name):
    with pytest.raises(ValueError, match=r"no '\.\.', '\.-' or '-\.'"):
        config_rules.bucket_name(name)


def test_a_bucket_name_refusal_says_the_rule_and_echoes_at_most_80_characters():
    with pytest.raises(ValueError) as caught:
        config_rules.bucket_name("B" * 100)
    message = str(caught.value)
    assert message.startswith(repr("B" * 80) + ":")
    assert "3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit" in message


def test_a_reserved_bucket_name_lists_what_s3_reserves():
    with pytest.raises(ValueError) as caught:
        config_rules.bucket_name("bucket--ol-s3")
    assert "xn--, sthree-, amzn-s3-demo-" in str(caught.value)
    assert "-s3alias, --ol-s3, .mrap, --x-s3, --table-s3" in str(caught.value)
