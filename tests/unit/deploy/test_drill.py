"""deploy/drill.py run: the steps in order, and the guard rails around them: the drill stack this
run created is deleted however the drill ends (a failure mid-way, Ctrl-C), a stack it did not create
never is, only a CREATE change set of the drill's own name runs, and every deploy, restore and destroy
it starts is the drill's (never the cluster's). The steps' AWS calls have their own tests
(test_drill_env.py with Stubber; tests/e2e/test_drill.py on moto); here they are recorded fakes."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import ClientError

from k3s_infra.config import load_environment
from k3s_infra.deploy import DeployError, Refused, changeset, drill, lifecycle, lock, snapshot_now, snapshots, teardown
from k3s_infra.deploy.aws import Aws
from k3s_infra.deploy.drill_api import ApiCheck, Marker
from k3s_infra.model import naming

ENV = load_environment("dev")
DRILL = f"{ENV.stack_name}-drill"
REAL_ARN = f"arn:aws:cloudformation:eu-west-1:123456789012:stack/{ENV.stack_name}/1"
DRILL_ARN = f"arn:aws:cloudformation:eu-west-1:123456789012:stack/{DRILL}/2"
NOW = datetime.now(timezone.utc)
SNAPSHOT = snapshots.Snapshot("etcd-snapshot-i-0abc-1796385600", "etcd/dev/etcd-snapshot-i-0abc-1796385600",
                              4096, NOW - timedelta(hours=2))
MARKER = Marker(NOW - timedelta(hours=3), ENV.stack_name)


class Rig:
    """Fakes for every step, recording (step, the stack it acted on) in ``log``."""

    def __init__(self, monkeypatch, *, change_set_type="CREATE", fail=None, interrupt=None, marker=MARKER):
        self.log: list[tuple[str, str]] = []
        self.stacks: dict[str, dict] = {ENV.stack_name: {"StackId": REAL_ARN, "StackStatus": "UPDATE_COMPLETE",
                                                         "Outputs": [{"OutputKey": "SnapshotBucketName",
                                                                      "OutputValue": "real-bucket"}]}}
        self.fail, self.interrupt = fail, interrupt
        rig = self

        def step(name, stack):
            rig.log.append((name, stack))
            if rig.fail == name:
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, name)
            if rig.interrupt == name:
                raise KeyboardInterrupt

        def deploy(aws, *, confirm, **_):
            step("deploy", aws.env.stack_name)
            cs = changeset.ChangeSet(aws.env.stack_name, "cs-1", change_set_type, stack_arn=DRILL_ARN)
            if not confirm(cs):
                return lifecycle.DeployResult(aws.env.stack_name, "declined")
            rig.stacks[DRILL] = {"StackId": DRILL_ARN, "StackStatus": "CREATE_COMPLETE",
                                 "Tags": [{"Key": naming.DRILL_TAG, "Value": ENV.stack_name}],
                                 "Outputs": [{"OutputKey": "SnapshotBucketName", "OutputValue": "drill-bucket"}]}
            return lifecycle.DeployResult(aws.env.stack_name, "deployed", "CREATE_COMPLETE")

        def destroy(aws, *, confirm, **_):
            assert confirm(teardown.DestroyRequest(aws.env.stack_name, 9, ENV.account_id, ENV.region))
            rig.log.append(("destroy", aws.env.stack_name))
            rig.stacks.pop(aws.env.stack_name)
            return teardown.DestroyResult(aws.env.stack_name, "destroyed", "DELETE_COMPLETE")

        def restore(aws, *, snapshot, confirm, **_):
            step("restore", aws.env.stack_name)
            return confirm(SNAPSHOT) and snapshot == SNAPSHOT.name

        @contextmanager
        def held(aws, command, on_progress=None, **_):
            rig.log.append(("lock", aws.env.stack_name))
            yield on_progress

        def wait(aws, **_):
            step("api", aws.env.stack_name)
            return ApiCheck(ready=("i-1", "i-2", "i-3"), others=5, marker=marker, marker_found=True)

        patch = monkeypatch.setattr
        patch(changeset, "stack_state", lambda cfn, name: rig.stacks.get(
            {REAL_ARN: ENV.stack_name, DRILL_ARN: DRILL}.get(name, name)))
        patch(drill, "cluster_resources", lambda aws, root: frozenset({ENV.stack_name, REAL_ARN}))
        patch(drill, "token_secret", lambda aws, root: f"token-of-{aws.env.stack_name}")
        patch(snapshots, "list_snapshots", lambda aws, root=None: [SNAPSHOT])
        patch(drill, "copy_snapshot", lambda aws, source, chosen, target: step("copy", aws.env.stack_name))
        patch(drill, "seed_token", lambda real, aws, source, target: step(
            "token", f"{real.env.stack_name}->{aws.env.stack_name}"))
        patch(lifecycle, "deploy", deploy)
        patch(teardown, "destroy", destroy)
        patch(snapshots, "restore", restore)
        patch(lock, "held", held)
        patch(drill, "wait_for_api", wait)
        patch(Aws, "check_account", lambda self: ENV.account_id)
        patch(drill, "_now", lambda: NOW)  # the drill's clock: ages are measured from NOW, however late this runs

    def run(self, **kwargs):
        session = boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name=ENV.region)
        return drill.run(Aws(ENV, session), confirm=lambda request: True, poll=0, **kwargs)


def test_a_drill_runs_every_step_on_the_drill_and_deletes_it(monkeypatch):
    rig = Rig(monkeypatch)
    result = rig.run(objectives={"rto": 3600.0, "rpo": 60.0})
    assert rig.log == [("deploy", DRILL), ("copy", DRILL), ("token", f"{ENV.stack_name}->{DRILL}"),
                       ("lock", DRILL), ("restore", DRILL), ("api", DRILL), ("destroy", DRILL)]
    assert result.snapshot == SNAPSHOT and result.marker == MARKER and result.cleanup.outcome == "destroyed"
    # RPO: restore start minus the snapshot's upload (2 h); the marker 3 h before the restore
    assert 7200 <= result.data_age_seconds < 7260 and 10800 <= result.marker_age_seconds < 10860
    assert [(x.name, x.met) for x in result.objectives] == [("rpo", False), ("rto", True)]
    assert result.outcome == "missed"  # restored, but the snapshot is older than the RPO objective


@pytest.mark.parametrize("where", ["copy", "token", "restore", "api"])
def test_a_failure_mid_way_still_deletes_the_drill_stack(monkeypatch, where):
    rig = Rig(monkeypatch, fail=where)
    result = rig.run()
    assert result.outcome == "failed" and "AccessDenied" in result.failure
    assert rig.log[-1] == ("destroy", DRILL) and DRILL not in rig.stacks


@pytest.mark.parametrize("where", ["deploy", "copy", "restore", "api"])
def test_ctrl_c_still_deletes_the_drill_stack(monkeypatch, where):
    rig = Rig(monkeypatch, interrupt=where)
    if where == "deploy":  # Ctrl-C after the execute: the stack exists
        original = lifecycle.deploy

        def deploy_then_interrupt(aws, **kwargs):
            rig.interrupt = None
            original(aws, **kwargs)
            raise KeyboardInterrupt
        monkeypatch.setattr(lifecycle, "deploy", deploy_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        rig.run()
    assert rig.log[-1] == ("destroy", DRILL) and DRILL not in rig.stacks


def test_a_change_set_that_is_not_the_drills_create_never_runs_and_nothing_is_deleted(monkeypatch):
    rig = Rig(monkeypatch, change_set_type="UPDATE")
    result = rig.run()
    assert result.outcome == "failed" and "was not created: declined" in result.failure
    assert rig.log == [("deploy", DRILL)]  # no destroy: this run created nothing


def test_a_leftover_drill_or_a_foreign_stack_of_its_name_stops_the_drill_before_any_change(monkeypatch):
    rig = Rig(monkeypatch)
    rig.stacks[DRILL] = {"StackId": DRILL_ARN, "StackStatus": "CREATE_COMPLETE",
                         "Tags": [{"Key": naming.DRILL_TAG, "Value": ENV.stack_name}]}
    with pytest.raises(DeployError, match="--cleanup"):
        rig.run()
    rig.stacks[DRILL]["Tags"] = []
    with pytest.raises(Refused, match="is not a drill of"):
        rig.run()
    assert rig.log == [] and DRILL in rig.stacks


def test_no_marker_in_the_restored_cluster_fails_the_drill(monkeypatch):
    rig = Rig(monkeypatch, marker=None)
    result = rig.run()
    assert result.outcome == "failed" and "--fresh" in result.failure and result.cleanup.outcome == "destroyed"


def test_fresh_writes_the_marker_then_takes_the_snapshot_it_restores(monkeypatch):
    rig = Rig(monkeypatch)
    taken = snapshots.Snapshot("on-demand-i-0abc-1796399999", "etcd/dev/on-demand-i-0abc-1796399999", 10, NOW)

    class Writer:
        server = "https://k3s-dev:6443"

        def apply(self, path, document):
            rig.log.append(("marker", document["data"]["cluster"]))
            return 201, "{}"

    def take_snapshot(aws, *, timeout, poll, on_progress=None):
        rig.log.append(("snapshot", aws.env.stack_name))
        return taken
    monkeypatch.setattr(snapshot_now, "take_snapshot", take_snapshot)
    result = rig.run(fresh=True, kube=lambda aws: Writer())
    assert rig.log[:3] == [("marker", ENV.stack_name), ("snapshot", ENV.stack_name), ("deploy", DRILL)]
    assert result.snapshot == taken and result.fresh


def test_the_drill_waits_until_every_server_is_ready_and_the_marker_was_asked_for(monkeypatch):
    drill_env = drill.drill_environment(load_environment("prod"))
    servers = tuple(f"i-{n}" for n in range(drill_env.servers.count))  # the file's count: 3 or more
    answers = iter([ApiCheck(missing=servers, error="no server has an online SSM Agent"),
                    ApiCheck(ready=servers[:1], missing=servers[1:], marker=MARKER, marker_found=True),
                    ApiCheck(ready=servers, others=4, marker=MARKER, marker_found=True)])
    looked: list[float] = []

    def look(aws, *, timeout, poll):
        looked.append(timeout)
        return next(answers)
    monkeypatch.setattr(drill, "look", look)
    seen = []
    answered = drill.wait_for_api(SimpleNamespace(env=drill_env), on_progress=seen.append, poll=0, timeout=600)
    assert answered.ready == servers and len(looked) == 3
    assert all(t <= drill.LOOK_TIMEOUT for t in looked)  # one look never takes the whole wait
    assert [m.check.error is None for m in seen] == [False, True]  # WaitingForApi, once per unfinished look


def test_a_drill_of_an_environment_without_run_command_is_refused_before_any_call(monkeypatch):
    document = ENV.model_dump(mode="json")
    document["node_access"] = {"session_manager": False, "run_command": False}
    env = type(ENV).model_validate(document)
    session = boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name=ENV.region)
    monkeypatch.setattr(Aws, "check_account", lambda self: pytest.fail("no call may be made"))
    with pytest.raises(Refused, match=r"node_access\.run_command: false"):
        drill.run(Aws(env, session), confirm=lambda request: pytest.fail("nothing to confirm"))


def test_cleanup_waits_for_a_create_a_cancelled_drill_left_running_then_deletes_it(monkeypatch):
    # CI cancels a step with SIGINT, SIGTERM 7.5 s later, then kills it (GitHub Docs, "Workflow
    # cancellation reference"): a drill cancelled mid-create leaves CREATE_IN_PROGRESS, which
    # destroy may not delete under; the `if: always()` step's --cleanup waits for its end.
    rig = Rig(monkeypatch)
    rig.stacks[DRILL] = {"StackId": DRILL_ARN, "StackStatus": "CREATE_IN_PROGRESS",
                         "Tags": [{"Key": naming.DRILL_TAG, "Value": ENV.stack_name}]}
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        rig.stacks[DRILL]["StackStatus"] = "CREATE_COMPLETE"
    monkeypatch.setattr(drill.time, "sleep", sleep)
    session = boto3.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name=ENV.region)
    result = drill.cleanup(Aws(ENV, session), confirm=lambda request: True, poll=5)
    assert slept == [5] and result.outcome == "destroyed" and rig.log == [("destroy", DRILL)]
