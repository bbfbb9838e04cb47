"""Node boot: the user data of each node role.

The user data is a ``#cloud-config`` document whose ``write_files`` carry what a
node's boot reads, so it never downloads its own logic from anywhere unpinned:

* ``/etc/rancher/k3s/config.yaml``: the role's K3s configuration, built as data
  in ``k3s_config`` and dumped as YAML here;
* ``/etc/k3s-infra/boot.env``: everything the boot script reads (role, API host, secret
  ARNs, K3s version, where the deployer staged its files and their digests; and the ports, paths
  and wait bounds of ``boot_constants``, so the script holds none of its own; never a
  secret value);
* the K3s systemd unit of the role (rendered in ``k3s_config``) and a runtime drop-in
  that bounds its first start; the boot script installs the verified binary it runs;
* ``/etc/k3s-infra/rejoin.yaml`` (first server only): the drop-in that makes a
  replaced first server join the existing cluster instead of initialising one;
* the node script's core (``script.py``), run once by ``runcmd``.

Servers also get a bundle (``bundle.py``: the first server's logic, the watch, the cloud
controller's and the add-ons' manifests) from an SSM parameter of their node stack; the
user data pins its SHA-256. Values known only at boot (generated passwords, the drain
queue's URL) reach the charts through Secrets the boot script writes.

Static text (the script, the systemd unit) travels gzip-compressed and base64-encoded
(``encoding: gz+b64``, decoded by cloud-init's write_files); everything carrying a
deploy-time parameter stays plain text for ``Fn::Sub``.

Deploy-time values (secret ARNs, the snapshot bucket) are node-stack parameters, substituted
by ``Fn::Sub``. What slow stacks make (the load balancers' DNS names, the OIDC issuer's URL
and bucket)
are facts the boot reads from SSM (``roles.Role.late``): their files carry a marker
(``fact_marker``) that boot.sh bind_facts replaces, so no node stack waits for those stacks.
"""

from __future__ import annotations

import base64
import functools
import gzip
import re
import secrets
from dataclasses import dataclass, field

from troposphere import AWSHelperFn, Base64, Ref, Sub

from k3s_infra.bootstrap import bundle, k3s_config
# Where servers' manifests land and the script's core, named here as before the bundle.
from k3s_infra.bootstrap.bundle import ADDONS_MANIFEST as ADDONS_MANIFEST
from k3s_infra.bootstrap.bundle import BUNDLE_DIR, K3S_SERVER_DIR
from k3s_infra.bootstrap.bundle import CCM_MANIFEST as CCM_MANIFEST
from k3s_infra.bootstrap.bundle import MANIFESTS_DIR as MANIFESTS_DIR
from k3s_infra.bootstrap.script import boot_script
from k3s_infra.config import AgentPool, Environment, defaults, rules
from k3s_infra.config.text import camel
from k3s_infra.model import addons, limits, naming, pod_identity, ports
from k3s_infra.model import outputs as o
from k3s_infra.model.roles import ROLES, Role

BOOT_SCRIPT = "/usr/local/sbin/k3s-infra-boot"
BOOT_ENV = "/etc/k3s-infra/boot.env"
REJOIN_CONFIG = "/etc/k3s-infra/rejoin.yaml"
K3S_CONFIG = "/etc/rancher/k3s/config.yaml"
MODULES_LOAD = "/etc/modules-load.d/k3s-infra.conf"


@dataclass(frozen=True)
class BootRefs:
    """Node-stack parameters the boot script needs (None where a role has no use for one)."""

    agent_token_secret: Ref
    token_secret: Ref | None = None
    kubeconfig_secret: Ref | None = None
    cluster_state_parameter: Ref | None = None
    restore_request_parameter: Ref | None = None
    api_target_group: Ref | None = None
    snapshot_bucket: Ref | None = None
    # The node stack's own name: nodes signal its group (SignalResource).
    stack_name: AWSHelperFn = field(default_factory=lambda: Ref("AWS::StackName"))
    # The first server's stack ID, new at every create: the value of the cluster-state
    # marker, so a marker a deleted stack left behind is told apart from this cluster's.
    stack_id: AWSHelperFn = field(default_factory=lambda: Ref("AWS::StackId"))
    # Add-on parameters by name (see addon_parameters): drain queue URL, add-on secret ARNs.
    addon: dict[str, Ref] = field(default_factory=dict)
    # Every node: the digests of the K3s binary and airgap images its architecture installs
    # (K3S_FILES; the deployer staged both: deploy/artifacts.py).
    k3s_binary_sha256: Ref | None = None
    k3s_images_sha256: Ref | None = None


# BootRefs every role reads besides Role.needs: every node installs K3s.
K3S_FILES = ("k3s_binary_sha256", "k3s_images_sha256")


def addon_parameters(env: Environment, role: Role) -> tuple[str, ...]:
    """Node-stack parameters the enabled add-ons add to a role (servers only)."""
    if not role.is_server:
        return ()
    return tuple(value.parameter for value in addons.boot_values(env) if value.arn is None)


# A placeholder stands for a deploy-time parameter while the document is built and
# becomes ${Var} in Fn::Sub. It carries a random token drawn once per process, so no
# text from an environment file (labels, taints, schedules, add-on values) can spell
# one: a user string always comes out literally, never as a substitution.
_TOKEN = secrets.token_hex(16)
_PLACEHOLDER = re.compile(rf"__cfn{_TOKEN}_([A-Za-z0-9]+)__")


def _placeholder(field: str) -> str:
    return f"__cfn{_TOKEN}_{camel(field)}__"


def fact_marker(field: str) -> str:
    """Stands for a fact the boot reads from SSM (roles.Role.late) in the files it writes;
    boot.sh bind_facts replaces it with a value it checked (https://<DNS name> or a DNS name)."""
    return f"@@K3S_INFRA_FACT_{field.upper()}@@"


def _value(role: Role, field: str) -> str:
    """Where a deploy-time value goes in a role's files: a parameter, or a fact read at boot."""
    return fact_marker(field) if field in role.late else _placeholder(field)


def _boot_env(env: Environment, role: Role) -> dict[str, str]:
    p = _placeholder
    settings = {**boot_constants(), "BOOT_DEADLINE": str(role.boot_deadline_seconds), "ROLE": role.name,
                "K3S_SERVICE": role.unit,
                "API_HOST": _value(role, "api_dns_name"),
                "K3S_VERSION": env.k3s.version,
                # The K3s binary and airgap images, staged in the artifact bucket by the deployer
                # (deploy/artifacts.py) and read by digest (naming.k3s_artifact_key): nodes never
                # fetch them from the internet (boot.sh install_k3s).
                "ARTIFACT_BUCKET": env.artifact_bucket, "ARTIFACT_PREFIX": naming.k3s_artifacts_prefix(env),
                "K3S_BINARY_SHA256": p("k3s_binary_sha256"), "K3S_IMAGES_SHA256": p("k3s_images_sha256"),
                # SignalResource target: this node stack's group (CreationPolicy / UpdatePolicy).
                "SIGNAL_STACK": p("stack_name"),
                "SIGNAL_RESOURCE": role.signal_resource}
    # Paths only one kind of node reads (agent_ready; K3s's server data; the rejoin drop-in).
    if not role.is_server:
        settings |= {"TOKEN_SECRET": p("agent_token_secret"), "TOKEN_FILE": k3s_config.TOKEN_FILE,
                     "KUBELET_KUBECONFIG": k3s_config.KUBELET_KUBECONFIG}
    else:
        settings |= {"TOKEN_SECRET": p("token_secret"), "TOKEN_FILE": k3s_config.TOKEN_FILE,
                     "AGENT_TOKEN_SECRET": p("agent_token_secret"),
                     "AGENT_TOKEN_FILE": k3s_config.AGENT_TOKEN_FILE, "K3S_SERVER_DIR": K3S_SERVER_DIR}
    if role.is_server:
        # The rest of a server's boot (bundle.py): the parameter, and the digest it must match.
        settings |= {"BUNDLE_PARAMETERS": " ".join(bundle.parameter_names(env, role)),
                     "BUNDLE_SHA256": bundle.sha256(env, role), "BUNDLE_DIR": BUNDLE_DIR}
        # The watch (watch.sh) judges quorum from the API target group; its constants travel
        # in the bundle (bundle.settings).
        settings |= {"TARGET_GROUP": p("api_target_group"), "BOOT_SCRIPT": BOOT_SCRIPT}
    if role.initialises:
        # The published kubeconfig points at the public NLB when there is one (people use it).
        host = _value(role, "public_api_dns_name" if role.public_api(env) else "api_dns_name")
        settings |= {"REJOIN_CONFIG": REJOIN_CONFIG, "KUBECONFIG_SECRET": p("kubeconfig_secret"),
                     "STATE_PARAMETER": p("cluster_state_parameter"), "KUBECONFIG_HOST": host,
                     "CLUSTER_STACK_ID": p("stack_id"),
                     "RESTORE_PARAMETER": p("restore_request_parameter"),
                     # Where K3s uploads etcd snapshots: a lone server heals from the newest.
                     "SNAPSHOT_BUCKET": p("snapshot_bucket"), "SNAPSHOT_FOLDER": naming.snapshot_folder(env),
                     # The OIDC issuer's documents, copied from the API (first_server.sh publish_issuer).
                     "ISSUER_URL": _value(role, "issuer_url"), "ISSUER_BUCKET": _value(role, "issuer_bucket")}
    if role.facts(env):
        # NAME=<SSM parameter> per fact: boot.sh bind_facts waits for each (bounded).
        settings["FACTS"] = " ".join(f"{field.upper()}={naming.fact_parameter(env, field)}"
                                     for field in role.facts(env))
    packages, services = addons.node_packages(env)
    if packages:
        settings |= {"PACKAGES": " ".join(packages), "SERVICES": " ".join(services)}
    if role.is_server:
        # <Kubernetes Secret>=<chart value key>=<secret ARN | value>, space separated.
        for key, secret in (("ADDON_SECRETS", True), ("ADDON_VALUES", False)):
            entries = [f"{v.kubernetes_secret}={v.value_key}={v.arn or p(v.parameter)}"
                       for v in addons.boot_values(env) if v.secret is secret]
            if entries:
                settings[key] = " ".join(entries)
    return settings


def boot_constants() -> dict[str, str]:
    """What every node's boot shares: ports, paths, the first-start timeout, the waits
    (plain text in boot.env: packed apart, their gzip+base64 would be as long)."""
    return {"API_PORT": str(ports.API_PORT), "KUBELET_HEALTHZ_PORT": str(ports.KUBELET_HEALTHZ_PORT),
            "K3S_BINARY": k3s_config.K3S_BINARY, "K3S_CONFIG": K3S_CONFIG,
            "K3S_IMAGES_DIR": k3s_config.AIRGAP_IMAGES_DIR,
            "START_TIMEOUT": str(defaults.K3S_FIRST_START_TIMEOUT),
            "BOOT_DEADLINE": str(defaults.BOOT_DEADLINE_SECONDS),
            "SIGNAL_ALLOWANCE": str(defaults.SIGNAL_ALLOWANCE_SECONDS),
            "READY_TAG": naming.READY_TAG, "READY_VALUE": naming.READY_VALUE,
            **{key: str(value) for key, value in defaults.BOOT_WAITS.items()}}


_env_file = k3s_config.env_file


def files(env: Environment, role: Role, pool: AgentPool | None = None) -> list[dict[str, str]]:
    """The cloud-init write_files entries of a role, with parameter placeholders."""
    if not isinstance(role, Role):
        raise ValueError(f"unknown node role {role!r}")
    if role.is_server == (pool is not None):
        raise ValueError("an agent needs its pool, and only an agent has one")
    api = _value(role, "api_dns_name")
    if not role.is_server:
        config = k3s_config.agent(pool, api_host=api)
    else:
        config = k3s_config.server(env, init=role.initialises, api_host=api,
                                   snapshot_bucket=_placeholder("snapshot_bucket"),
                                   issuer_url=_value(role, "issuer_url"),
                                   public_host=_value(role, "public_api_dns_name") if role.public_api(env) else None)
    entries = [
        {"path": BOOT_ENV, "permissions": "0600", "content": _env_file(_boot_env(env, role))},
        {"path": K3S_CONFIG, "permissions": "0600", "content": k3s_config.dump(config)},
    ]
    if role.initialises:
        entries.append({"path": REJOIN_CONFIG, "permissions": "0600",
                        "content": k3s_config.dump(k3s_config.rejoin(api))})
    entries += [packed(f"{k3s_config.SYSTEMD_DIR}/{role.unit}.service", "0644", k3s_config.systemd_unit(role)),
                {"path": f"{k3s_config.FIRST_START_DROP_IN_DIR}/{role.unit}.service.d/10-first-start.conf",
                 "permissions": "0644", "content": k3s_config.first_start_drop_in()}]
    entries.append(packed(BOOT_SCRIPT, "0700", boot_script()))
    return entries


def packed(path: str, permissions: str, text: str) -> dict[str, str]:
    """A write_files entry of static text, gzip-compressed and base64-encoded."""
    if _PLACEHOLDER.search(text):
        raise ValueError(f"{path}: a packed file cannot carry deploy-time parameters")
    return {"path": path, "permissions": permissions, "encoding": "gz+b64", "content": _gz_b64(text)}


@functools.lru_cache(maxsize=8)  # the boot script and the add-on bundle repeat across node stacks
def _gz_b64(text: str) -> str:
    # mtime=0: the same text gives the same bytes (templates are content-addressed).
    return base64.b64encode(gzip.compress(text.encode(), compresslevel=9, mtime=0)).decode()


def unpacked(entry: dict[str, str]) -> str:
    """The text cloud-init writes for a write_files entry (plain or gz+b64)."""
    if entry.get("encoding") == "gz+b64":
        return gzip.decompress(base64.b64decode(entry["content"])).decode()
    return entry["content"]


def cloud_config(env: Environment, role: Role, pool: AgentPool | None = None) -> str:
    """The user data document, with parameter placeholders (not yet Fn::Sub text)."""
    document = {"write_files": files(env, role, pool), "runcmd": [[BOOT_SCRIPT]]}
    modules = addons.kernel_modules(env)
    if modules:
        # Loaded now (bootcmd runs first, every boot) and by systemd-modules-load on later boots.
        document["bootcmd"] = [["modprobe", module] for module in modules]
        document["write_files"].append({"path": MODULES_LOAD, "permissions": "0644",
                                        "content": "".join(f"{m}\n" for m in modules)})
    return "#cloud-config\n" + k3s_config.dump(document)


def _sub_text(document: str) -> str:
    """Escape the document's own ${...} for Fn::Sub, then turn placeholders into ${Var}."""
    return _PLACEHOLDER.sub(r"${\1}", document.replace("${", "${!"))


def resolve(sub_text: str, values: dict[str, str]) -> str:
    """What Fn::Sub makes of ``sub_text`` given a value per variable."""
    expanded = re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda m: values[m.group(1)], sub_text)
    return expanded.replace("${!", "${")


def worst_case_values(env: Environment) -> dict[str, str]:
    """The longest value each parameter can take, to bound the size of the user data."""
    partition, dns_suffix = rules.partition_of(env.region)
    arn = f"arn:{partition}:secretsmanager:{{region}}:{{account}}:secret:{{name}}-XXXXXX"
    secret = lambda what: arn.format(region=env.region, account=env.account_id,  # noqa: E731
                                     name=naming.secret_name(env, what))
    return {
        camel("token_secret"): secret("token"),
        camel("agent_token_secret"): secret("agent-token"),
        camel("kubeconfig_secret"): secret("kubeconfig"),
        camel("cluster_state_parameter"): naming.cluster_state_parameter(env),
        camel("restore_request_parameter"): naming.restore_request_parameter(env),
        # arn:<partition>:elasticloadbalancing:<region>:<account>:targetgroup/<32 chars>/<16 hex>
        camel("api_target_group"): f"arn:{partition}:elasticloadbalancing:{env.region}:{env.account_id}:"
                                          f"targetgroup/{'x' * 32}/{'0' * 16}",
        camel("stack_name"): "x" * 128,  # longest stack name
        # arn:<partition>:cloudformation:<region>:<account>:stack/<name of 128>/<UUID of 36>
        camel("stack_id"): f"arn:{partition}:cloudformation:{env.region}:{env.account_id}:stack/{'x' * 128}/"
                           f"{'0' * 36}",
        camel("snapshot_bucket"): "x" * 63,  # longest bucket name
        **{camel(field): "0" * 64 for field in K3S_FILES},  # SHA-256 hex digests
        # https://sqs.<region>.<suffix>/<account>/<queue name of at most 80 characters>, or the
        # legacy host <region>.queue.<suffix> (botocore endpoints.json), 2 characters longer.
        o.DRAIN_QUEUE_URL: f"https://{env.region}.queue.{dns_suffix}/{env.account_id}/" + "x" * 80,
        **{spec.output: arn.format(region=env.region, account=env.account_id,
                                   name=naming.addon_secret_name(env, spec.addon, spec.value_key))
           for spec in addons.all_secret_specs()},
    }


def user_data(env: Environment, role: Role, refs: BootRefs, pool: AgentPool | None = None) -> AWSHelperFn:
    text = _sub_text(cloud_config(env, role, pool))
    size = len(resolve(text, worst_case_values(env)).encode())
    if size > limits.MAX_USER_DATA_BYTES:
        where = f"agent pool {pool.name}" if pool else role.name
        # What a server's user data grows with: the SANs, labels and taints it carries.
        raise limits.LimitError(f"environment {env.name}", [(
            f"agent_pools[{pool.name}]" if pool else "k3s.tls_san",
            f"user data of {where} would be {size:,} bytes; EC2 allows at most {limits.MAX_USER_DATA_BYTES:,} "
            f"(fewer or shorter SANs, labels or taints)")])
    variables = {camel(field): getattr(refs, field) for field in (*role.needs, *K3S_FILES)}
    variables |= {name: refs.addon.get(name) for name in addon_parameters(env, role)}
    missing = [name for name, ref in variables.items() if ref is None]
    if missing:
        raise ValueError(f"{role.name} user data needs parameters {missing}")
    return Base64(Sub(text, **variables))
