"""The CLI gives every progress message of the deploy library its text (one without would
stop a deploy half-way with a TypeError), and shows waiting as a status line on a
terminal and as heartbeat lines in logs."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from types import SimpleNamespace

from k3s_infra.cli.progress import Console, lines
from k3s_infra.deploy import progress as msg
from k3s_infra.deploy.changeset import Change, ChangeSet
from k3s_infra.deploy.images import ImageChoice

EVENT = {"EventId": "e1", "StackName": "k3s-dev", "LogicalResourceId": "ServerGroup", "ResourceStatus": "CREATE_FAILED",
         "ResourceType": "AWS::AutoScaling::AutoScalingGroup", "Timestamp": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
         "ResourceStatusReason": "Received FAILURE signal with UniqueId i-0123456789abcdef0"}
PACKAGE = SimpleNamespace(rendering=SimpleNamespace(children=["a", "b"], env=SimpleNamespace(artifact_bucket="bucket")),
                          uploaded=["a.yaml"], reused=["b.yaml"])
CHANGES = ChangeSet("k3s-dev", "cs", "UPDATE", [Change("Root", "Modify", "Servers", "AWS::CloudFormation::Stack", "")])

SAMPLES = [
    msg.StackEvent(EVENT, "ServerInit"), msg.Waiting("k3s-dev", "UPDATE_IN_PROGRESS", 65, 3),
    msg.Heartbeat("k3s-dev", "UPDATE_IN_PROGRESS", 65, ("Servers",)), msg.Settled("k3s-dev", "UPDATE_COMPLETE"),
    msg.Interrupted("k3s-dev", "UPDATE_IN_PROGRESS"), msg.Failed("k3s-dev", "ROLLBACK_COMPLETE", EVENT, "ServerInit",
                                                                 ("i-0123456789abcdef0",)),
    msg.Following("k3s-dev", "UPDATE_IN_PROGRESS"), msg.QuorumLossAllowed(3, 1),
    msg.ImagesChosen((ImageChoice("ImageId", "/aws/service/x", None, "ami-1", "ami-1"),)), msg.PlanUploads("bucket"),
    msg.Packaged(PACKAGE), msg.ChangeSetReady(CHANGES), msg.ChangeSetDiscarded(), msg.Executing("UPDATE", "k3s-dev"),
    msg.ExecutionFailed("executing the change set failed"), msg.EventsUnavailable("ClientError"),
    msg.NothingToDestroy("k3s-dev", "eu-west-1"), msg.NestedStacksUnlisted("k3s-dev", "ClientError"),
    msg.ProtectionRemoved("k3s-dev"), msg.SnapshotBucketEmptied("snaps", 9), msg.Deleting("k3s-dev"),
    msg.DeleteRetry("k3s-dev", 1, 2), msg.StackDeleted("k3s-dev"), msg.NodeParametersDeleted(()),
    msg.Retained((("ClusterData", "AWS::KMS::Key", "key-1"),), listed=True, protected=True),
    msg.ArtifactsCleaned("bucket", existed=False), msg.RestoreRequested("/k3s-infra/k3s-dev/restore-request", "snap"),
    msg.JoiningServersStopping("servers"), msg.WaitingForJoiningServers(3.0), msg.FirstServerReplaced((), "init"),
    msg.WaitingForRestore("snap", "/k3s-infra/k3s-dev/restore-request", 4.0), msg.SnapshotRestored("snap"),
    msg.JoiningServersRestarted("servers", "2", "2", "2"),
]


def _subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in {direct} | _subclasses(direct)}


def test_every_message_reads_as_text():
    assert {type(m) for m in SAMPLES} == _subclasses(msg.Message)  # a new message needs a sample here
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
