"""The K3s configuration of each node role, as data.

Each function returns the mapping that becomes ``/etc/rancher/k3s/config.yaml``
(or a file next to it). Values known only when an instance boots (its ID, zone
and region) are added by the boot script as a drop-in in ``config.yaml.d/``;
values known only at deploy time (the load balancer's DNS name, the snapshot
bucket) arrive as strings that the caller turns into ``Fn::Sub`` references.
"""

from __future__ import annotations

from typing import Any

from k3s_infra.config import AgentPool, Environment, defaults, yaml_text
from k3s_infra.model import addons, naming, pod_identity
from k3s_infra.model.ports import API_PORT
from k3s_infra.model.roles import Role

CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane:NoSchedule"
# Where the boot script writes the tokens it reads from Secrets Manager: the
# only files on a node that ever hold them.
TOKEN_FILE = "/etc/rancher/k3s/token"
AGENT_TOKEN_FILE = "/etc/rancher/k3s/agent-token"
K3S_BINARY = "/usr/local/bin/k3s"
# The kubelet's own kubeconfig on an agent (K3s writes it under <data-dir>/agent): an agent
# reads its own Node with it before it signals.
KUBELET_KUBECONFIG = "/var/lib/rancher/k3s/agent/kubelet.kubeconfig"
# K3s imports the image tarballs it finds here when it starts: the airgap images the boot places
# (https://docs.k3s.io/installation/airgap, "Manually Deploy Images Method";
# https://docs.k3s.io/import-images).
AIRGAP_IMAGES_DIR = "/var/lib/rancher/k3s/agent/images"
SYSTEMD_DIR = "/etc/systemd/system"
# Runtime drop-ins live in /run: gone after a reboot, so they bound only the first start.
FIRST_START_DROP_IN_DIR = "/run/systemd/system"


def _unit_text(sections: list[tuple[str, list[tuple[str, str]]]]) -> str:
    return "\n".join(f"[{name}]\n" + "".join(f"{key}={value}\n" for key, value in entries)
                     for name, entries in sections)


def systemd_unit(role: Role) -> str:
    """The K3s unit, as k3s-io/k3s:install.sh (create_systemd_service_file) writes it for
    ``k3s`` (server) and ``k3s-agent``: Type=notify, KillMode=process, Delegate=yes, no
    resource limits, Restart=always, modprobe of br_netfilter and overlay before each start.
    The command is just ``server``/``agent``: every setting comes from config.yaml."""
    return _unit_text([
        ("Unit", [("Description", "Lightweight Kubernetes"), ("Documentation", "https://k3s.io"),
                  ("Wants", "network-online.target"), ("After", "network-online.target")]),
        ("Install", [("WantedBy", "multi-user.target")]),
        ("Service", [
            ("Type", "notify"),
            ("EnvironmentFile", "-/etc/default/%N"), ("EnvironmentFile", "-/etc/sysconfig/%N"),
            ("KillMode", "process"), ("Delegate", "yes"), ("User", "root"),
            # install.sh: non-zero Limit*s cost kernel accounting overhead.
            ("LimitNOFILE", "1048576"), ("LimitNPROC", "infinity"), ("LimitCORE", "infinity"),
            ("TasksMax", "infinity"),
            # Later starts (reboots, etcd catching up) are unbounded as upstream; the first
            # start is bounded by first_start_drop_in.
            ("TimeoutStartSec", "0"),
            ("Restart", "always"), ("RestartSec", "5s"),
            ("ExecStartPre", "-/sbin/modprobe br_netfilter"), ("ExecStartPre", "-/sbin/modprobe overlay"),
            ("ExecStart", f"{K3S_BINARY} {role.k3s_command}"),
        ]),
    ])


def first_start_drop_in() -> str:
    """Bounds the first start (systemd.service(5) TimeoutStartSec): a join that never
    completes fails the start instead of waiting forever on Type=notify."""
    return _unit_text([("Service", [("TimeoutStartSec", f"{defaults.K3S_FIRST_START_TIMEOUT}s")])])


def env_file(settings: dict[str, str]) -> str:
    """KEY='value' lines, as boot.sh sources them; a value that cannot be single-quoted is refused."""
    for key, value in settings.items():
        if "'" in value or "\n" in value:
            raise ValueError(f"boot setting {key} cannot be shell-quoted: {value!r}")
    return "".join(f"{key}='{value}'\n" for key, value in settings.items())


def dump(data: Any) -> str:
    return yaml_text.dump(data)


def join_url(api_host: str) -> str:
    return f"https://{api_host}:{API_PORT}"


def cluster_wide(env: Environment) -> dict[str, Any]:
    """Settings that must be identical on every server: the one place they come from."""
    k3s = env.k3s
    return {
        "cluster-cidr": k3s.cluster_cidr,
        "service-cidr": k3s.service_cidr,
        "cluster-dns": k3s.cluster_dns,
        "cluster-domain": k3s.cluster_domain,
        "flannel-backend": k3s.flannel_backend,
        "disable": list(k3s.disable) + [c for c in addons.k3s_disabled(env) if c not in k3s.disable],
        "secrets-encryption": k3s.secrets_encryption,
        # The AWS cloud controller manager (see cloud_controller_manifest) replaces it.
        "disable-cloud-controller": True,
    }


def _node(labels: dict[str, str], taints: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {"kubelet-arg": ["cloud-provider=external"]}
    if labels:
        settings["node-label"] = [f"{key}={value}" for key, value in sorted(labels.items())]
    if taints:
        settings["node-taint"] = list(taints)
    return settings


def _snapshots(env: Environment, bucket: str) -> dict[str, Any]:
    snapshots = env.k3s.etcd_snapshots
    if not snapshots.enabled:
        return {"etcd-disable-snapshots": True}
    return {
        "etcd-snapshot-schedule-cron": snapshots.schedule,
        # Local and S3 retention are separate settings since K3s v1.33.4 (v1.32.8, v1.31.12);
        # etcd-s3-retention defaults to 5, not to the local value
        # (https://docs.k3s.io/cli/etcd-snapshot, "S3 Retention"): set both from config.
        "etcd-snapshot-retention": snapshots.retention,
        "etcd-s3-retention": snapshots.retention,
        "etcd-s3": True,
        "etcd-s3-bucket": bucket,
        # K3s's S3 client would otherwise assume us-east-1.
        "etcd-s3-region": env.region,
        "etcd-s3-folder": naming.snapshot_folder(env),
    }


def service_account_issuer(issuer_url: str, sign: bool = True) -> list[str]:
    """kube-apiserver flags of the cluster's OIDC issuer (stacks/identity.py), the same on every
    server. ``key-=value`` puts the value before K3s's default (k3s-io/k3s pkg/util/args.go
    GetArgs: "Prepend value to initial args"), and Kubernetes signs with the first issuer and
    accepts them all (kube-apiserver --service-account-issuer), so tokens issued before keep
    working. The JWKS URI is where the discovery document sends STS (the issuer's own copy,
    published by the first server). api-audiences stays K3s's: a token minted for STS must not
    also be accepted by the Kubernetes API. ``sign`` False (k3s.service_account_issuer accept):
    ``key+=value`` puts it after K3s's default, accepted but not signing with."""
    return [f"service-account-issuer{'-' if sign else '+'}={issuer_url}",
            f"service-account-jwks-uri={issuer_url}/{pod_identity.JWKS_KEY}"]


def server(env: Environment, *, init: bool, api_host: str, snapshot_bucket: str, issuer_url: str,
           public_host: str | None = None) -> dict[str, Any]:
    """A server: the first one initialises embedded etcd, the others join through the (internal)
    API endpoint. The certificate names both endpoints (``public_host``: the internet-facing one)."""
    start = {"cluster-init": True} if init else {"server": join_url(api_host)}
    return {
        **start,
        "kube-apiserver-arg": service_account_issuer(issuer_url, env.k3s.service_account_issuer == "sign"),
        "token-file": TOKEN_FILE,
        "agent-token-file": AGENT_TOKEN_FILE,
        **cluster_wide(env),
        "tls-san": [api_host, *([public_host] if public_host else []), *env.k3s.tls_san],
        "write-kubeconfig-mode": "0600",
        **_snapshots(env, snapshot_bucket),
        **_node({}, [CONTROL_PLANE_TAINT] if env.k3s.server_taint else []),
    }


def rejoin(api_host: str) -> dict[str, Any]:
    """Drop-in that turns a replaced first server into an ordinary joining one."""
    return {"cluster-init": False, "server": join_url(api_host)}


def agent(pool: AgentPool, *, api_host: str) -> dict[str, Any]:
    return {
        "server": join_url(api_host),
        "token-file": TOKEN_FILE,
        **_node(dict(pool.labels), list(pool.taints)),
    }


def cloud_controller_manifest(env: Environment) -> dict[str, Any]:
    """HelmChart resource K3s's helm controller installs: the AWS cloud controller manager."""
    ccm = env.k3s.cloud_controller
    values = {
        "image": {"tag": ccm.image_tag},
        "args": ["--v=2", "--cloud-provider=aws", "--configure-cloud-routes=false",
                 f"--cluster-name={naming.cluster_name(env)}"],
        "hostNetworking": True,
        "nodeSelector": {"node-role.kubernetes.io/control-plane": "true"},
        "tolerations": [
            {"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"},
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
        ],
    }
    return {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": "aws-cloud-controller-manager", "namespace": "kube-system"},
        "spec": {
            "chart": "aws-cloud-controller-manager",
            "repo": defaults.CCM_CHART_REPO,
            "version": ccm.chart_version,
            "targetNamespace": "kube-system",
            # Runs before a CNI and a cloud provider exist (host network, no CCM yet).
            "bootstrap": True,
            "valuesContent": dump(values),
        },
    }
