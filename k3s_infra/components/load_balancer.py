"""The K3s API endpoints: network load balancers with a TCP 6443 listener.

The internal one is the fixed registration address every joining server and
agent uses, in every environment. With ``api.scheme: internet-facing`` a second,
public one serves people and CI from ``api.allowed_cidrs``; both forward to the
same servers (each has its own target group, servers register in both).
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Ref
from troposphere.elasticloadbalancingv2 import (
    Action,
    Listener,
    LoadBalancer,
    LoadBalancerAttributes,
    Matcher,
    TargetGroup,
    TargetGroupAttribute,
)

from k3s_infra.components.template import StackTemplate
from k3s_infra.model import naming, ports

INTERNAL, PUBLIC = "internal", "internet-facing"
_PREFIX = {INTERNAL: "Api", PUBLIC: "PublicApi"}


PING_PATH = "/ping"


@dataclass(frozen=True)
class ApiEndpointRefs:
    dns_name: GetAtt
    target_group: Ref
    load_balancer: Ref


def build(t: StackTemplate, scheme: str, vpc_id: Ref, subnet_ids: Ref, security_group_id: Ref) -> ApiEndpointRefs:
    """``subnet_ids``: one per Availability Zone (a load balancer takes at most one per zone:
    ELB API Reference, CreateLoadBalancer, Subnets). Deletion protection is not set here:
    deploy sets it for protected environments once the stack is up (deploy/protection.py)."""
    prefix = _PREFIX[scheme]
    nlb = t.add(LoadBalancer(
        naming.logical_id(prefix, "LoadBalancer"), Type="network", Scheme=scheme, Subnets=subnet_ids,
        SecurityGroups=[security_group_id],
        LoadBalancerAttributes=[
            LoadBalancerAttributes(Key="load_balancing.cross_zone.enabled", Value="true"),
        ]))
    t.skip_check(nlb, "CKV_AWS_91", "NLB access logs exist only for TLS listeners; 6443 is TCP pass-through "
                                    "(TLS ends at K3s, whose audit log records API access)")
    target_group = t.add(TargetGroup(
        naming.logical_id(prefix, "TargetGroup"), Protocol="TCP", Port=ports.API_PORT, VpcId=vpc_id,
        TargetType="instance",
        # K3s's supervisor answers GET /ping with 200 "pong" without authentication
        # (k3s-io/k3s pkg/server/router.go: router.Path("/ping").Handler(ping()), registered
        # beside the authenticated handlers), only once K3s serves 6443: a TCP check would
        # also pass for a half-started process. Server groups use this check (ELB health).
        HealthCheckProtocol="HTTPS", HealthCheckPort=str(ports.API_PORT), HealthCheckPath=PING_PATH,
        Matcher=Matcher(HttpCode="200"), HealthCheckIntervalSeconds=10,
        HealthyThresholdCount=3, UnhealthyThresholdCount=3,
        TargetGroupAttributes=[
            # Hairpin: with client IPs preserved, a server reaching the API through the NLB
            # can be routed to itself and time out.
            TargetGroupAttribute(Key="preserve_client_ip.enabled", Value="false"),
            TargetGroupAttribute(Key="deregistration_delay.timeout_seconds", Value="30"),
        ]))
    t.add(Listener(
        naming.logical_id(prefix, "Listener"), LoadBalancerArn=Ref(nlb), Port=ports.API_PORT, Protocol="TCP",
        DefaultActions=[Action(Type="forward", TargetGroupArn=Ref(target_group))]))
    return ApiEndpointRefs(dns_name=GetAtt(nlb, "DNSName"), target_group=Ref(target_group),
                           load_balancer=Ref(nlb))
