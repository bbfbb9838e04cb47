"""Performance bars of issue 25 as a table, against the time-to-ready model (model/timing.py)
on the graph as rendered now: a prod-like cluster (3 servers, 2 pools) ready in 8 minutes, 5
servers and 3 pools in 10, a one-server dev cluster's API back within 5 minutes of a roll.

MODEL_SAYS records what the model computes for today's graph and numbers; when the graph or
model/durations.py changes, update it from the failure message (that review is the point: a
change that lengthens the critical path shows here). The bars that the graph does not meet
yet are strict xfails: they document the target and fail once it is met (then drop the mark).
Adding pools must never lengthen the critical path: pools are parallel."""

from __future__ import annotations

import copy

import pytest

from k3s_infra.cli.estimate import templates_of
from k3s_infra.config import ENVIRONMENTS_DIR, read_document, validate
from k3s_infra.model import timing
from k3s_infra.render import render

MINUTE = 60.0


def _templates(document: dict, creating: bool = True) -> dict[str, dict]:
    """As plan and estimate read them: the root of a first create (or of an update)."""
    return templates_of(render(validate(document, "perf.yaml")), creating=creating)


def cluster(servers: int, pools: int) -> dict[str, dict]:
    """prod.yaml with ``servers`` servers and ``pools`` agent pools (its own, then copies of its
    first pool under new names)."""
    document = copy.deepcopy(read_document(ENVIRONMENTS_DIR / "prod.yaml"))
    document["servers"]["count"] = servers
    own = document["agent_pools"]
    extra = [{**copy.deepcopy(own[0]), "name": f"extra-{n}"} for n in range(max(0, pools - len(own)))]
    document["agent_pools"] = (own + extra)[:pools]
    return _templates(document)


def dev() -> dict[str, dict]:
    return _templates(read_document(ENVIRONMENTS_DIR / "dev.yaml"), creating=False)


# (row, how it is built, what is measured) -> seconds the model says today, and the bar.
ROWS = {
    "prod-like: 3 servers + 2 pools, create": (lambda: cluster(3, 2), "create", 8 * MINUTE),
    "5 servers + 3 pools, create": (lambda: cluster(5, 3), "create", 10 * MINUTE),
    "dev (1 server): roll, until the API answers again": (dev, "roll api", 5 * MINUTE),
}
MODEL_SAYS = {
    "prod-like: 3 servers + 2 pools, create": 713,
    "5 servers + 3 pools, create": 773,
    "dev (1 server): roll, until the API answers again": 300,
}
MET = {"dev (1 server): roll, until the API answers again"}  # rows whose bar the current graph meets


def measure(build, what: str) -> float:
    templates = build()
    if what == "create":
        return timing.estimate_create(templates).total
    return timing.estimate_roll(templates).api_ready


@pytest.fixture(scope="module")
def measured() -> dict[str, float]:
    return {row: measure(build, what) for row, (build, what, _) in ROWS.items()}


@pytest.mark.parametrize("row", ROWS)
def test_the_estimate_is_what_the_model_says(measured, row):
    assert round(measured[row]) == MODEL_SAYS[row], f"the model now says {round(measured[row])} s for {row!r}"


@pytest.mark.parametrize("row", ROWS)
def test_the_performance_bar(measured, row, request):
    if row not in MET:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"target, not met yet: {row} within "
                                                                  f"{ROWS[row][2] / MINUTE:g} min"))
    assert measured[row] <= ROWS[row][2]


@pytest.mark.parametrize("servers, few, many", [(3, 2, 5), (5, 1, 3)])
def test_adding_pools_does_not_lengthen_the_critical_path(servers, few, many):
    fewer, more = timing.estimate_create(cluster(servers, few)), timing.estimate_create(cluster(servers, many))
    # (The stacks before the issuer may differ: a spot pool brings the Draining stack.)
    assert more.total == fewer.total
    assert not [s for s in more.critical_path if s.startswith("AgentPool")]
