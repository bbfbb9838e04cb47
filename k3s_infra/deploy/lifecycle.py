"""plan and deploy as library functions: each takes an ``Aws`` (clients for one environment),
reports its steps to ``on_progress`` (deploy/progress.py) as they happen and returns how it
ended; it never prints (the CLI does: k3s_infra/cli/). Destroy: deploy/teardown.py, status:
deploy/status.py, kubeconfig: deploy/kubeconfig.py, restore: deploy/snapshots.py.

Ctrl-C: until ExecuteChangeSet is under way, the change set this run made is deleted again
(by name when CloudFormation has not answered CreateChangeSet yet: changeset.create); once
CloudFormation runs it, HandedOver says what goes on without this process."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from k3s_infra.model import naming
from k3s_infra.deploy import (DeployError, HandedOver, artifacts, changeset, images, lock, planfile, protection,
                              quorum, readiness, restore_request, retained, roll_order, stack_states)
from k3s_infra.deploy.events import READ_ERRORS, Watcher
from k3s_infra.deploy.package import Package, package
from k3s_infra.deploy.upgrades import check_issuer_upgrade
from k3s_infra.deploy.timings import Measured, measure
from k3s_infra.deploy.progress import (ChangeSetDiscarded, ChangeSetReady, EventsUnavailable, Executing,
                                       ExecutionFailed, ImagesChosen, Interrupted, Message, Packaged, PlanUploads,
                                       Progress, QuorumLossAllowed, RestoreRequestPending, ignore)
from k3s_infra.render import render


@dataclass(frozen=True)
class PlanResult:
    change_set: changeset.ChangeSet  # deleted again, unless kept for 'deploy PLANFILE'
    package: Package
    parameters: list[dict[str, str]] = field(default_factory=list)  # the change set's
    stack: dict | None = None  # the root as described once the change set existed (None: no stack)

@dataclass(frozen=True)
class DeployResult:
    stack_name: str
    outcome: Literal["deployed", "up to date", "declined", "failed"]
    status: str | None = None  # the root's final status, once executed
    protected: bool = False    # termination protection is on
    outputs: dict[str, str] = field(default_factory=dict)
    timings: Measured | None = None  # each nested stack's wave, from the stack events followed
    change_set_id: str | None = None  # the change set executed (or declined)


def root_outputs(cfn, stack_name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}


# --- plan / deploy ----------------------------------------------------------------

def _prepare(aws, on_progress: Progress, *, update_image: bool, allow_quorum_loss: bool = False,
             artifacts_dir: Path | None = None):
    """Checks and choices made before the templates are uploaded: account, pinned images, quorum;
    then the K3s files, checked and staged (deploy/artifacts.py; from ``artifacts_dir`` if given).
    Returns (the described root or None, change set parameters)."""
    env = aws.env
    aws.check_account()
    root = changeset.stack_state(aws.cloudformation, env.stack_name)
    stack_states.change_set_type(env.stack_name, root)  # a stack no change set can take: refused before any upload
    retained.check_first_deploy(aws, root)
    check_issuer_upgrade(env, root)
    current = quorum.current_servers(aws, root)
    if allow_quorum_loss and current is not None and env.servers.count < quorum.majority(current):
        on_progress(QuorumLossAllowed(current, env.servers.count))
    elif current is not None:
        quorum.check(current, env.servers.count)
    choices = images.choose(aws, root, update_image=update_image)
    if choices:
        on_progress(ImagesChosen(tuple(choices)))
    return root, images.stack_parameters(choices) + artifacts.prepare(aws, directory=artifacts_dir,
                                                                      on_progress=on_progress)


def plan(aws, *, on_progress: Progress = ignore, update_image: bool = False, artifacts_dir: Path | None = None,
         keep: Callable[[PlanResult], None] | None = None) -> PlanResult:
    """Package and describe the change set of the root stack, then delete it: nothing runs.
    With ``keep`` (plan --out) the change set stays for 'deploy PLANFILE' and ``keep`` records
    it (writes the plan file); should ``keep`` fail (or Ctrl-C come first) it is deleted all the same."""
    env = aws.env
    root, parameters = _prepare(aws, on_progress, update_image=update_image, artifacts_dir=artifacts_dir)
    on_progress(PlanUploads(env.artifact_bucket, kept=keep is not None))
    pkg = package(aws, render(env))
    on_progress(Packaged(pkg))
    _say_missing_order(aws, pkg, root, on_progress)
    cs = changeset.create(aws, pkg, parameters=parameters, current=root)
    try:
        kept = keep is not None and not cs.empty
        result = PlanResult(cs, pkg, parameters, changeset.stack_state(aws.cloudformation, cs.stack_arn) if kept
                            else root)
        if keep is not None:
            keep(result)
        if not kept:
            changeset.discard(aws, cs)
    except BaseException:  # the plan file not written, Ctrl-C: the change set goes all the same
        changeset.discard(aws, cs)
        raise
    return result


def _updating(env, root: dict | None) -> bool:
    return root is not None and stack_states.change_set_type(env.stack_name, root) == "UPDATE"


def _say_missing_order(aws, pkg: Package, root: dict | None, on_progress: Progress) -> dict[str, list[str]]:
    """plan and deploy PLANFILE, which change nothing else: what of the roll order the deployed
    root lacks (deploy/roll_order.py), said; best effort for plan (GetTemplate refused: {})."""
    if not _updating(aws.env, root):
        return {}
    try:
        missing = roll_order.missing_order(aws, pkg.rendering, root)
    except READ_ERRORS:
        return {}
    if missing:
        on_progress(roll_order.missing_said(missing, recording=False))
    return missing


def _report_restore_request(aws, on_progress: Progress) -> None:
    """A restore request in SSM, before anything changes: a deploy that replaces the first
    server starts a boot that may act on it. Best effort: a role that cannot read it deploys all the same."""
    try:
        pending = restore_request.read(aws.ssm, naming.restore_request_parameter(aws.env), time.time())
    except READ_ERRORS:
        return
    if pending is not None:
        on_progress(RestoreRequestPending(pending))


def deploy(aws, *, confirm: Callable[[changeset.ChangeSet], bool], on_progress: Progress = ignore,
           poll: float = 2.0, update_image: bool = False, allow_quorum_loss: bool = False,
           artifacts_dir: Path | None = None, force_unlock: bool = False) -> DeployResult:
    """Under the stack's lock (deploy/lock.py): package, create the change set, ``confirm`` it,
    execute it and follow its events, then wait for the nodes it asked for
    (deploy/readiness.py: DeployError when they never get ready)."""
    env = aws.env
    aws.check_account()
    with lock.held(aws, "deploy", on_progress, force=force_unlock) as progress:
        root, parameters = _prepare(aws, progress, update_image=update_image, allow_quorum_loss=allow_quorum_loss,
                                    artifacts_dir=artifacts_dir)
        _report_restore_request(aws, progress)
        pkg = package(aws, render(env))
        progress(Packaged(pkg))
        # A rollback of this update returns to the deployed root: it must hold the roll order.
        if _updating(env, root) and roll_order.ensure(aws, pkg, root, progress, poll,
                                                      allow_quorum_loss=allow_quorum_loss):
            root = changeset.stack_state(aws.cloudformation, root["StackId"])
        cs = changeset.create(aws, pkg, parameters=parameters, current=root)

        def check(now: dict | None) -> None:
            stack_states.check_executable(env.stack_name, cs.change_set_type, now)

        return _run(aws, cs, root, pkg, parameters, confirm=confirm, on_progress=progress, poll=poll,
                    allow_quorum_loss=allow_quorum_loss, check=check, owned=True)


def deploy_planned(aws, planned: planfile.PlanFile, *, source: str | Path,
                   confirm: Callable[[changeset.ChangeSet], bool], on_progress: Progress = ignore, poll: float = 2.0,
                   allow_quorum_loss: bool = False, force_unlock: bool = False) -> DeployResult:
    """Execute exactly the change set ``plan --out`` kept: no packaging, no new change set.
    PlanStale, with nothing changed and the change set left to its plan, when the environment
    file (``source``), the templates, the stack or the change set moved on since."""
    env = aws.env
    planfile.check_environment(planned, source, env)
    rendering = render(env)
    planfile.check_templates(planned, rendering)
    aws.check_account()
    with lock.held(aws, "deploy", on_progress, force=force_unlock) as progress:
        root = changeset.stack_state(aws.cloudformation, planned.stack_id or env.stack_name)
        planfile.check_stack(planned, root)
        if planned.change_set_id is None:
            if root is not None:
                protection.apply(aws, root["StackId"], env.protected)  # as deploy does when up to date
            return DeployResult(env.stack_name, "up to date")
        try:
            cs, described = changeset.describe(aws, planned.change_set_id, planned.change_set_type)
        except changeset.ChangeSetGone as exc:
            raise planfile.PlanStale(f"{exc}: executed, deleted or replaced since the plan; plan again") from None
        planfile.check_change_set(planned, described)
        _report_restore_request(aws, progress)
        # The update after a first create that records the roll order sends the planned roots.
        pkg = Package(rendering, [], [child.file for child in rendering.children], dict(planned.roots))
        if _say_missing_order(aws, pkg, root, progress) and not allow_quorum_loss:
            raise DeployError("the deployed root lacks the roll order: a failed update would roll back with every "
                              "server group at once. Run 'k3s-infra deploy' without the plan file once (it records "
                              "the order first), or pass --allow-quorum-loss")
        return _run(aws, cs, root, pkg, planned.parameters, confirm=confirm, on_progress=progress, poll=poll,
                    allow_quorum_loss=allow_quorum_loss, check=lambda now: planfile.check_stack(planned, now),
                    owned=False)


class Follower:
    """What the watchers report, but for their own Interrupted: deploy and destroy raise
    HandedOver instead, which says more (and the CLI says it once)."""

    def __init__(self, on_progress: Progress):
        self.on_progress = on_progress
        self.status: str | None = None  # the root's last status a watcher saw when interrupted

    def __call__(self, message: Message) -> None:
        if isinstance(message, Interrupted):
            self.status = None if message.status == "?" else message.status
        else:
            self.on_progress(message)


def _run(aws, cs: changeset.ChangeSet, root: dict | None, pkg: Package, parameters: list[dict[str, str]], *,
         confirm: Callable[[changeset.ChangeSet], bool], on_progress: Progress, poll: float,
         allow_quorum_loss: bool, check: Callable[[dict | None], None], owned: bool) -> DeployResult:
    """Confirm ``cs``, ``check`` the stack right before executing it, execute it and follow it
    to the end. ``owned``: this run made it, so it deletes it again when it does not run (a
    planned one stays for its plan file)."""
    env, cfn = aws.env, aws.cloudformation

    def drop() -> None:
        if owned:
            changeset.discard(aws, cs)
            on_progress(ChangeSetDiscarded())

    follow = Follower(on_progress)
    watcher = Watcher(cfn, cs.stack_arn, env.stack_name, on_progress=follow)
    try:
        if cs.empty:
            changeset.discard(aws, cs)
            protection.apply(aws, root["StackId"], env.protected)  # put back what someone changed by hand
            return DeployResult(env.stack_name, "up to date")
        if root is not None and not allow_quorum_loss:
            quorum.check_servers_ready(aws, root, cs.changes)
        on_progress(ChangeSetReady(cs))
        if not confirm(cs):
            drop()
            return DeployResult(env.stack_name, "declined", change_set_id=cs.change_set_id)
        watcher.prime()
        check(changeset.stack_state(cfn, cs.stack_arn))  # as late as can be: what else runs on it now
        on_progress(Executing(cs.change_set_type, env.stack_name))  # confirms the lock (deploy/lock.py)
    except BaseException:  # refused, lock lost, Ctrl-C at the prompt or while preparing: leave nothing behind
        if not cs.empty:
            drop()
        raise
    started = datetime.now(timezone.utc)
    executed, status = False, None
    try:
        with protection.lifted_during_update(aws, root, env.protected):
            try:
                changeset.execute(aws, cs)
            except KeyboardInterrupt:  # during the call: did CloudFormation take it?
                executed = not changeset.available(aws, cs)
                raise
            except DeployError as exc:
                on_progress(ExecutionFailed(str(exc)))
                try:  # best effort: whatever the stacks recorded before the API gave up
                    watcher.poll()
                    on_progress(watcher.failure(changeset.stack_state(cfn, cs.stack_arn)["StackStatus"]))
                except Exception as detail:  # noqa: BLE001 - the execution error above is the news
                    on_progress(EventsUnavailable(type(detail).__name__))
                return DeployResult(env.stack_name, "failed", change_set_id=cs.change_set_id)
            executed = True
            status = watcher.wait(poll=poll)
        return _after(aws, cs, watcher, status, started, pkg, parameters, follow, poll)
    except KeyboardInterrupt:
        if not executed:
            drop()
            raise
        if status is None:  # CloudFormation runs the change set
            raise HandedOver(env.stack_name, cs.change_set_type, follow.status, env.region) from None
        # After it: the update recording the roll order, or the wait for the nodes
        running = follow.status is not None and stack_states.running(follow.status)
        raise HandedOver(env.stack_name, "UPDATE" if running else None, follow.status or status,
                         env.region) from None


def _after(aws, cs: changeset.ChangeSet, watcher: Watcher, status: str, started: datetime, pkg: Package,
           parameters: list[dict[str, str]], on_progress: Progress, poll: float) -> DeployResult:
    """How the executed change set ended; after a success, the roll order and the nodes."""
    env, stack_arn = aws.env, cs.stack_arn
    if not stack_states.succeeded(status):  # a rollback is never a success
        on_progress(watcher.failure(status))
        return DeployResult(env.stack_name, "failed", status, timings=measure(watcher.events, stack_arn),
                            change_set_id=cs.change_set_id)
    protection.apply(aws, stack_arn, env.protected)  # a new stack's; an update's is set back above
    # CloudFormation waits for nodes only on create and on a rolling update: wait for the nodes
    # of a size change too (deploy/readiness.py). The deploy started at its first stack event
    # in AWS's clock, or earlier by this machine's.
    since = min([started, *(event["Timestamp"] for event in watcher.events)])
    timings = measure(watcher.events, stack_arn)
    if cs.change_set_type == "CREATE":  # the create root had no roll order: record it (never fatal)
        roll_order.record(aws, pkg, parameters, stack_arn, on_progress, poll)
    readiness.wait_for_nodes(aws, stack_arn, since=since, on_progress=on_progress)
    return DeployResult(env.stack_name, "deployed", status, env.protected,
                        root_outputs(aws.cloudformation, stack_arn), timings, cs.change_set_id)
