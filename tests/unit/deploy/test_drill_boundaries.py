"""Boundaries of the restore drill (deploy/drill.py, drill_api.py, drill_env.py), each from the
documented contract: docs/operations.md "Restore drills" and docs/commands.md (`--max-rto MIN`:
the objective is met when the recovery time is at most that), the Kubernetes API reference (a
ConfigMap PATCH answers 200 OK for an object that exists, 201 Created for a new one:
https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/config-map-v1/),
GetCommandInvocation's output limit (StandardOutputContent: at most 24,000 characters, botocore
ssm service-2.json), and CloudFormation's stack names (the environment file's deploy.stack_name
is at most 80 characters: docs/operations.md, config/types.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from k3s_infra.config import load_environment
from k3s_infra.deploy import DeployError, Refused, drill, drill_api, drill_env
from k3s_infra.deploy.drill_api import ApiCheck, Marker
from k3s_infra.deploy.kubeapi import KubeApiError
from k3s_infra.model import naming

ENV = load_environment("dev")
FIRST, SECOND = "i-0123456789abcdef0", "i-0fedcba9876543210"


# --- drill.py ---------------------------------------------------------------------------------

@pytest.mark.parametrize("actual, met", [(2699.9, True), (2700.0, True), (2700.1, False), (None, False)])
def test_an_objective_is_met_at_its_limit_and_not_beyond(actual, met):
    # --max-rto 45: "objective rto <= 45m00s" (docs/operations.md worked example); None: not measured.
    assert drill.Objective("rto", 45 * 60.0, actual).met is met


class _Clock:
    def __init__(self):
        self.now, self.slept = 0.0, []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_the_drill_looks_at_its_api_once_a_poll_not_in_a_tight_loop(monkeypatch):
    # Every look is a SendCommand (Run Command is throttled per account); between two looks the
    # drill waits its poll.
    drill_environment = drill_env.drill_environment(ENV)
    servers = tuple(f"i-{n}" for n in range(drill_environment.servers.count))
    answers = iter([ApiCheck(missing=servers, error="the API is not up yet"),
                    ApiCheck(missing=servers, error="the API is not up yet"),
                    ApiCheck(ready=servers, others=2, marker=None, marker_found=True)])
    clock = _Clock()
    monkeypatch.setattr(drill.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(drill.time, "sleep", clock.sleep)
    monkeypatch.setattr(drill, "look", lambda aws, *, timeout, poll: next(answers))
    seen = drill.wait_for_api(SimpleNamespace(env=drill_environment), on_progress=lambda m: None, poll=15,
                              timeout=600)
    assert seen.ready == servers and clock.slept == [15, 15]


# --- drill_api.py -----------------------------------------------------------------------------

class _Api:
    server = "https://k3s-dev.example:6443"

    def __init__(self, status):
        self.status, self.documents = status, []

    def apply(self, path, document):
        self.documents.append((path, document))
        return self.status, '{"kind": "Status"}' if self.status >= 400 else "{}"


@pytest.mark.parametrize("status", [200, 201])  # the marker updated, or created
def test_the_marker_written_is_its_time_in_utc_to_the_second_and_the_clusters_name(status):
    api = _Api(status)
    now = datetime(2026, 12, 4, 9, 28, 40, 654321, tzinfo=timezone(timedelta(hours=1)))
    marker = drill_api.write_marker(api, ENV.stack_name, now)
    assert marker == Marker(datetime(2026, 12, 4, 8, 28, 40, tzinfo=timezone.utc), ENV.stack_name)
    [(path, document)] = api.documents
    assert path == f"/api/v1/namespaces/{naming.DRILL_MARKER_NAMESPACE}/configmaps/{naming.DRILL_MARKER_NAME}"
    # written-at, ISO 8601 in UTC (docs/operations.md), reads back as the marker returned
    assert drill_api.marker_of(f'{{"data": {{"written-at": "{document["data"]["written-at"]}"}}}}').written_at \
        == marker.written_at


@pytest.mark.parametrize("status", [199, 202, 403, 409, 422])
def test_any_other_answer_to_the_markers_apply_is_an_error(status):
    with pytest.raises(KubeApiError, match=f"HTTP {status}"):
        drill_api.write_marker(_Api(status), ENV.stack_name, datetime.now(timezone.utc))


def test_an_answer_of_exactly_the_output_limit_may_have_been_cut():
    limit = 24000  # GetCommandInvocation StandardOutputContent's maximum
    for length, cut in ((limit - 1, False), (limit, True), (limit + 1, True)):
        stdout = ("nodes 1\n" + "x" * limit)[:length]
        with pytest.raises(DeployError) as error:
            drill_api.parse(stdout, (FIRST,))
        assert ("cut at 24,000 characters" in str(error.value)) is cut, length


def test_a_cluster_of_only_the_drills_servers_counts_no_other_node():
    # "nodes N" counts every Node; the others are the cluster's, restored from the snapshot
    # (docs/operations.md step 5): with none, none are counted.
    seen = drill_api.parse(f"nodes 2\n{FIRST} True\n{SECOND} True\nmarker\nend\n", (FIRST, SECOND))
    assert (seen.ready, seen.missing, seen.others) == ((FIRST, SECOND), (), 0)
    seen = drill_api.parse(f"nodes 5\n{FIRST} True\n{SECOND} False\nmarker\nend\n", (FIRST, SECOND))
    assert (seen.ready, seen.missing, seen.others) == ((FIRST,), (SECOND,), 3)


# --- drill_env.py -----------------------------------------------------------------------------

def test_a_stack_name_whose_drill_name_is_exactly_the_limit_is_drilled():
    longest = "k" * (80 - len("-drill"))
    drill_environment = drill_env.drill_environment(load_environment("dev", overrides={
        "deploy": {"stack_name": longest}}))
    assert drill_environment.stack_name == f"{longest}-drill" and len(drill_environment.stack_name) == 80
    with pytest.raises(Refused, match="longer than the 80 characters"):
        drill_env.drill_environment(load_environment("dev", overrides={"deploy": {"stack_name": longest + "k"}}))


def _outputs(**values):
    return [{"OutputKey": k, "OutputValue": v} for k, v in values.items()]


def test_the_clusters_resources_are_its_own_outputs_of_every_stack_not_the_shared_network(monkeypatch):
    # What the drill may never name (docs/operations.md "Why it cannot touch the cluster"): the
    # stacks, the snapshot bucket, the secrets, the groups...; not the network it shares (a brought
    # network's subnets are the drill's too).
    root = {"StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev/1",
            "Outputs": _outputs(SnapshotBucketName="k3s-dev-snapshots", VpcId="vpc-0abc",
                                SubnetIds="subnet-0a,subnet-0b")}
    nested = [("ClusterData", {"StackId": "arn:cd", "StackName": "k3s-dev-ClusterData-1",
                               "Outputs": _outputs(TokenSecretArn="arn:secret:token", VpcId="vpc-0abc")}),
              ("Network", {"StackId": "arn:net", "StackName": "k3s-dev-Network-1",
                           "Outputs": _outputs(VpcId="vpc-0abc", SubnetIds="subnet-0a,subnet-0b")})]
    monkeypatch.setattr(drill_env, "nested_stacks", lambda cfn, root_id: nested)
    cluster = drill_env.cluster_resources(SimpleNamespace(env=ENV, cloudformation=None, autoscaling=None), root)
    assert {ENV.stack_name, root["StackId"], "k3s-dev-snapshots", "arn:secret:token", "arn:cd",
            "k3s-dev-ClusterData-1", "arn:net", "k3s-dev-Network-1"} <= cluster
    assert not {"vpc-0abc", "subnet-0a,subnet-0b"} & cluster
