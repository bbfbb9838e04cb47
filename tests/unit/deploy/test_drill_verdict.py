"""What proves a drill restored the cluster's data (deploy/drill.py ``not_restored``), from
docs/operations.md "Restore drills": the drill's cluster holds the cluster's own nodes (a snapshot
of a running cluster holds at least the Node of the server that took it), and the marker is the
cluster's, and with --fresh the one written right before the snapshot. A marker the ConfigMap
cannot give is an answer, not a reason to wait (drill_api.look lets it through)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from k3s_infra.deploy import DeployError, drill, drill_api
from k3s_infra.deploy.drill_api import ApiCheck, Marker, MarkerUnreadable

CLUSTER = "k3s-dev"
AT = datetime(2026, 12, 4, 6, 0, tzinfo=timezone.utc)


def _result(*, others=3, marker=Marker(AT, CLUSTER), written=None) -> drill.DrillResult:
    api = ApiCheck(ready=("i-1", "i-2", "i-3"), others=others, marker=marker, marker_found=True)
    return drill.DrillResult(CLUSTER, f"{CLUSTER}-drill", api=api, marker=marker, written_marker=written)


ROWS = [  # what the drill's cluster held -> why it is not the snapshot's data (None: it is)
    (dict(), None),
    (dict(others=0), "holds no node of k3s-dev"),                       # a new cluster, not a restore
    (dict(marker=None), "holds no kube-system/"),                       # snapshot older than any marker
    (dict(marker=Marker(AT, "k3s-other")), "names k3s-other, not k3s-dev"),
    (dict(marker=Marker(AT, None)), None),                              # a marker written by hand, unnamed
    (dict(written=Marker(AT, CLUSTER)), None),                          # --fresh: the very marker it wrote
    (dict(written=Marker(AT + timedelta(seconds=1), CLUSTER)), "before the one --fresh wrote"),
    (dict(marker=Marker(AT + timedelta(hours=1), CLUSTER), written=Marker(AT, CLUSTER)), None),
]


@pytest.mark.parametrize("held, why", ROWS)
def test_a_restore_is_proved_by_the_clusters_nodes_and_its_marker(held, why):
    found = drill.not_restored(_result(**held), CLUSTER)
    assert (found is None) if why is None else (why in found), found


def test_a_configmap_without_a_marker_time_is_no_reason_to_wait():
    assert issubclass(MarkerUnreadable, DeployError)
    with pytest.raises(MarkerUnreadable):
        drill_api.marker_of('{"data": {"cluster": "k3s-dev"}}')


def test_look_lets_an_unreadable_marker_through(monkeypatch):
    """look turns 'not yet' (a DeployError) into the check's error; an unreadable marker ends the drill."""
    from types import SimpleNamespace

    from k3s_infra.deploy import changeset, node_access

    def read_back(*args, **kwargs):
        return SimpleNamespace(status="Success", stdout="nodes 0\nmarker\n{\"data\": {}}\nend\n", stderr="",
                               code=0, details="Success")

    monkeypatch.setattr(changeset, "stack_state", lambda cfn, name: {"StackId": "arn"})
    monkeypatch.setattr(node_access, "in_service", lambda aws, root, stacks: [SimpleNamespace(instance_id="i-0123456789abcdef0")])
    monkeypatch.setattr(node_access, "pick_online", lambda aws, servers, role: servers[0])
    monkeypatch.setattr(node_access, "run_shell", read_back)
    aws = SimpleNamespace(cloudformation=None, env=SimpleNamespace(stack_name="k3s-dev-drill"))
    with pytest.raises(MarkerUnreadable):
        drill_api.look(aws, timeout=10, poll=1)


def test_a_server_group_briefly_one_over_its_count_still_answers(monkeypatch):
    """A launch-before-terminate replacement leaves servers.count + 1 Ready for a while: the wait ends."""
    from types import SimpleNamespace

    ready = ("i-01", "i-02", "i-03", "i-04")
    monkeypatch.setattr(drill, "look", lambda aws, **kw: ApiCheck(ready=ready, others=3, marker_found=True))
    aws = SimpleNamespace(env=SimpleNamespace(servers=SimpleNamespace(count=3)))
    assert drill.wait_for_api(aws, on_progress=lambda m: None, poll=0, timeout=5).ready == ready
