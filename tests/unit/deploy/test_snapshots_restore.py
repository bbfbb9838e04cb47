"""``snapshots.restore`` guards its restore request (deploy/restore_request.py), against
botocore's Stubber with strict expected parameters: the request names the first-server
instances listed before it is written and expires at now + timeout (time frozen); a run that
times out or is interrupted deletes its own request, never one a newer run wrote. The
stack and snapshot lookups are replaced (tests/e2e/test_snapshots_restore.py runs them)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy import DeployError, changeset, snapshots
from k3s_infra.deploy import progress as msg
from k3s_infra.model import naming

NOW = 1_800_000_000
SNAP = "etcd-snapshot-ip-10-0-0-5-1700021600"
OLD = ("i-0123456789abcdef0", "i-0fedcba9876543210")
INIT, SERVERS = "k3s-dev-ServerInit-ASG", "k3s-dev-Servers-ASG"
SIZES = [{"ParameterKey": k, "ParameterValue": "2"} for k in ("MinSize", "MaxSize", "DesiredCapacity")]
TIMEOUT = 600


def _client(service):
    return boto3.client(service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x",
                        endpoint_url=f"https://{service}.invalid")


def _group(name, instances=()):
    return {"AutoScalingGroupName": name, "MinSize": 1, "MaxSize": 1, "DesiredCapacity": 1, "DefaultCooldown": 300,
            "AvailabilityZones": ["eu-west-1a"], "HealthCheckType": "EC2", "CreatedTime": "2026-01-01T00:00:00Z",
            "Instances": [{"InstanceId": i, "AvailabilityZone": "eu-west-1a", "LifecycleState": "InService",
                           "HealthStatus": "Healthy", "ProtectedFromScaleIn": False} for i in instances]}


class Clock:
    """time.time frozen at NOW; each sleep moves the monotonic clock on by ``step``."""

    def __init__(self, step=400.0, interrupt=False):
        self.mono, self.step, self.interrupt = 0.0, step, interrupt

    def monotonic(self):
        return self.mono

    def sleep(self, _seconds):
        if self.interrupt:
            raise KeyboardInterrupt
        self.mono += self.step


@pytest.fixture
def run(monkeypatch):
    """restore() on stubbed ssm and autoscaling clients; calls across both clients logged in order."""
    env = load_environment("dev")
    aws = SimpleNamespace(env=env, ssm=_client("ssm"), autoscaling=_client("autoscaling"))
    calls = []
    stubs = {}
    for name in ("ssm", "autoscaling"):
        client = getattr(aws, name)
        client.meta.events.register("before-parameter-build", lambda model, **_: calls.append(model.name))
        stubs[name] = Stubber(client)
        stubs[name].activate()
    snapshot = snapshots.Snapshot(SNAP, f"etcd/dev/{SNAP}", 100, datetime(2026, 1, 1, tzinfo=timezone.utc))
    monkeypatch.setattr(changeset, "deployed", lambda _aws: {"StackId": "root-id", "StackStatus": "UPDATE_COMPLETE"})
    monkeypatch.setattr(snapshots, "list_snapshots", lambda _aws, _root: [snapshot])
    groups = {naming.STACK_SERVER_INIT: ({}, {"AutoScalingGroupName": INIT}),
              naming.STACK_SERVERS: ({"Parameters": SIZES}, {"AutoScalingGroupName": SERVERS})}
    monkeypatch.setattr(snapshots, "group_of", lambda _aws, _root, logical: groups[logical])
    monkeypatch.setattr(time, "time", lambda: float(NOW))
    seen = []

    def _run(clock=None, timeout=TIMEOUT):
        clock = clock or Clock()
        monkeypatch.setattr(time, "monotonic", clock.monotonic)
        monkeypatch.setattr(time, "sleep", clock.sleep)
        return snapshots.restore(aws, snapshot=SNAP, confirm=lambda chosen: True, on_progress=seen.append,
                                 poll=10, timeout=timeout)

    _run.ssm, _run.autoscaling, _run.calls, _run.seen = stubs["ssm"], stubs["autoscaling"], calls, seen
    _run.parameter = naming.restore_request_parameter(env)
    yield _run
    for stub in stubs.values():
        stub.assert_no_pending_responses()


def _mine(expires=NOW + TIMEOUT, replaces=OLD):
    return f"snapshot={SNAP} replaces={','.join(replaces)} expires={expires}"


def _stop_servers(run, first_servers=OLD):
    """Steps 1-2 as strict expectations: joining servers to 0 (gone at once), the first
    server's group listed (holding ``first_servers``)."""
    asg = run.autoscaling
    asg.add_response("update_auto_scaling_group", {},
                     {"AutoScalingGroupName": SERVERS, "MinSize": 0, "DesiredCapacity": 0})
    asg.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [_group(SERVERS)]},
                     {"AutoScalingGroupNames": [SERVERS]})
    asg.add_response("describe_auto_scaling_groups", {"AutoScalingGroups": [_group(INIT, first_servers)]},
                     {"AutoScalingGroupNames": [INIT]})


def _write(run, value=None):
    """Step 3: the request written."""
    run.ssm.add_response("put_parameter", {"Version": 1}, {
        "Name": run.parameter, "Value": value or _mine(), "Type": "String", "Overwrite": True,
        "Description": "k3s-infra restore: the snapshot a replacing first server restores, and until when"})


def _stop_servers_and_write(run, value=None):
    """Steps 1-3, then the first server's instances terminated."""
    _stop_servers(run)
    _write(run, value)
    for instance in OLD:
        run.autoscaling.add_response("terminate_instance_in_auto_scaling_group", {},
                                     {"InstanceId": instance, "ShouldDecrementDesiredCapacity": False})


def _request_is(run, value, times=1):
    for _ in range(times):
        run.ssm.add_response("get_parameter", {"Parameter": {"Name": run.parameter, "Type": "String",
                                                             "Value": value}}, {"Name": run.parameter})


def test_the_request_names_the_listed_instances_and_expires_after_the_timeout(run):
    _stop_servers_and_write(run)
    _request_is(run, _mine())
    run.ssm.add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": run.parameter})
    run.autoscaling.add_response("update_auto_scaling_group", {}, {
        "AutoScalingGroupName": SERVERS, "MinSize": 2, "MaxSize": 2, "DesiredCapacity": 2})
    assert run() is True
    # joining servers stopped, first server listed, then the request written, then terminations
    assert run.calls[:6] == ["UpdateAutoScalingGroup", "DescribeAutoScalingGroups", "DescribeAutoScalingGroups",
                             "PutParameter", "TerminateInstanceInAutoScalingGroup",
                             "TerminateInstanceInAutoScalingGroup"]
    written = next(m for m in run.seen if isinstance(m, msg.RestoreRequested)).request
    assert (written.snapshot, written.replaces, written.expires) == (SNAP, OLD, NOW + TIMEOUT)


@pytest.mark.parametrize("holder", ["this run", "a newer run"])
def test_a_timed_out_restore_deletes_its_own_request_only(run, holder):
    _stop_servers_and_write(run)
    _request_is(run, _mine(), times=3)  # polls at 0 s, 400 s, 800 s > timeout
    newer = _mine(expires=NOW + 5000)
    _request_is(run, _mine() if holder == "this run" else newer)
    if holder == "this run":
        run.ssm.add_response("delete_parameter", {}, {"Name": run.parameter})
    with pytest.raises(DeployError) as failure:
        run()
    text = str(failure.value)
    assert text.startswith("gave up after 600s waiting for the new first server")
    if holder == "this run":
        assert f"deleted the restore request {run.parameter}, so no later boot acts on it" in text
    else:
        assert f"left {run.parameter} as it is: it holds another run's restore request" in text
    assert f"update-auto-scaling-group --auto-scaling-group-name {SERVERS} --min-size 2" in text
    assert run.calls[-1] == ("DeleteParameter" if holder == "this run" else "GetParameter")


@pytest.mark.parametrize("holder", ["this run", "a newer run"])
def test_an_interrupted_restore_deletes_its_own_request_only(run, holder):
    _stop_servers_and_write(run)
    _request_is(run, _mine())  # the first poll; Ctrl-C in the sleep after it
    _request_is(run, _mine() if holder == "this run" else _mine(replaces=("i-0aaaaaaaaaaaaaaaa",)))
    if holder == "this run":
        run.ssm.add_response("delete_parameter", {}, {"Name": run.parameter})
    with pytest.raises(KeyboardInterrupt):
        run(Clock(interrupt=True))
    withdrawn = run.seen[-1]
    assert isinstance(withdrawn, msg.RestoreWithdrawn) and withdrawn.parameter == run.parameter
    assert withdrawn.outcome == ("deleted" if holder == "this run" else "replaced")
    assert (withdrawn.group, withdrawn.min_size, withdrawn.desired, withdrawn.max_size) == (SERVERS, "2", "2", "2")


def test_a_failed_termination_deletes_the_request_and_says_so(run):
    _stop_servers(run)
    _write(run)
    run.autoscaling.add_client_error("terminate_instance_in_auto_scaling_group", "AccessDenied", "not allowed",
                         expected_params={"InstanceId": OLD[0], "ShouldDecrementDesiredCapacity": False})
    _request_is(run, _mine())
    run.ssm.add_response("delete_parameter", {}, {"Name": run.parameter})
    with pytest.raises(DeployError, match="TerminateInstanceInAutoScalingGroup: AccessDenied: not allowed; "
                                          "deleted the restore request"):
        run()


def test_no_request_without_a_first_server_to_replace(run):
    _stop_servers(run, first_servers=())
    with pytest.raises(DeployError, match="no first server to replace.*no request was written"):
        run()
    assert "PutParameter" not in run.calls


def test_a_restore_reports_each_step_and_each_look(run):
    _stop_servers_and_write(run)
    _request_is(run, _mine(), times=2)
    run.ssm.add_client_error("get_parameter", "ParameterNotFound", expected_params={"Name": run.parameter})
    run.autoscaling.add_response("update_auto_scaling_group", {}, {
        "AutoScalingGroupName": SERVERS, "MinSize": 2, "MaxSize": 2, "DesiredCapacity": 2})
    assert run() is True
    kinds = [type(m).__name__ for m in run.seen]
    assert kinds == ["JoiningServersStopping", "RestoreRequested", "FirstServerReplaced", "WaitingForRestore",
                     "WaitingForRestore", "SnapshotRestored", "JoiningServersRestarted"]
    assert [m.waited for m in run.seen if isinstance(m, msg.WaitingForRestore)] == [0, 400]
    assert run.seen[-1] == msg.JoiningServersRestarted(SERVERS, "2", "2", "2")


def test_a_look_at_exactly_the_timeout_still_waits(run):
    _stop_servers_and_write(run)
    _request_is(run, _mine(), times=3)  # looks at 0 s, 600 s (= timeout: waits on), 1200 s
    _request_is(run, _mine())
    run.ssm.add_response("delete_parameter", {}, {"Name": run.parameter})
    with pytest.raises(DeployError, match="gave up after 600s"):
        run(Clock(step=600.0))


def test_not_confirmed_changes_nothing(run, monkeypatch):
    """Nothing queued on either client: any call fails the test."""
    monkeypatch.setattr(snapshots, "list_snapshots", lambda _aws, _root: [snapshots.Snapshot(
        SNAP, f"etcd/dev/{SNAP}", 100, datetime(2026, 1, 1, tzinfo=timezone.utc))])
    aws = SimpleNamespace(env=load_environment("dev"), ssm=None, autoscaling=None)
    assert snapshots.restore(aws, snapshot=None, confirm=lambda chosen: False) is False


def test_a_snapshot_name_a_boot_would_refuse_is_refused_before_anything_changes(run, monkeypatch):
    """The restore request's snapshot field takes letters, digits and . _ + : @ - only
    (deploy/restore_request.py, the line boot.sh parses)."""
    odd = "etcd-snapshot;reboot"
    monkeypatch.setattr(snapshots, "list_snapshots", lambda _aws, _root: [snapshots.Snapshot(
        odd, f"etcd/dev/{odd}", 100, datetime(2026, 1, 1, tzinfo=timezone.utc))])
    with pytest.raises(DeployError, match="cannot go into a restore request"):
        snapshots.restore(SimpleNamespace(env=load_environment("dev")), snapshot=odd, confirm=lambda chosen: True)


@pytest.mark.parametrize("missing", [naming.STACK_SERVER_INIT, naming.STACK_SERVERS])
def test_without_either_server_group_nothing_is_changed(run, monkeypatch, missing):
    groups = {naming.STACK_SERVER_INIT: ({}, {"AutoScalingGroupName": INIT}),
              naming.STACK_SERVERS: ({"Parameters": SIZES}, {"AutoScalingGroupName": SERVERS})}
    groups[missing] = ({}, None)
    monkeypatch.setattr(snapshots, "group_of", lambda _aws, _root, logical: groups[logical])
    with pytest.raises(DeployError, match="the server groups cannot be found"):
        run()
    assert run.calls == []
