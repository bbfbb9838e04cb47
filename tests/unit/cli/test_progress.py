"""The CLI gives every progress message of the deploy library its text (one without would
stop a deploy half-way with a TypeError), and shows waiting as a status line on a
terminal and as heartbeat lines in logs."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from k3s_infra.cli.progress import Console, lines, restore_request_line
from k3s_infra.deploy import lock
from k3s_infra.deploy import progress as msg
from k3s_infra.deploy.changeset import Change, ChangeSet
from k3s_infra.deploy.drill_progress import DrillMessage
from k3s_infra.deploy.images import ImageChoice
from k3s_infra.deploy.leftovers import Cleanup, Leftover, Leftovers
from k3s_infra.deploy.restore_request import Pending, RestoreRequest

EVENT = {"EventId": "e1", "StackName": "k3s-dev", "LogicalResourceId": "ServerGroup", "ResourceStatus": "CREATE_FAILED",
         "ResourceType": "AWS::AutoScaling::AutoScalingGroup", "Timestamp": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
         "ResourceStatusReason": "Received FAILURE signal with UniqueId i-0123456789abcdef0"}
PACKAGE = SimpleNamespace(rendering=SimpleNamespace(children=["a", "b"], env=SimpleNamespace(artifact_bucket="bucket")),
                          uploaded=["a.yaml"], reused=["b.yaml"])
PARAMETER = "/k3s-infra/k3s-dev/restore-request"
NOW = 1_800_000_000
REQUEST = RestoreRequest("snap", ("i-0123456789abcdef0", "i-0a1b2c3d"), NOW)
CHANGES = ChangeSet("k3s-dev", "cs", "UPDATE", [Change("Root", "Modify", "Servers", "AWS::CloudFormation::Stack", "")])
NLB = Leftover("load balancer", "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/net/a1b2/9f", "a1b2")
ELB = Leftover("classic load balancer", "c3d4", "c3d4")
SG = Leftover("security group", "sg-0c3d4", "k8s-elb-c3d4", "vpc-1", ("sg-0node",))
FOUND = Leftovers("kubernetes.io/cluster/k3s-dev=owned", (NLB, ELB, SG))
HOLDER = lock.Holder("arn:aws:iam::123456789012:user/ci", "runner-1", 4242, "deploy",
                     datetime(2026, 1, 2, 3, 0, tzinfo=timezone.utc), datetime(2026, 1, 2, 4, 0, tzinfo=timezone.utc))

SAMPLES = [
    msg.StackEvent(EVENT, "ServerInit"), msg.Waiting("k3s-dev", "UPDATE_IN_PROGRESS", 65, 3),
    msg.Heartbeat("k3s-dev", "UPDATE_IN_PROGRESS", 65, ("Servers",)), msg.Settled("k3s-dev", "UPDATE_COMPLETE"),
    msg.Interrupted("k3s-dev", "UPDATE_IN_PROGRESS"), msg.Failed("k3s-dev", "ROLLBACK_COMPLETE", EVENT, "ServerInit",
                                                                 ("i-0123456789abcdef0",)),
    msg.Following("k3s-dev", "UPDATE_IN_PROGRESS"), msg.QuorumLossAllowed(3, 1),
    msg.ImagesChosen((ImageChoice("ImageId", "/aws/service/x", None, "ami-1", "ami-1"),)), msg.PlanUploads("bucket"),
    msg.Packaged(PACKAGE), msg.ChangeSetReady(CHANGES), msg.ChangeSetDiscarded(), msg.Executing("UPDATE", "k3s-dev"),
    msg.RollOrderRecorded(changed=True),
    msg.ExecutionFailed("executing the change set failed"), msg.EventsUnavailable("ClientError"),
    msg.NothingToDestroy("k3s-dev", "eu-west-1"), msg.NestedStacksUnlisted("k3s-dev", "ClientError"),
    msg.ProtectionRemoved("k3s-dev"), msg.LoadBalancerProtectionRemoved(("k3s-dev-ApiLoadBalancer",)),
    msg.LeftoversFound(FOUND), msg.LeftoversWaiting((SG,), 30), msg.LeftoversDeleted(Cleanup((NLB,), (), (), 1)),
    msg.SnapshotBucketEmptied("snaps", 9), msg.Deleting("k3s-dev"),
    msg.DeleteRetry("k3s-dev", 1, 2), msg.StackDeleted("k3s-dev"), msg.NodeParametersDeleted(()),
    msg.Retained((("ClusterData", "AWS::KMS::Key", "key-1"),), listed=True, protected=True),
    msg.ArtifactsCleaned("bucket", existed=False), msg.RestoreRequested(PARAMETER, REQUEST),
    msg.JoiningServersStopping("servers"), msg.WaitingForJoiningServers(3.0), msg.FirstServerReplaced((), "init"),
    msg.WaitingForRestore("snap", "/k3s-infra/k3s-dev/restore-request", 4.0), msg.SnapshotRestored("snap"),
    msg.JoiningServersRestarted("servers", "2", "2", "2"),
    msg.RestoreWithdrawn(PARAMETER, "eu-west-1", "deleted", None, "servers", "2", "2", "2"),
    msg.RestoreRequestPending(Pending(PARAMETER, "eu-west-1", REQUEST.format(), NOW - 3 * 3600 - 59, REQUEST)),
    msg.WaitingForNodes("Servers", 1, 3, 65, ("i-0a1b2c3d", "i-0e1f2a3b")), msg.NodesReady(4, ("i-0a1b2c3d",), 70),
    msg.RegistryNeeded("network.create.nat_gateways", ("the AWS cloud controller: chart from https://x",)),
    msg.ArtifactTransfer("k3s", "download", 32_000_000, 72_000_000), msg.ArtifactVerified("k3s", "a" * 64, "cache /c/k3s"),
    msg.ArtifactCacheRejected("/c/k3s", "b" * 64, "a" * 64), msg.ArtifactsStaged("bucket", "k3s-dev/k3s", ("k3s",), ()),
    msg.PlanUploads("bucket", kept=True), msg.RollOrderMissing(("Servers after ServerInit",)),
    lock.LockTakenOver(HOLDER, "s3://b/k3s-dev/lock.json"), lock.LockRemoved(HOLDER, True, "s3://b/k3s-dev/lock.json"),
    lock.LockLost("s3://b/k3s-dev/lock.json"), lock.LockNotReleased("s3://b/k3s-dev/lock.json", "AccessDenied"),
]


def _subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in {direct} | _subclasses(direct)}


def test_every_message_reads_as_text():
    worded_by_drill = _subclasses(DrillMessage) | {DrillMessage}  # cli/drill.py words them: test_drill_text.py
    assert {type(m) for m in SAMPLES} == _subclasses(msg.Message) - worded_by_drill  # a new message needs a sample
    for message in SAMPLES:
        silent = isinstance(message, (msg.Waiting, msg.Settled))  # they only draw or clear the status line
        assert bool(lines(message)) != silent, message
    failure = lines(SAMPLES[5])
    assert failure[0] == ("error: ServerInit/ServerGroup (AWS::AutoScaling::AutoScalingGroup) CREATE_FAILED: "
                          "Received FAILURE signal with UniqueId i-0123456789abcdef0")
    assert "get-console-output --instance-id i-0123456789abcdef0" in failure[1]
    assert failure[2].startswith("k3s-dev: ROLLBACK_COMPLETE: rolled back")


def test_a_terminal_gets_a_status_line_a_log_gets_heartbeats():
    waiting, heartbeat, settled = SAMPLES[1:4]
    written = {}
    for live in (True, False):
        out = io.StringIO()
        console = Console(out, live=live)
        for message in (waiting, heartbeat, settled):
            console(message)
        written[live] = out.getvalue()
    assert written[True] == "  … k3s-dev UPDATE_IN_PROGRESS  3 stacks  1m05s\r\033[K"  # drawn, then cleared
    assert written[False] == "... 1m05s  k3s-dev UPDATE_IN_PROGRESS  in progress: Servers\n"


def test_restore_steps_read_in_their_order():
    assert lines(msg.JoiningServersStopping("servers"))[0].startswith("1/5 scaled the joining servers")
    assert lines(msg.RestoreRequested(PARAMETER, REQUEST)) == [
        f"2/5 wrote {PARAMETER} = snapshot=snap replaces=i-0123456789abcdef0,i-0a1b2c3d expires={NOW}"]


@pytest.mark.parametrize("now, says", [
    (NOW - 12 * 60 - 30, "expires in 12m"),
    (NOW - 90, "expires in 90s"),
    (NOW, "expired 0s ago (ignored by the boot; delete with: aws ssm delete-parameter --name "
          f"{PARAMETER} --region eu-west-1)"),
    (NOW + 3 * 3600 + 59, "expired 3h ago (ignored by the boot; delete with: aws ssm delete-parameter --name "
                          f"{PARAMETER} --region eu-west-1)"),
    (NOW + 3 * 86400, "expired 3d ago"),
])
def test_a_pending_restore_request_reads_with_its_snapshot_instances_and_expiry(now, says):
    pending = Pending(PARAMETER, "eu-west-1", REQUEST.format(), now, REQUEST)
    line = restore_request_line(pending.as_dict(), "eu-west-1")
    head = f"restore request {PARAMETER}: snapshot snap, replaces i-0123456789abcdef0, i-0a1b2c3d, "
    assert line.startswith(head + says) and (line.endswith(")") == ("expired" in says)), line
    assert lines(msg.RestoreRequestPending(pending)) == [f"warning: {line}"]


def test_legacy_and_unreadable_requests_read_with_how_to_delete_them():
    legacy = Pending(PARAMETER, "eu-west-1", "snap", NOW, RestoreRequest("snap", (), 0))
    line = restore_request_line(legacy.as_dict(), "eu-west-1")
    assert "snapshot snap, from an earlier release" in line and "ignored by the boot" in line
    broken = Pending(PARAMETER, "eu-west-1", "x\x1b[2J", NOW, None, "bad \x1b[2J")
    line = restore_request_line(broken.as_dict(), "eu-west-1")
    assert "unreadable (bad \\x1b[2J)" in line and "\x1b" not in line  # terminal controls escaped
    assert line.endswith(f"delete with: aws ssm delete-parameter --name {PARAMETER} --region eu-west-1")


@pytest.mark.parametrize("outcome, says", [
    ("deleted", f"deleted the restore request {PARAMETER}, so no later boot acts on it"),
    ("replaced", f"left {PARAMETER} as it is: it holds another run's restore request"),
    ("absent", "is gone"),
    ("failed", f"could not delete the restore request {PARAMETER} (AccessDenied): delete it with "
               f"'aws ssm delete-parameter --name {PARAMETER} --region eu-west-1'"),
])
def test_a_stopped_restore_says_what_became_of_its_request(outcome, says):
    first, second = lines(msg.RestoreWithdrawn(PARAMETER, "eu-west-1", outcome, "AccessDenied", "servers",
                                               "1", "2", "3"))
    assert says in first
    assert second.endswith("'aws autoscaling update-auto-scaling-group --auto-scaling-group-name servers "
                           "--min-size 1 --max-size 3 --desired-capacity 2'")


def test_waiting_for_nodes_reads_as_one_line_per_group():
    """deploy/readiness.py: after CloudFormation, the nodes a deploy launched (issue 21.7)."""
    assert lines(msg.WaitingForNodes("Servers", 1, 3, 65, ("i-0a1b2c3d", "i-0e1f2a3b"))) == [
        "  waiting for Servers: 1/3 nodes ready, not yet: i-0a1b2c3d, i-0e1f2a3b  (1m05s)"]
    assert lines(msg.WaitingForNodes("Servers", 2, 3, 5)) == ["  waiting for Servers: 2/3 nodes ready  (0m05s)"]
    assert lines(msg.NodesReady(4, ("i-0a1b2c3d",), 70)) == ["nodes ready: 1 new (i-0a1b2c3d) in 4 node groups  (1m10s)"]
    assert lines(msg.NodesReady(4, (), 0.4)) == ["nodes ready: 4 node groups, none launched by this deploy"]


def test_controller_leftovers_read_as_aligned_rows_and_a_summary():
    """deploy/leftovers.py (issue 23.4): what destroy deletes before the stacks, and how it ended."""
    assert lines(msg.LeftoversFound(Leftovers("kubernetes.io/cluster/k3s-dev=owned"))) == [
        "nothing left by the cloud controller (tagged kubernetes.io/cluster/k3s-dev=owned)"]
    found = lines(msg.LeftoversFound(FOUND))
    assert found[0] == "deleting what the cloud controller made (tagged kubernetes.io/cluster/k3s-dev=owned):"
    assert found[1:] == [
        f"  load balancer          a1b2          {NLB.id}",
        "  classic load balancer  c3d4",
        "  security group         k8s-elb-c3d4  sg-0c3d4 (rules of sg-0node name it: revoked first)"]
    cleanup = Cleanup((NLB, ELB), ((SG, "DependencyViolation"),), (("sg-0node", "sg-0c3d4"),), 605)
    assert lines(msg.LeftoversDeleted(cleanup)) == [
        "deleted 2 resources of the cloud controller, revoked 1 rule naming them  (10m05s)",
        "warning: not deleted (the stack delete may fail on them; destroy cleans up again before a retry):",
        "  security group  k8s-elb-c3d4  sg-0c3d4  DependencyViolation"]
    assert lines(msg.LeftoversWaiting((SG,), 30)) == ["  waiting for k8s-elb-c3d4: still in use  (0m30s)"]
    assert lines(msg.LoadBalancerProtectionRemoved(("a", "b"))) == [
        "deletion protection removed from the load balancers a, b"]


def test_the_k3s_files_read_as_what_happened_to_them():
    """deploy/artifacts.py: sizes in MB, the digest in full (to compare with the release's
    sha256sum-<arch>.txt), where each file came from, what the bucket already held."""
    assert lines(msg.ArtifactTransfer("k3s-airgap-images-amd64.tar.zst", "upload", 32_000_000, 171_300_000)) == [
        "  upload k3s-airgap-images-amd64.tar.zst: 32.0 MB of 171.3 MB"]
    assert lines(msg.ArtifactTransfer("k3s", "download", 0, None)) == ["  download k3s: 0.0 MB"]
    assert lines(msg.ArtifactVerified("k3s", "a" * 64, "/offline/k3s")) == [f"K3s k3s: sha256 {'a' * 64} verified "
                                                                         "(/offline/k3s)"]
    assert lines(msg.ArtifactsStaged("bucket", "k3s-dev/k3s", ("k3s",), ("sha256sum-amd64.txt", "x"))) == [
        "staged the K3s files in s3://bucket/k3s-dev/k3s/ (1 uploaded, 2 already there)"]
    warning = lines(msg.RegistryNeeded("network.create.nat_gateways", ("one", "two")))
    assert warning[0].startswith("warning: network.create.nat_gateways: the nodes have no way to the internet")
    assert warning[1:] == ["  one", "  two"]


def test_one_of_a_thing_reads_in_the_singular():
    one = ChangeSet("k3s-dev", "cs", "UPDATE", [Change("Root", "Modify", "Servers", "AWS::CloudFormation::Stack", "")])
    two = ChangeSet("k3s-dev", "cs", "UPDATE", [*one.changes, Change("Root", "Add", "Draining",
                                                                      "AWS::CloudFormation::Stack", "")])
    assert lines(msg.ChangeSetReady(one))[0] == "update k3s-dev: 1 change"
    assert lines(msg.ChangeSetReady(two))[0] == "update k3s-dev: 2 changes"
    assert lines(msg.NodesReady(1, (), 0.4)) == ["nodes ready: 1 node group, none launched by this deploy"]
    assert lines(msg.SnapshotBucketEmptied("snaps", 1)) == [
        "emptied the snapshot bucket s3://snaps (1 object version and delete markers)"]


def _shown(messages) -> list[str]:
    out = io.StringIO()
    console = Console(out, live=False)
    for message in messages:
        console(message)
    return out.getvalue().splitlines()


def test_a_wait_reported_at_every_poll_shows_once_then_on_change_or_every_30_seconds():
    # restore --timeout 15 polls about five times a second: one line, not 75
    polls = [i * 0.2 for i in range(76)]
    assert _shown(msg.WaitingForJoiningServers(t) for t in polls) == [
        "  waiting for the joining servers to terminate (0s)"]
    # a long wait: a reminder at most every 30 s
    assert _shown(msg.WaitingForRestore("snap", PARAMETER, t) for t in range(0, 95, 5)) == [
        f"  waiting for the new first server to restore snap and delete {PARAMETER} ({t}s)" for t in (0, 30, 60, 90)]
    # what it waits for changed (a node became ready): shown at once
    nodes = [msg.WaitingForNodes("Servers", 1, 3, 10), msg.WaitingForNodes("Servers", 1, 3, 12),
             msg.WaitingForNodes("Servers", 2, 3, 14), msg.WaitingForNodes("Servers", 2, 3, 16)]
    assert _shown(nodes) == ["  waiting for Servers: 1/3 nodes ready  (0m10s)",
                             "  waiting for Servers: 2/3 nodes ready  (0m14s)"]
    # a second wait of the same kind (its clock starts again) is a new wait; other lines pass untouched
    again = [msg.WaitingForJoiningServers(5), msg.StackDeleted("k3s-dev"), msg.WaitingForJoiningServers(1)]
    assert _shown(again) == ["  waiting for the joining servers to terminate (5s)", "k3s-dev: DELETE_COMPLETE",
                             "  waiting for the joining servers to terminate (1s)"]


def test_a_missing_roll_order_says_who_records_it():
    assert lines(msg.RollOrderMissing(("Servers after ServerInit", "AgentPoolGeneral after Servers"))) == [
        "the deployed root lacks the roll order (Servers after ServerInit; AgentPoolGeneral after Servers): "
        "recording it first, no resource changes"]
    assert "'deploy PLANFILE' refuses" in lines(msg.RollOrderMissing(("Servers after ServerInit",), False))[0]
