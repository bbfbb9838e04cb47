"""How the deploy library's progress reads: each message of k3s_infra/deploy/progress.py
as the lines a person sees, printed by ``Console`` the moment it arrives; and the tables
those lines use (stack events, change sets)."""

from __future__ import annotations

import dataclasses
import sys
from typing import IO

from k3s_infra.config.text import printable
from k3s_infra.model import outputs as o
from k3s_infra.cli.output import aligned, say
from k3s_infra.cli.lock_text import lock_lines
from k3s_infra.deploy import lock
from k3s_infra.deploy import progress as msg
from k3s_infra.deploy.changeset import Change, ChangeSet
from k3s_infra.deploy.images import ImageChoice

ROLLBACK_OUTCOMES = {
    "ROLLBACK_COMPLETE": "rolled back: every resource created by this attempt was deleted; "
                         "run 'k3s-infra destroy' before deploying again",
    "UPDATE_ROLLBACK_COMPLETE": "rolled back: the stack is back on its previous version",
    "ROLLBACK_FAILED": "rollback FAILED: some resources may remain; see the stack events",
    "UPDATE_ROLLBACK_FAILED": "rollback FAILED: fix the cause, then continue the rollback "
                              "(aws cloudformation continue-update-rollback)",
    "CREATE_FAILED": "no rollback (rollback disabled): the failed resources remain",
    "UPDATE_FAILED": "no rollback (rollback disabled)",
    "DELETE_FAILED": "delete failed: the resources listed above remain",
}

# The library reports a wait at every poll (restore: a few times a second): a wait's line shows
# when it starts, when what it waits for changes, and then at most every REPEAT_EVERY seconds.
REPEATED = (msg.WaitingForJoiningServers, msg.WaitingForRestore, msg.WaitingForNodes, msg.LeftoversWaiting)
REPEAT_EVERY = 30.0


class Console:
    """The CLI's ``on_progress``: prints each message's lines as it arrives. On a terminal
    a transient status line shows while CloudFormation works; elsewhere (CI logs) the
    heartbeat lines stand in for it."""

    def __init__(self, out: IO[str] | None = None, *, live: bool | None = None):
        self.out = out or sys.stdout
        self.live = (hasattr(self.out, "isatty") and self.out.isatty()) if live is None else live
        self._status_shown = False
        self._waits: dict[type, tuple[msg.Message, float]] = {}  # per kind of wait: what it waits for, when shown

    def __call__(self, message: msg.Message) -> None:
        if isinstance(message, msg.Waiting):
            if self.live:
                self._show_status(message)
            return
        if isinstance(message, msg.Heartbeat) and self.live:
            return  # the status line already says it
        if self._nothing_new(message):
            return
        self._clear_status()
        for line in lines(message):
            say(line, self.out)

    def _show_status(self, waiting: msg.Waiting) -> None:
        self._clear_status()
        self.out.write(f"  … {waiting.root} {waiting.status}  {counted(waiting.stacks, 'stack')}  "
                       f"{_clock(waiting.elapsed)}")
        self.out.flush()
        self._status_shown = True

    def _nothing_new(self, message: msg.Message) -> bool:
        """A report of a wait already shown, waiting for the same thing, within REPEAT_EVERY."""
        if not isinstance(message, REPEATED):
            return False
        what = dataclasses.replace(message, waited=0)
        shown = self._waits.get(type(message))
        if shown and shown[0] == what and shown[1] <= message.waited < shown[1] + REPEAT_EVERY:
            return True
        self._waits[type(message)] = (what, message.waited)
        return False

    def _clear_status(self) -> None:
        if self._status_shown:
            self.out.write("\r\033[K")
            self._status_shown = False


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """'1 change', '2 changes'."""
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def binary_size(size: int) -> str:
    """Bytes as people read them, 1024-based with one decimal: '512 B', '34.5 MiB'."""
    if size < 1024:
        return f"{size} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024 or unit == "TiB":
            break
    return f"{size:.1f} {unit}"


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}m{whole % 60:02d}s"


def lines(message: msg.Message) -> list[str]:
    """The lines one message reads as (none: it only clears the status line)."""
    match message:
        case msg.StackEvent(event=event, stack=stack):
            return [event_line(event, stack)]
        case msg.Heartbeat(root=root, status=status, elapsed=elapsed, in_progress=busy):
            return [f"... {_clock(elapsed)}  {root} {status}  in progress: {', '.join(busy) or '-'}"]
        case msg.Settled() | msg.Waiting():
            return []
        case msg.Interrupted(root=root, status=status):
            return [f"\ninterrupted: CloudFormation keeps going with {root} ({status}); follow it with "
                    f"'k3s-infra status --watch' (same --env or --config)"]
        case msg.Failed():
            return failure_lines(message)
        case msg.Following(stack_name=stack, status=status):
            return [f"{stack}: {status}: following its events"]
        # plan and deploy
        case msg.QuorumLossAllowed(current=current, target=target):
            return [f"warning: servers.count {current} -> {target} loses etcd quorum "
                    f"(--allow-quorum-loss); restore from a snapshot afterwards: 'k3s-infra restore'"]
        case msg.ImagesChosen(choices=choices):
            return [image_line(choice) for choice in choices]
        case msg.PlanUploads(bucket=bucket, kept=True):
            return [f"plan uploads the templates (and the K3s files) to s3://{bucket} and creates a change set, "
                    f"kept for 'k3s-infra deploy PLANFILE'"]
        case msg.PlanUploads(bucket=bucket):
            return [f"plan uploads the templates (and the K3s files) to s3://{bucket} and creates (then deletes) "
                    f"a change set; 'k3s-infra diff' compares without writing anything"]
        case msg.RegistryNeeded(field=field, needs=needs):
            return [f"warning: {field}: the nodes have no way to the internet; K3s and its own images come from "
                    "the artifact bucket, but these need a registry or chart repository in reach (docs/network.md "
                    "'Without NAT'), or they never run:", *(f"  {need}" for need in needs)]
        case msg.ArtifactTransfer(name=name, action=action, done=done, total=total):
            return [f"  {action} {name}: {_megabytes(done)}" + (f" of {_megabytes(total)}" if total else "")]
        case msg.ArtifactVerified(name=name, sha256=sha256, source=source):
            return [f"K3s {name}: sha256 {sha256} verified ({source})"]
        case msg.ArtifactCacheRejected(path=path, actual=actual, expected=expected):
            return [f"warning: {path} has sha256 {actual}, not {expected}: removed, downloading it again"]
        case msg.ArtifactsStaged(bucket=bucket, prefix=prefix, uploaded=uploaded, reused=reused):
            return [f"staged the K3s files in s3://{bucket}/{prefix}/ ({len(uploaded)} uploaded, "
                    f"{len(reused)} already there)"]
        case msg.Packaged(package=pkg):
            return [f"packaged {len(pkg.rendering.children)} templates into s3://{pkg.rendering.env.artifact_bucket} "
                    f"({len(pkg.uploaded)} uploaded, {len(pkg.reused)} unchanged)"]
        case msg.ChangeSetReady(change_set=change_set):
            return change_table(change_set).splitlines()
        case msg.ChangeSetDiscarded():
            return ["not deployed: change set discarded"]
        case msg.Executing(change_set_type=kind, stack_name=stack):
            return [f"{kind.lower()} {stack}: streaming events"]
        case msg.RollOrderMissing(lacking=lacking, recording=recording):
            then = ("recording it first, no resource changes" if recording else
                    "'deploy' records it before its update ('deploy PLANFILE' refuses until then)")
            return [f"the deployed root lacks the roll order ({'; '.join(lacking)}): {then}"]
        case msg.RollOrderRecorded(problem=str() as problem):
            return [f"warning: the roll order (servers first, one group at a time) is not recorded: {problem}; "
                    "the next deploy records it before its own update"]
        case msg.RollOrderRecorded():
            return ["recorded the roll order for later updates (servers first, one group at a time)"]
        case msg.ExecutionFailed(error=error):
            return [f"error: {error}"]
        case msg.EventsUnavailable(error=error):
            return [f"(stack events unavailable: {error})"]
        case msg.WaitingForNodes(group=group, ready=ready, desired=desired, waited=waited, not_ready=pending):
            return [f"  waiting for {group}: {ready}/{desired} nodes ready"
                    + (f", not yet: {', '.join(pending)}" if pending else "") + f"  ({_clock(waited)})"]
        case msg.NodesReady(groups=groups, new=new, waited=waited):
            if not new:
                return [f"nodes ready: {counted(groups, 'node group')}, none launched by this deploy"]
            return [f"nodes ready: {len(new)} new ({', '.join(new)}) in {counted(groups, 'node group')}  "
                    f"({_clock(waited)})"]
        # destroy
        case msg.NothingToDestroy(stack_name=stack, region=region):
            return [f"{stack}: nothing to destroy (no such stack in {region})"]
        case msg.NestedStacksUnlisted(stack_name=stack, error=error):
            return [f"warning: cannot list the resources of {stack} ({error}); deleting it anyway"]
        case msg.ProtectionRemoved(stack_name=stack):
            return [f"{stack}: termination protection removed"]
        case msg.LoadBalancerProtectionRemoved(names=names):
            return [f"deletion protection removed from the load balancers {', '.join(names)}"]
        case msg.LeftoversFound(leftovers=found):
            if not found:
                return [f"nothing left by the cloud controller (tagged {found.tag})"]
            return [f"deleting what the cloud controller made (tagged {found.tag}):", *leftover_rows(found.resources)]
        case msg.LeftoversWaiting(pending=pending, waited=waited):
            return [f"  waiting for {', '.join(r.name or r.id for r in pending)}: still in use  ({_clock(waited)})"]
        case msg.LeftoversDeleted(cleanup=cleanup):
            return cleanup_lines(cleanup)
        case msg.SnapshotBucketEmptied(bucket=bucket, removed=removed, what=what):
            return [f"emptied the {what} bucket s3://{bucket} ({counted(removed, 'object version')} and delete "
                    "markers)"]
        case msg.Deleting(stack_name=stack):
            return [f"delete {stack}: streaming events"]
        case msg.DeleteRetry(stack_name=stack, attempt=attempt, retries=retries):
            return [f"{stack}: DELETE_FAILED; cleaning up again and retrying ({attempt}/{retries})"]
        case msg.StackDeleted(stack_name=stack):
            return [f"{stack}: DELETE_COMPLETE"]
        case msg.NodeParametersDeleted(names=names):
            return [f"deleted the node-owned parameters {', '.join(names)}" if names else "no node-owned parameters left"]
        case msg.Retained(resources=resources, listed=listed, protected=protected):
            if resources:
                return ["retained (protected environment: DeletionPolicy Retain), delete by hand when no longer "
                        "needed:", *aligned(resources, indent="  ")]
            if not listed and protected:
                return ["retained resources could not be listed: look for the cluster's KMS key, secrets "
                        "and snapshot bucket (DeletionPolicy Retain) and delete them by hand when no longer needed"]
            return ["nothing retained: data stores were deleted with the stacks"]
        case msg.ArtifactsCleaned(bucket=bucket, existed=existed, removed=removed, bucket_deleted=deleted):
            if not existed:
                return ["artifact bucket already gone"]
            if deleted:
                return [f"removed {removed} template and K3s objects and the artifact bucket s3://{bucket}"]
            return [f"removed {removed} template and K3s objects from s3://{bucket} (bucket kept: other clusters "
                    "use it)"]
        # restore
        case msg.JoiningServersStopping(group=group):
            return [f"1/5 scaled the joining servers ({group}) to 0"]
        case msg.RestoreRequested(parameter=parameter, request=request):
            return [f"2/5 wrote {parameter} = {request.format()}"]
        case msg.WaitingForJoiningServers(waited=waited):
            return [f"  waiting for the joining servers to terminate ({waited:.0f}s)"]
        case msg.FirstServerReplaced(instances=instances, group=group):
            return [f"3/5 terminated the cluster-init server {', '.join(instances) or '(none running)'}; "
                    f"{group} replaces it"]
        case msg.WaitingForRestore(snapshot=snapshot, parameter=parameter, waited=waited):
            return [f"  waiting for the new first server to restore {snapshot} and delete {parameter} ({waited:.0f}s)"]
        case msg.SnapshotRestored(snapshot=snapshot):
            return [f"4/5 the first server restored {snapshot}"]
        case msg.JoiningServersRestarted(group=group, min_size=low, desired=desired, max_size=high):
            return [f"5/5 set {group} back to min {low} / desired {desired} / max {high}: "
                    f"they join the restored cluster"]
        case msg.RestoreWithdrawn():
            return withdrawn_lines(message)
        case msg.RestoreRequestPending(pending=pending):
            return [f"warning: {restore_request_line(pending.as_dict(), pending.region)}"]
        case lock.LockTakenOver() | lock.LockRemoved() | lock.LockLost() | lock.LockNotReleased():
            return lock_lines(message)
    raise TypeError(f"no text for {type(message).__name__}")


def leftover_rows(resources, indent: str = "  ") -> list[str]:
    """One aligned row per controller-made resource: kind, name, ID (and the rules naming it)."""
    rows = [(r.kind, r.name, (r.id if r.id != r.name else "")
             + (f" (rules of {', '.join(r.referenced_by)} name it: revoked first)" if r.referenced_by else ""))
            for r in resources]
    return aligned(rows, indent=indent) if rows else []


def cleanup_lines(cleanup) -> list[str]:
    """How the deletion of the controller's resources ended (deploy/leftovers.py Cleanup)."""
    revoked = f", revoked {counted(len(cleanup.revoked), 'rule')} naming them" if cleanup.revoked else ""
    result = [f"deleted {counted(len(cleanup.deleted), 'resource')} of the cloud controller{revoked}  "
              f"({_clock(cleanup.waited)})"]
    if cleanup.failed:
        result.append("warning: not deleted (the stack delete may fail on them; destroy cleans up again before "
                      "a retry):")
        result += aligned([(r.kind, r.name, r.id if r.id != r.name else "", code) for r, code in cleanup.failed])
    return result


def span(seconds: int) -> str:
    """A duration as "45s", "12m", "3h" or "2d" (rounded down)."""
    for unit, size, below in (("s", 1, 120), ("m", 60, 7200), ("h", 3600, 172800)):
        if seconds < below:
            return f"{seconds // size}{unit}"
    return f"{seconds // 86400}d"


def restore_request_line(request: dict, region: str) -> str:
    """A restore request found in SSM (``Pending.as_dict()``, status's JSON field), as status
    and deploy show it."""
    where = f"restore request {request['parameter']}"
    delete = f"delete with: aws ssm delete-parameter --name {request['parameter']} --region {region}"
    if request["state"] == "malformed":
        return f"{where}: unreadable ({printable(request['problem'] or '', keep_newlines=False)}); {delete}"
    if request["state"] == "legacy":
        return (f"{where}: snapshot {request['snapshot']}, from an earlier release: no instances, no expiry "
                f"(ignored by the boot; {delete})")
    head = f"{where}: snapshot {request['snapshot']}, replaces {', '.join(request['replaces'])}, "
    if request["state"] == "pending":
        return head + f"expires in {span(request['expires_in'])}"
    return head + f"expired {span(-request['expires_in'])} ago (ignored by the boot; {delete})"


def withdrawn_lines(message: msg.RestoreWithdrawn) -> list[str]:
    """What became of the request of a restore that stopped, and how to restart the joining servers."""
    parameter = message.parameter
    first = {"deleted": f"restore stopped: deleted the restore request {parameter}, so no later boot acts on it",
             "absent": f"restore stopped: the restore request {parameter} is gone (a first server may have taken "
                       f"it just now: see 'k3s-infra status')",
             "replaced": f"restore stopped: left {parameter} as it is: it holds another run's restore request",
             }.get(message.outcome, f"restore stopped: could not delete the restore request {parameter} "
                                    f"({message.error}): delete it with 'aws ssm delete-parameter --name {parameter} "
                                    f"--region {message.region}'")
    return [first, f"the joining servers ({message.group}) stay at 0 until the first server is back, then: "
                   f"'aws autoscaling update-auto-scaling-group --auto-scaling-group-name {message.group} "
                   f"--min-size {message.min_size} --max-size {message.max_size} --desired-capacity {message.desired}'"]


def failure_lines(failed: msg.Failed) -> list[str]:
    """The first failing resource and its reason, where the boot logs are, and what the
    rollback left."""
    cause = failed.cause
    if cause is None:
        result = [f"error: {failed.root} ended {failed.status} without naming a failed resource"]
    else:
        reason = cause.get("ResourceStatusReason") or "no reason given"
        result = [f"error: {failed.cause_stack}/{cause['LogicalResourceId']} ({cause.get('ResourceType', '?')}) "
                  f"{cause['ResourceStatus']}: {reason}"]
        result += [f"  the boot log of {instance}: aws ec2 get-console-output --instance-id {instance} "
                   f"--latest --output text | grep k3s-infra-boot" for instance in failed.instances]
    return result + [f"{failed.root}: {failed.status}: {ROLLBACK_OUTCOMES.get(failed.status, 'see the stack events')}"]


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def event_line(event: dict, stack_label: str, widths=(8, 18, 30, 26)) -> str:
    """``HH:MM:SS  stack  logical-id  status  reason`` in fixed columns (the stack's own
    events, whose logical ID is the stack name, show as ``(stack)``)."""
    ts = event["Timestamp"]
    clock = ts.strftime("%H:%M:%S") if hasattr(ts, "strftime") else str(ts)[11:19]
    reason = " ".join((event.get("ResourceStatusReason") or "").split())
    logical = event.get("LogicalResourceId", "")
    if logical and logical == event.get("StackName"):
        logical = "(stack)"
    cols = (clock, _fit(stack_label, widths[1]), _fit(logical, widths[2]), event.get("ResourceStatus", ""))
    line = "  ".join(v.ljust(w) for v, w in zip(cols, widths))
    return (line + "  " + reason).rstrip()


def image_line(choice: ImageChoice) -> str:
    label = "image" if choice.parameter == o.IMAGE_ID else f"image {choice.parameter}"
    if choice.deployed is None:
        return f"{label}: {choice.chosen} (resolved from {choice.source}; pinned from now on)"
    if choice.chosen != choice.deployed:
        return f"{label}: {choice.deployed} -> {choice.chosen} (from {choice.source}): every node of it is replaced"
    if choice.latest and choice.latest != choice.chosen:
        return (f"{label}: {choice.deployed} kept; a newer image {choice.latest} is published at {choice.source}: "
                f"take it with 'k3s-infra deploy --update-image' (replaces the nodes, one at a time)")
    return f"{label}: {choice.deployed} (pinned)"


def _replacement(change: Change) -> str:
    if change.action != "Modify":
        return ""
    return {"True": "REPLACE", "Conditional": "may replace"}.get(change.replacement, "")


def change_table(change_set: ChangeSet) -> str:
    """Readable plan: one aligned row per change, grouped by stack, then a summary per stack."""
    if change_set.empty:
        return f"{change_set.stack_name}: no changes"
    rows = [("STACK", "ACTION", "LOGICAL ID", "TYPE", "REPLACEMENT")]
    for c in change_set.changes:
        rows.append((c.stack, c.action, c.logical_id, c.resource_type, _replacement(c)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    changes = counted(len(change_set.changes), "change")
    text = [f"{change_set.change_set_type.lower()} {change_set.stack_name}: {changes}"]
    text += ["  " + "  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    summary: dict[str, dict[str, int]] = {}
    for c in change_set.changes:
        counts = summary.setdefault(c.stack, {"add": 0, "modify": 0, "replace": 0, "remove": 0})
        if c.action == "Add":
            counts["add"] += 1
        elif c.action == "Remove":
            counts["remove"] += 1
        elif c.action == "Modify" and c.replacement == "True":
            counts["replace"] += 1
        elif c.action in ("Modify", "Dynamic"):
            counts["modify"] += 1
    if summary:
        width = max(len(s) for s in summary)
        text.append("summary:")
        for stack, counts in summary.items():
            text.append(f"  {stack:<{width}}  " + "  ".join(f"{n} {k}" for k, n in counts.items()))
    if not change_set.changes:
        text.append("  (CloudFormation listed no resource changes)")
    return "\n".join(text)
