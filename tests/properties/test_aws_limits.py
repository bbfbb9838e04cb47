"""CloudFormation limits are enforced at render time, and a large cluster stays within them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from k3s_infra.model import limits
from k3s_infra.config import validate
from k3s_infra.render import render

ROOT = Path(__file__).resolve().parent.parent


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
    assert len(rendering.children) == 6 + 30
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


def test_too_many_api_cidrs_is_refused_by_the_config(env_document, tmp_path):
    document = env_document("prod")
    document["api"] = {**document["api"], "allowed_cidrs": [f"10.{i // 250}.{i % 250}.0/24" for i in range(60)]}
    env_file = tmp_path / "many.yaml"
    env_file.write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(ROOT / "build.py"), "--config", str(env_file), "--out", str(out)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "api.allowed_cidrs" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_a_template_beyond_a_quota_is_a_limit_error():
    from troposphere.ssm import Parameter

    from k3s_infra.components.template import StackTemplate

    with pytest.raises(limits.LimitError) as caught:
        limits.check_body("big", "child.yaml", "x" * 1_000_001)
    assert str(caught.value) == \
        "environment big: child.yaml is 1,000,001 bytes; CloudFormation allows at most 1,000,000"

    stack = StackTemplate("k3s-infra big: test", {})
    for i in range(limits.MAX_RESOURCES):
        stack.add(Parameter(f"P{i}", Type="String", Value="v"))
    with pytest.raises(limits.LimitError, match="more than 500 resources"):
        stack.add(Parameter("OneTooMany", Type="String", Value="v"))
    for i in range(limits.MAX_OUTPUTS):
        stack.output(f"O{i}", "v", "output")
    with pytest.raises(limits.LimitError, match="more than 200 outputs"):
        stack.output("OneTooMany", "v", "output")
