"""CloudFormation and EC2 limits hold at scale and for every add-on: thirty pools and five
servers stay within CloudFormation's quotas (k3s_infra/model/limits.py), each added pool
costs the same, and an environment with every add-on on fits EC2's 16 KB of user data.
"""

from __future__ import annotations

import pytest
import yaml

from k3s_infra import bootstrap
from k3s_infra.config import validate
from k3s_infra.model import limits
from k3s_infra.render import render

from tests.support.oracle_helpers import user_data_text


def with_pools(document: dict, count: int) -> dict:
    pool = document["agent_pools"][0]
    document = {**document, "agent_pools": [{**pool, "name": f"pool-{i:02d}"} for i in range(count)]}
    # Each node takes a /24 of the pod range: 30 pools of up to 9 nodes outgrow the default /16.
    document["k3s"] = {**document.get("k3s", {}), "cluster_cidr": "10.40.0.0/15"}
    return document


@pytest.fixture
def big(env_document) -> dict:
    document = with_pools(env_document("prod"), 30)
    document["servers"] = {**document["servers"], "count": 5}
    return document


def test_thirty_pools_and_five_servers_stay_within_limits(big):
    rendering = render(validate(big, "big.yaml"))
    # security, API endpoint, cluster data, node IAM, identity, issuer access, two server stacks
    assert len(rendering.children) == 8 + 30
    for stack in rendering.stacks:
        document = yaml.safe_load(stack.body)
        assert len(document["Resources"]) <= limits.MAX_RESOURCES
        assert len(document.get("Parameters", {})) <= limits.MAX_PARAMETERS
        assert len(document.get("Outputs", {})) <= limits.MAX_OUTPUTS
        assert len(stack.body.encode()) <= limits.MAX_TEMPLATE_BYTES


def test_each_added_pool_costs_the_same(env_document):
    """Cost per pool is constant: one more child of the same size, a fixed increment of the root."""
    sizes = {}
    for count in (1, 10, 30):
        rendering = render(validate(with_pools(env_document("prod"), count), "pools.yaml"))
        pools = [c for c in rendering.children if c.stack_id.startswith("AgentPool")]
        assert len(pools) == count
        assert len({len(c.body) for c in pools}) == 1  # identical pools, identical template sizes
        sizes[count] = len(rendering.root.body)
    per_pool_first, per_pool_second = (sizes[10] - sizes[1]) / 9, (sizes[30] - sizes[10]) / 20
    assert abs(per_pool_first - per_pool_second) <= 2  # bytes: linear growth of the root


def test_every_addon_fits_in_the_user_data_limit(everything):
    env, _, _, templates = everything
    for stack_id, template in templates.items():
        if not any(r["Type"] == "AWS::EC2::LaunchTemplate" for r in template.get("Resources", {}).values()):
            continue
        worst = bootstrap.resolve(user_data_text(template), bootstrap.worst_case_values(env)).encode()
        assert len(worst) <= limits.MAX_USER_DATA_BYTES, stack_id
