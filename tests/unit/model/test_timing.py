"""The time-to-ready model (k3s_infra/model/timing.py) against the rendered graph: every wave
starts when the siblings its root entry names are complete, parsed here on their own, and the
model's total is the longest path through that graph; it follows the graph when the graph
changes (late-bound facts instead of DependsOn), and rolls in DependsOn order."""

from __future__ import annotations

import copy
import itertools
import re
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from k3s_infra.model import durations as d
from k3s_infra.model import naming, node_timing, timing

ROOT = Path(__file__).resolve().parents[3]
SUB = re.compile(r"\$\{([A-Za-z0-9]+)[^}]*\}")  # ${Name} or ${Name.Attr}; not ${!Literal} nor ${AWS::...}


# --- an independent reading of the root: GetAtt and Ref in Parameters, DependsOn ---------

def _named(node, found: set) -> set:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Ref":
                found.add(value)
            else:
                _named(value, found)
    elif isinstance(node, list):
        for value in node:
            _named(value, found)
    elif isinstance(node, str):
        found.update(SUB.findall(node))
    return found


def root_edges(templates: dict) -> dict[str, set[str]]:
    resources = templates["Root"]["Resources"]
    stacks = {k for k, v in resources.items() if v["Type"] == "AWS::CloudFormation::Stack"}
    result = {}
    for stack in stacks:
        entry = resources[stack]
        after = entry.get("DependsOn", [])
        result[stack] = (_named(entry["Properties"], set()) | set([after] if isinstance(after, str) else after)) \
            & stacks
    return result


def longest(edges: dict[str, set[str]], weight: dict[str, float]) -> tuple[float, list[str]]:
    """The longest path by dynamic programming over the DAG (no library)."""
    best: dict[str, tuple[float, list[str]]] = {}

    def ending_at(stack):
        if stack not in best:
            before = max((ending_at(dep) for dep in edges[stack]), default=(0.0, []), key=lambda b: b[0])
            best[stack] = (before[0] + weight[stack], [*before[1], stack])
        return best[stack]

    return max((ending_at(s) for s in edges), key=lambda b: b[0])


@pytest.fixture(params=["dev", "prod", "staging", "prod, first-create root"])
def graph(request, rendered):
    name, _, which = request.param.partition(", ")
    templates = dict(rendered[name].templates)
    if which:  # the root of a first create, where the rendering has one (node stacks together)
        templates["Root"] = templates.get(getattr(naming, "ROOT_CREATE", "-"), templates["Root"])
    return templates, timing.estimate_create(templates)


def test_every_wave_starts_when_the_stacks_it_names_are_complete(graph):
    templates, estimate = graph
    edges = root_edges(templates)
    waves = {w.stack: w for w in estimate.waves}
    assert set(waves) == set(edges)  # every nested stack, none invented
    for stack, deps in edges.items():
        assert waves[stack].start == max((waves[dep].end for dep in deps), default=0.0), stack


def test_the_total_is_the_longest_path_through_the_rendered_graph(graph):
    templates, estimate = graph
    edges = root_edges(templates)
    total, path = longest(edges, {w.stack: w.seconds for w in estimate.waves})
    ends = {w.stack: w.end for w in estimate.waves}
    assert estimate.total == pytest.approx(total) == ends[path[-1]] == ends[estimate.critical_path[-1]]


def test_each_step_of_the_critical_path_is_an_edge_of_the_graph_or_a_late_bound_fact(graph):
    templates, estimate = graph
    edges = root_edges(templates)
    path = estimate.critical_path
    waves = {w.stack: w for w in estimate.waves}
    assert waves[path[0]].start == 0
    for before, after in itertools.pairwise(path):
        late = {s for pattern, names in d.LATE_BOUND.items() if fnmatchcase(after, pattern) for s in names}
        assert before in edges[after] | late, (before, after)
        assert waves[after].start == waves[before].end or before in late, (before, after)
    assert {w.stack for w in estimate.waves if w.critical} == set(path)


def _resource_edges(resources: dict) -> dict[str, set[str]]:
    ids = set(resources)
    result = {}
    for lid, resource in resources.items():
        after = resource.get("DependsOn", [])
        named = _named(resource.get("Properties", {}), set()) | set([after] if isinstance(after, str) else after)
        result[lid] = named & ids - {lid}
    return result


def test_a_stack_without_nodes_takes_the_longest_path_through_its_resources(graph):
    templates, estimate = graph
    for wave in estimate.waves:
        if node_timing.role_of(wave.stack):
            continue
        resources = templates[wave.stack]["Resources"]
        inside, _ = longest(_resource_edges(resources), {k: timing.resource_seconds(r) for k, r in resources.items()})
        assert wave.seconds == pytest.approx(inside + d.NESTED_STACK.seconds), wave.stack


def test_node_stacks_take_their_boot_until_the_signal(rendered):
    estimate = timing.estimate_create(rendered["prod"].templates)
    for wave in estimate.waves:
        if node_timing.role_of(wave.stack):
            assert wave.phases and wave.phases[-1].name == "signal"
            # The first server is ready once its API answers through the load balancer, which
            # may be after its signal; every other group is ready before it signals.
            assert wave.stack == "ServerInit" or wave.ready <= wave.phases[-1].start
            assert wave.end == pytest.approx(wave.phases[-1].end + d.NESTED_STACK.seconds)
    first = next(w for w in estimate.waves if w.stack == "ServerInit")
    assert estimate.api_ready == first.ready
    # A first create: no marker, so no probe for a cluster (first_server.sh probe_worthwhile).
    assert "probe for a cluster" not in [p.name for p in first.phases]


def test_the_graph_can_change_facts_read_at_boot_replace_depends_on(rendered):
    """Without DependsOn between the node stacks (a first create), joining servers and pools
    launch with the first server and their K3s waits for it: the model reads the new graph."""
    templates = copy.deepcopy(rendered["prod"].templates)
    for entry in templates["Root"]["Resources"].values():
        entry.pop("DependsOn", None)
    ordered = timing.estimate_create(rendered["prod"].templates)
    free = timing.estimate_create(templates)
    waves = {w.stack: w for w in free.waves}
    first = waves["ServerInit"]
    for stack in ("Servers", "AgentPoolGeneral"):
        wait = next(p for p in waves[stack].phases if p.name == "wait for ServerInit")
        assert wait.end == pytest.approx(first.ready) and waves[stack].start < first.end
        assert "K3s waits for ServerInit ready" in waves[stack].reason
    assert free.total < ordered.total
    assert "ServerInit" in free.critical_path


def test_a_late_bound_stack_that_is_absent_is_no_wait(rendered):
    templates = copy.deepcopy(rendered["dev"].templates)
    del templates["Root"]["Resources"]["Identity"]  # e.g. a partition without the issuer stack
    for entry in templates["Root"]["Resources"].values():
        for name in [n for n, v in entry["Properties"].get("Parameters", {}).items() if "Identity" in str(v)]:
            entry["Properties"]["Parameters"][name] = "x"
    estimate = timing.estimate_create(templates)
    assert "Identity" not in {w.stack for w in estimate.waves}
    assert not any("Identity" in p.name for w in estimate.waves for p in w.phases)


def test_references_read_ref_getatt_sub_and_skip_sub_locals_and_literals():
    fragment = {"A": {"Ref": "Vpc"}, "B": {"Fn::GetAtt": ["Group", "Arn"]}, "C": {"Fn::GetAtt": "Queue.Url"},
                "D": {"Fn::Sub": "${Bucket}/${Role.Arn}/${!Literal}/${AWS::Region}"},
                "E": {"Fn::Sub": ["${Local}-${Key}", {"Local": {"Ref": "Topic"}}]}}
    assert timing.references(fragment) == {"Vpc", "Group", "Queue", "Bucket", "Role", "AWS::Region", "Key", "Topic"}


def test_resources_wait_for_what_they_name_and_unknown_types_take_the_default():
    resources = {"Key": {"Type": "AWS::KMS::Key"},
                 "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {"KmsKeyId": {"Ref": "Key"}}},
                 "Odd": {"Type": "AWS::Example::Thing", "DependsOn": "Secret"},
                 "Endpoint": {"Type": "AWS::EC2::VPCEndpoint", "Properties": {"VpcEndpointType": "Interface"}}}
    times = timing.schedule(resources, {k: timing.resource_seconds(r) for k, r in resources.items()})
    assert times["Secret"][0] == d.RESOURCES["AWS::KMS::Key"].seconds
    assert times["Odd"] == (times["Secret"][1], times["Secret"][1] + d.UNLISTED.seconds)
    assert times["Endpoint"] == (0.0, d.RESOURCES["AWS::EC2::VPCEndpoint/Interface"].seconds)


def test_a_circular_dependency_is_an_error():
    with pytest.raises(ValueError, match="circular"):
        timing.schedule({"A": {"Type": "x", "DependsOn": "B"}, "B": {"Type": "x", "DependsOn": "A"}}, {"A": 1, "B": 1})


def test_a_roll_goes_in_depends_on_order_batch_by_batch(rendered):
    estimate = timing.estimate_roll(rendered["prod"].templates)
    waves = {w.stack: w for w in estimate.waves}
    assert waves["Servers"].start == waves["ServerInit"].end
    assert waves["AgentPoolGeneral"].start == waves["Servers"].end
    batch = waves["AgentPoolGeneral"].phases[-1].end - waves["AgentPoolGeneral"].start
    assert waves["AgentPoolGeneral"].seconds == pytest.approx(3 * batch)  # desired 3, MaxBatchSize 1
    assert estimate.api_ready is None  # three servers: the API stays up


def test_a_roll_of_one_group_waits_for_nothing_else(rendered):
    estimate = timing.estimate_roll(rendered["prod"].templates, ["AgentPoolArm"])
    assert [w.stack for w in estimate.waves] == ["AgentPoolArm"] and estimate.waves[0].start == 0
    assert estimate.critical_path == ("AgentPoolArm",)


def test_a_lone_server_roll_restores_and_the_api_comes_back(rendered):
    estimate = timing.estimate_roll(rendered["dev"].templates)
    first = next(w for w in estimate.waves if w.stack == "ServerInit")
    names = [p.name for p in first.phases]
    assert names[0] == "drain and snapshot" and "restore snapshot" in names
    # Back once K3s runs again and its target passes the load balancer's health checks, which
    # may be after the group has its signal.
    k3s = next(p for p in first.phases if p.name == "k3s start")
    assert first.start < k3s.end <= estimate.api_ready


def test_rendering_never_imports_the_model():
    probe = ("import sys\nfrom k3s_infra.config import load_environment\nfrom k3s_infra.render import render\n"
             "render(load_environment('dev'))\nprint(sorted(m for m in sys.modules if 'timing' in m))")
    result = subprocess.run([sys.executable, "-c", probe], check=False, cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
