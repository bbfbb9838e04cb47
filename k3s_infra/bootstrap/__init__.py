"""Node boot: the user data of each node role.

The user data is a ``#cloud-config`` document whose ``write_files`` carry
everything a node needs, so it never downloads its own logic:

* ``/etc/rancher/k3s/config.yaml``: the role's K3s configuration, built as data
  in ``k3s_config`` and dumped as YAML here;
* ``/etc/k3s-infra/boot.env``: the few settings the boot script needs (role,
  API host, secret ARNs, K3s version, installer URL; never a secret value);
* ``/etc/k3s-infra/rejoin.yaml`` (first server only): the drop-in that makes a
  replaced first server join the existing cluster instead of initialising one;
* the AWS cloud controller manager's HelmChart (servers only);
* ``boot.sh`` from this package, run once by ``runcmd``.

Deploy-time values (the load balancer's DNS name, secret ARNs, the snapshot
bucket) are node-stack parameters, substituted by ``Fn::Sub``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from troposphere import AWSHelperFn, Base64, Ref, Sub

from k3s_infra import limits, naming
from k3s_infra.bootstrap import k3s_config
from k3s_infra.config import AgentPool, Environment

ROLES = ("server-init", "server", "agent")

BOOT_SCRIPT = "/usr/local/sbin/k3s-infra-boot"
BOOT_ENV = "/etc/k3s-infra/boot.env"
REJOIN_CONFIG = "/etc/k3s-infra/rejoin.yaml"
K3S_CONFIG = "/etc/rancher/k3s/config.yaml"
CCM_MANIFEST = "/var/lib/rancher/k3s/server/manifests/k3s-infra-aws-cloud-controller-manager.yaml"


@dataclass(frozen=True)
class BootRefs:
    """Node-stack parameters the boot script needs (None where a role has no use for one)."""

    api_dns_name: Ref
    agent_token_secret: Ref
    token_secret: Ref | None = None
    kubeconfig_secret: Ref | None = None
    cluster_state_parameter: Ref | None = None
    snapshot_bucket: Ref | None = None


# Which BootRefs each role uses; the node stacks declare exactly these parameters.
NEEDS: dict[str, tuple[str, ...]] = {
    "server-init": ("api_dns_name", "token_secret", "agent_token_secret", "kubeconfig_secret",
                    "cluster_state_parameter", "snapshot_bucket"),
    "server": ("api_dns_name", "token_secret", "agent_token_secret", "snapshot_bucket"),
    "agent": ("api_dns_name", "agent_token_secret"),
}


def boot_script() -> str:
    return resources.files(__package__).joinpath("boot.sh").read_text(encoding="utf-8")


def _placeholder(field: str) -> str:
    """Stands for a parameter while the document is built; becomes ${Var} in Fn::Sub."""
    return f"__cfn_{naming.camel(field)}__"


_PLACEHOLDER = re.compile(r"__cfn_([A-Za-z0-9]+)__")


def _boot_env(env: Environment, role: str) -> dict[str, str]:
    p = _placeholder
    settings = {"ROLE": role, "API_HOST": p("api_dns_name"),
                "K3S_VERSION": env.k3s.version, "INSTALLER_URL": env.k3s.installer_url}
    if role == "agent":
        settings |= {"TOKEN_SECRET": p("agent_token_secret"), "TOKEN_FILE": k3s_config.TOKEN_FILE}
    else:
        settings |= {"TOKEN_SECRET": p("token_secret"), "TOKEN_FILE": k3s_config.TOKEN_FILE,
                     "AGENT_TOKEN_SECRET": p("agent_token_secret"),
                     "AGENT_TOKEN_FILE": k3s_config.AGENT_TOKEN_FILE}
    if role == "server-init":
        settings |= {"KUBECONFIG_SECRET": p("kubeconfig_secret"),
                     "STATE_PARAMETER": p("cluster_state_parameter")}
    for key, value in settings.items():
        if "'" in value or "\n" in value:
            raise ValueError(f"boot setting {key} cannot be shell-quoted: {value!r}")
    return settings


def files(env: Environment, role: str, pool: AgentPool | None = None) -> list[dict[str, str]]:
    """The cloud-init write_files entries of a role, with parameter placeholders."""
    if role not in ROLES:
        raise ValueError(f"unknown node role {role!r}")
    if (role == "agent") != (pool is not None):
        raise ValueError("an agent needs its pool, and only an agent has one")
    api = _placeholder("api_dns_name")
    if role == "agent":
        config = k3s_config.agent(pool, api_host=api)
    else:
        config = k3s_config.server(env, init=role == "server-init", api_host=api,
                                   snapshot_bucket=_placeholder("snapshot_bucket"))
    boot_env = "".join(f"{key}='{value}'\n" for key, value in _boot_env(env, role).items())
    entries = [
        {"path": BOOT_ENV, "permissions": "0600", "content": boot_env},
        {"path": K3S_CONFIG, "permissions": "0600", "content": k3s_config.dump(config)},
    ]
    if role == "server-init":
        entries.append({"path": REJOIN_CONFIG, "permissions": "0600",
                        "content": k3s_config.dump(k3s_config.rejoin(api))})
    if role != "agent":
        entries.append({"path": CCM_MANIFEST, "permissions": "0600",
                        "content": k3s_config.dump(k3s_config.cloud_controller_manifest(env))})
    entries.append({"path": BOOT_SCRIPT, "permissions": "0700", "content": boot_script()})
    return entries


def cloud_config(env: Environment, role: str, pool: AgentPool | None = None) -> str:
    """The user data document, with parameter placeholders (not yet Fn::Sub text)."""
    document = {"write_files": files(env, role, pool), "runcmd": [[BOOT_SCRIPT]]}
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
    arn = "arn:aws-iso-b:secretsmanager:{region}:{account}:secret:{name}-XXXXXX"
    secret = lambda what: arn.format(region=env.region, account=env.account_id,  # noqa: E731
                                     name=naming.secret_name(env, what))
    return {
        naming.camel("api_dns_name"): "x" * 253,  # longest DNS name
        naming.camel("token_secret"): secret("token"),
        naming.camel("agent_token_secret"): secret("agent-token"),
        naming.camel("kubeconfig_secret"): secret("kubeconfig"),
        naming.camel("cluster_state_parameter"): naming.cluster_state_parameter(env),
        naming.camel("snapshot_bucket"): "x" * 63,  # longest bucket name
    }


def user_data(env: Environment, role: str, refs: BootRefs, pool: AgentPool | None = None) -> AWSHelperFn:
    text = _sub_text(cloud_config(env, role, pool))
    size = len(resolve(text, worst_case_values(env)).encode())
    if size > limits.MAX_USER_DATA_BYTES:
        where = f"agent pool {pool.name}" if pool else role
        raise limits.LimitError(f"environment {env.name}", [(
            f"agent_pools[{pool.name}]" if pool else "k3s",
            f"user data of {where} would be {size:,} bytes; EC2 allows at most {limits.MAX_USER_DATA_BYTES:,}")])
    variables = {naming.camel(field): getattr(refs, field) for field in NEEDS[role]}
    missing = [name for name, ref in variables.items() if ref is None]
    if missing:
        raise ValueError(f"{role} user data needs parameters {missing}")
    return Base64(Sub(text, **variables))
