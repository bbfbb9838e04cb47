"""Agent pool names stay distinct after every transformation they go through on the way to AWS
(k3s_infra/config/pools.py). A pool becomes the nested stack ``naming.agent_pool_stack(name)``
(logical ID AgentPool + camel case), whose template file is ``naming.template_file(stack,
fmt)`` (kebab case) and whose S3 key and child stack name derive from those; two pools that
meet anywhere there are one stack, one pool silently lost. config cannot import the model, so
it spells the transformations itself; the first test pins that its spelling is naming's.
"""

from __future__ import annotations

import pytest

from k3s_infra.config import validate
from k3s_infra.config.pools import pool_identities
from k3s_infra.model import naming
from tests.support.config_errors import paths, refused

NAMES = ["general", "spot-batch", "a-b", "ab", "a-bc", "abc", "web-1", "web1", "gpu-a10g", "x1-y2-z3",
         "arm64-large", "a1-b", "a1b", "zz", "k8s-system-pool-2024-01"]


@pytest.mark.parametrize("name", NAMES)
def test_configs_notion_of_a_pools_names_is_namings(name):
    stack = naming.agent_pool_stack(name)
    assert pool_identities(name) == {"stack": stack, "template file": naming.template_file(stack, "yaml")}


def _pool(name: str) -> dict:
    return {"name": name, "instance_types": ["t3.small"], "min_size": 1, "desired": 1, "max_size": 1}


COLLIDING = {
    "dash dropped": ("a-b", "ab"),            # AgentPoolAB / AgentPoolAb: one file agent-pool-ab.yaml
    "dash moved": ("a-bc", "abc"),            # AgentPoolABc / AgentPoolAbc: agent-pool-abc.yaml
    "dash before a digit": ("web-1", "web1"),  # both AgentPoolWeb1
    "two dashes": ("x-y-z", "xyz"),
}
# Logical IDs that differ only in case (AgentPoolA1B / AgentPoolA1b) are refused too, by choice:
# their files differ (agent-pool-a1-b.yaml, agent-pool-a1b.yaml), but one case-insensitive
# consumer of the IDs would merge them, and renaming a pool costs nothing.
CASE_ONLY = ("a1-b", "a1b")


@pytest.mark.parametrize("case", sorted(COLLIDING))
def test_pools_that_become_one_stack_or_file_are_refused_naming_the_field(dev, case):
    first, second = COLLIDING[case]
    dev["agent_pools"] = [_pool(first), _pool(second)]
    error = refused(dev)
    assert paths(error) == [f"agent_pools[{second}].name"]
    assert repr(first) in str(error) and repr(second) in str(error) and "both become" in str(error)
    # the oracle: naming really would make them one file
    files = {naming.template_file(naming.agent_pool_stack(n), "yaml") for n in (first, second)}
    assert len(files) == 1


def test_logical_ids_that_differ_only_in_case_are_refused(dev):
    dev["agent_pools"] = [_pool(n) for n in CASE_ONLY]
    assert paths(refused(dev)) == [f"agent_pools[{CASE_ONLY[1]}].name"]
    ids = [naming.agent_pool_stack(n) for n in CASE_ONLY]
    assert ids[0] != ids[1] and ids[0].lower() == ids[1].lower()


def test_distinct_names_stay_accepted(dev):
    dev["agent_pools"] = [_pool(n) for n in ("a1-b", "a2b", "general", "spot-batch")]
    env = validate(dev, "dev.yaml")
    files = {naming.template_file(naming.agent_pool_stack(p.name), "yaml") for p in env.agent_pools}
    assert len(files) == 4
