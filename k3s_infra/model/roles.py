"""The node roles and what each one is: one value per role instead of strings
compared across modules.

A cluster has one first server (it initialises the cluster when there is none, see
boot.sh), further servers that join through the internal API load balancer, and agents
(one stack per pool). Templates, the boot, IAM and tags all read their facts here.
"""

from __future__ import annotations

from dataclasses import dataclass

from k3s_infra.config import AgentPool, Environment, defaults
from k3s_infra.config.catalog import NTH_MANAGED_TAG
from k3s_infra.model import naming


@dataclass(frozen=True)
class Role:
    name: str  # boot.env ROLE and the k3s-infra:role tag
    k3s_command: str  # `k3s server` or `k3s agent`
    unit: str  # systemd unit, as the official installer names it (k3s-io/k3s install.sh, setup_env)
    signal_resource: str  # logical ID of its auto scaling group: the boot signals it (SignalResource)
    initialises: bool  # may start a new cluster (cluster-init) when none exists
    needs: tuple[str, ...]  # the bootstrap.BootRefs it reads: its node stack declares exactly these
    # Facts it reads at boot from SSM (naming.fact_parameter) instead of as node-stack
    # parameters, so its stack does not wait for the slow stack that makes them.
    late: tuple[str, ...]
    # An IAM identity per kind of node: the NodeIam stack's role name prefix. The first server
    # has its own (only it publishes tokens, the kubeconfig and the OIDC keys), joining servers
    # share one, agents share one.
    identity: str

    @property
    def is_server(self) -> bool:
        """Servers run the control plane and etcd, and carry the cluster's add-on manifests."""
        return self.k3s_command == "server"

    def public_api(self, env: Environment) -> bool:
        """Whether the role carries the public API name: servers, when there is a public NLB."""
        return self.is_server and env.api.scheme == "internet-facing"

    @property
    def signal_timeout_seconds(self) -> int:
        """How long CloudFormation waits for its signals: a joiner's boot may first wait for the
        first server's whole boot (a first create starts them together)."""
        return defaults.NODE_SIGNAL_TIMEOUT_SECONDS if self.initialises else defaults.JOINER_SIGNAL_TIMEOUT_SECONDS

    @property
    def boot_deadline_seconds(self) -> int:
        """Its boot gives up by then, as far inside its signal timeout as the first server's."""
        return self.signal_timeout_seconds - (defaults.NODE_SIGNAL_TIMEOUT_SECONDS - defaults.BOOT_DEADLINE_SECONDS)

    def facts(self, env: Environment) -> tuple[str, ...]:
        """Its late facts in ``env``: the public API's name only where there is a public API."""
        return tuple(fact for fact in self.late if fact != "public_api_dns_name" or self.public_api(env))

    def tags(self, env: Environment, pool: AgentPool | None = None) -> dict[str, str]:
        """Tags of this role's nodes (launch template, instances, volumes, group)."""
        tags = {**naming.cluster_tags(env), **naming.ccm_discovery_tags(env), naming.ROLE_TAG: self.name}
        if env.draining:
            # The node termination handler drains only groups and instances wearing its tag.
            tags[NTH_MANAGED_TAG] = "true"
        if pool is not None:
            tags[naming.POOL_TAG] = pool.name
        return tags

    def __str__(self) -> str:
        return self.name


SERVER_INIT = Role(
    name="server-init", k3s_command="server", unit="k3s", signal_resource=naming.SERVER_GROUP, initialises=True,
    needs=("token_secret", "agent_token_secret", "kubeconfig_secret", "cluster_state_parameter",
           "restore_request_parameter", "api_target_group", "snapshot_bucket", "stack_name", "stack_id"),
    late=("api_dns_name", "public_api_dns_name", "issuer_url", "issuer_bucket"), identity="first-server")
SERVER = Role(
    name="server", k3s_command="server", unit="k3s", signal_resource=naming.SERVER_GROUP, initialises=False,
    needs=("token_secret", "agent_token_secret", "api_target_group", "snapshot_bucket", "stack_name"),
    late=("api_dns_name", "public_api_dns_name", "issuer_url"), identity="server")
AGENT = Role(
    name="agent", k3s_command="agent", unit="k3s-agent", signal_resource=naming.AGENT_GROUP, initialises=False,
    needs=("agent_token_secret", "stack_name"), late=("api_dns_name",), identity="agent")

ROLES: tuple[Role, ...] = (SERVER_INIT, SERVER, AGENT)


def by_name(name: str) -> Role:
    for role in ROLES:
        if role.name == name:
            return role
    raise ValueError(f"unknown node role {name!r}; one of {', '.join(r.name for r in ROLES)}")


def named_by_identity(identity: str) -> tuple[str, ...]:
    """Names of the roles sharing one IAM identity (IAM conditions on the role tag)."""
    return tuple(role.name for role in ROLES if role.identity == identity)
