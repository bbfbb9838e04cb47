"""Fixtures of the bootstrap tests: the node stacks of one shipped environment at a time."""

from __future__ import annotations

import pytest

from k3s_infra.config import available_environments
from tests.support.oracle_helpers import node_stack_ids


@pytest.fixture(params=available_environments())
def nodes(request, rendered):
    r = rendered[request.param]
    return r, {stack_id: r.templates[stack_id] for stack_id in node_stack_ids(r.templates)}
