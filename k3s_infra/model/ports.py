"""The K3s inbound port table, as data: the single source of every node rule.

From the K3s networking requirements. Each rule says which group receives the
traffic, from which group, and when it applies. Nothing else is opened
between nodes; the API CIDRs a user lists reach 6443 only through the NLB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Group = Literal["server", "agent", "api_lb", "public_api_lb"]
NODES: tuple[Group, ...] = ("server", "agent")


@dataclass(frozen=True)
class PortRule:
    protocol: Literal["tcp", "udp"]
    from_port: int
    to_port: int
    target: Group
    source: Group
    purpose: str
    flannel_backend: str | None = None  # only for this flannel backend

    @property
    def ports(self) -> str:
        return str(self.from_port) if self.from_port == self.to_port else f"{self.from_port}-{self.to_port}"


def _all_nodes(protocol, port, purpose, flannel_backend=None):
    return [PortRule(protocol, port, port, target, source, purpose, flannel_backend)
            for target in NODES for source in NODES]


API_PORT = 6443
# The kubelet's health endpoint, on 127.0.0.1 only (never a security-group rule): the boot
# waits on it for an agent (kubelet --healthz-port, default 10248).
KUBELET_HEALTHZ_PORT = 10248

NODE_RULES: tuple[PortRule, ...] = (
    PortRule("tcp", 2379, 2380, "server", "server", "etcd client and peer"),
    PortRule("tcp", API_PORT, API_PORT, "server", "server", "K3s supervisor and API"),
    PortRule("tcp", API_PORT, API_PORT, "server", "agent", "K3s supervisor and API"),
    PortRule("tcp", API_PORT, API_PORT, "server", "api_lb", "K3s API through the NLB"),
    *_all_nodes("udp", 8472, "Flannel VXLAN", "vxlan"),
    *_all_nodes("udp", 51820, "Flannel WireGuard IPv4", "wireguard-native"),
    *_all_nodes("tcp", 10250, "kubelet metrics and API"),
)

# Who may reach the NLB listener besides the CIDRs a user lists: nodes join through it.
API_LB_SOURCES: tuple[Group, ...] = NODES

# api.scheme internet-facing adds a second, public NLB for people and CI (api.allowed_cidrs
# only); its target group holds the same servers. Nodes never use it: security-group
# references match only private source IPs, so a node reaching a public address would
# never match the rules above.
PUBLIC_API_RULES: tuple[PortRule, ...] = (
    PortRule("tcp", API_PORT, API_PORT, "server", "public_api_lb", "K3s API through the public NLB"),
)


def node_rules(flannel_backend: str, public_api: bool = False) -> list[PortRule]:
    rules = [r for r in NODE_RULES if r.flannel_backend in (None, flannel_backend)]
    return rules + list(PUBLIC_API_RULES) if public_api else rules
