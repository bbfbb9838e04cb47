"""The K3s API load balancers (k3s_infra/components/load_balancer.py): an internal network load
balancer in every environment, a TCP 6443 listener, and a target group healthy only when
K3s answers: HTTPS GET /ping on 6443, which K3s's supervisor answers 200 "pong"
unauthenticated (k3s-io/k3s pkg/server/router.go); 6443 is the K3s supervisor and API port
(https://docs.k3s.io/installation/requirements#inbound-rules-for-k3s-nodes).
"""

from __future__ import annotations

import pytest
import yaml

from k3s_infra.config import load_environment
from k3s_infra.render import render

from tests.support.oracle_helpers import DEPLOYABLE


def test_network_load_balancer(r):
    lb = r.resources("ApiEndpoint", "AWS::ElasticLoadBalancingV2::LoadBalancer")["ApiLoadBalancer"]["Properties"]
    assert lb["Type"] == "network" and lb["Scheme"] == "internal"  # nodes' door, in every environment
    assert lb["SecurityGroups"] == [{"Ref": "ApiLoadBalancerSecurityGroupId"}]
    listener = next(iter(r.resources("ApiEndpoint", "AWS::ElasticLoadBalancingV2::Listener").values()))
    assert (listener["Properties"]["Protocol"], listener["Properties"]["Port"]) == ("TCP", 6443)
    assert listener["Properties"]["DefaultActions"][0]["TargetGroupArn"] == {"Ref": "ApiTargetGroup"}
    group = r.resources("ApiEndpoint", "AWS::ElasticLoadBalancingV2::TargetGroup")["ApiTargetGroup"]["Properties"]
    assert (group["Protocol"], group["Port"]) == ("TCP", 6443)
    # Healthy only when K3s answers: HTTPS GET /ping on 6443, which K3s's supervisor answers
    # 200 "pong" unauthenticated (k3s-io/k3s pkg/server/router.go, router.Path("/ping")).
    assert (group["HealthCheckProtocol"], group["HealthCheckPort"], group["HealthCheckPath"]) == \
        ("HTTPS", "6443", "/ping")
    assert group["Matcher"] == {"HttpCode": "200"}
    attributes = {a["Key"]: a["Value"] for a in group["TargetGroupAttributes"]}
    assert attributes["preserve_client_ip.enabled"] == "false"  # NLB hairpin


@pytest.mark.parametrize("path", DEPLOYABLE, ids=lambda p: p.stem)
def test_api_target_groups_health_check_the_k3s_api_port(path):
    """6443 is the K3s supervisor and API port (https://docs.k3s.io/installation/requirements#inbound-rules-for-k3s-nodes):
    the NLB must probe the port the servers listen on."""
    groups = []
    for stack in render(load_environment(path=path)).children:
        for resource in yaml.safe_load(stack.body)["Resources"].values():
            if resource["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup":
                groups.append(resource["Properties"])
    api = [g for g in groups if g["Port"] == 6443]
    assert api
    for group in api:
        assert str(group.get("HealthCheckPort", "traffic-port")) in ("6443", "traffic-port")
        assert group["Protocol"] == "TCP" and group.get("HealthCheckProtocol", "TCP") in ("TCP", "HTTPS")



@pytest.mark.parametrize("path", DEPLOYABLE, ids=lambda p: p.stem)
def test_no_template_sets_deletion_protection_so_a_failed_create_rolls_back(path):
    """Issue 23: deploy turns deletion protection on for protected environments once the stack
    is up (deploy/protection.py; tests/e2e/test_protected.py). A template that set it would keep
    a failed first create's rollback from deleting the load balancer ("You can't delete a load
    balancer if deletion protection is enabled", ELB API Reference, DeleteLoadBalancer), and any
    value in it would be put back by the next stack update."""
    found = 0
    for stack in render(load_environment(path=path)).children:
        for resource in yaml.safe_load(stack.body)["Resources"].values():
            if resource["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer":
                found += 1
                keys = {a["Key"] for a in resource["Properties"]["LoadBalancerAttributes"]}
                assert "deletion_protection.enabled" not in keys, path.stem
    assert found >= 1
