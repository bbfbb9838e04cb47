"""k3s-infra destroy: delete the root stack (and so every nested stack), streaming events;
``--dry-run`` lists what it would do and changes nothing."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from k3s_infra.cli import EXIT_FAILED, EXIT_OK, UsageError, load
from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli.deploy import timings_json
from k3s_infra.cli.output import aligned, document, print_json, say, wants_json
from k3s_infra.cli.progress import Console, binary_size, counted, leftover_rows
from k3s_infra.deploy import DeployError, losses, stack_states, teardown
from k3s_infra.deploy.aws import Aws
from k3s_infra.deploy.protection import load_balancer_name


def run(args: argparse.Namespace) -> int:
    env = load(args)
    dry_run = getattr(args, "dry_run", False)
    as_json = wants_json(args)
    if as_json and not (args.yes or dry_run):
        raise UsageError("destroy --output json: pass --yes (a question would mix with the JSON document)")
    if env.protected and not args.allow_protected and not dry_run:
        raise UsageError(f"{env.name} is protected: refusing to destroy {env.stack_name}; "
                         f"pass --allow-protected if you really mean it")

    def action(aws: Aws) -> int:
        if dry_run:
            plan = teardown.destroy_plan(aws)
            if as_json:
                print_json(document("destroy", dry_run=True, **dry_run_json(plan)))
            for line in () if as_json else plan_lines(plan, allow_protected=args.allow_protected):
                say(line)
            return EXIT_OK
        result = teardown.destroy(aws, allow_protected=args.allow_protected, force_unlock=args.force_unlock,
                                  on_progress=Console(sys.stderr if as_json else sys.stdout),
                                  confirm=lambda request: confirm(aws, request, args.yes))
        if as_json:
            print_json(document("destroy", dry_run=False, stack_name=result.stack_name, outcome=result.outcome,
                                status=result.status, **timings_json(result.timings)))
        elif result.outcome == "declined":
            say("not destroyed")
        return EXIT_OK if result.outcome in ("destroyed", "absent") else EXIT_FAILED

    return cli_aws.run(args, action)


def dry_run_json(plan: teardown.DestroyPlan) -> dict:
    """``destroy --dry-run --output json``: what a destroy would do now, as data."""
    request = plan.request
    return {"stack_name": request.stack_name, "outcome": "dry run", "status": plan.status,
            "nested_stacks": request.nested_stacks, "artifacts": plan.artifacts,
            "termination_protection": plan.termination_protection,
            "protected_load_balancers": list(plan.protected_load_balancers),
            "leftovers": None if plan.leftovers is None else [dataclasses.asdict(r) for r in plan.leftovers.resources],
            "buckets": [{"what": what, "bucket": bucket} for what, bucket in plan.buckets],
            "parameters": list(plan.parameters), "protected": plan.protected, "retained_listed": plan.retained_listed,
            "retained": [{"stack": stack, "type": type_, "id": physical} for stack, type_, physical in plan.retained]}


def confirm(aws: Aws, request: teardown.DestroyRequest, assume_yes: bool) -> bool:
    """Asked on a terminal: first what the destroy loses for good and what it keeps."""
    if not assume_yes and sys.stdin.isatty():
        for line in loss_lines(losses.assess(aws)):
            say(line)
    return cli_aws.ask(question(request), assume_yes)


def loss_lines(found: losses.Losses | None) -> list[str]:
    """The snapshots (count and size, every version), secrets, key and node-owned parameters:
    deleted for good, or kept by a protected environment."""
    if found is None:
        return []
    gone, kept = [], []
    snapshots = found.snapshots
    if snapshots and snapshots.objects is None:
        (kept if found.protected else gone).append(
            f"the snapshots in s3://{snapshots.bucket} (not counted: {snapshots.error})")
    elif snapshots:
        (kept if found.protected else gone).append(
            f"{counted(snapshots.objects, 'snapshot object')} ({binary_size(snapshots.size)}, every version) "
            f"in s3://{snapshots.bucket}")
    if found.secrets:
        names = ", ".join(found.secrets)
        if found.protected:
            kept.append(f"{counted(len(found.secrets), 'secret')}: {names}")
        else:
            gone.append(f"{counted(len(found.secrets), 'secret')}, without a recovery window: {names}")
    if found.key and found.protected:
        kept.append(f"the cluster key {found.key}")
    elif found.key:
        gone.append(f"the cluster key {found.key}, after {found.key_pending_days} days "
                    "(until then: aws kms cancel-key-deletion)")
    if found.parameters:
        gone.append(f"the node-owned parameters {', '.join(found.parameters)}")
    lines = []
    if kept:
        lines += ["kept (protected environment: delete by hand when no longer needed):", *(f"  {k}" for k in kept)]
    if gone:
        lines += ["deleted for good:", *(f"  {g}" for g in gone)]
    return lines


def question(request: teardown.DestroyRequest) -> str:
    count = "its" if request.nested_stacks is None else f"its {request.nested_stacks}"
    return f"delete stack {request.stack_name} and {count} nested stacks in {request.account_id}/{request.region}"


def plan_lines(plan: teardown.DestroyPlan, *, allow_protected: bool = False) -> list[str]:
    """``destroy --dry-run``: the steps of a destroy in their order, as they would run now."""
    request = plan.request
    head = f"dry run: destroy {request.stack_name} in {request.account_id}/{request.region}"
    if plan.status is None:
        return [f"{head}: no such stack; only this cluster's templates would be removed from {plan.artifacts}",
                "nothing deleted (dry run)"]
    lines = [f"{head} would:"]
    needs = "" if allow_protected else " (needs --allow-protected)"
    if plan.protected and not allow_protected:
        lines.insert(0, f"note: {request.stack_name} is protected: destroy refuses without --allow-protected")
    try:
        stack_states.check_destroyable(request.stack_name, plan.status)
    except DeployError as exc:  # another operation runs: destroy would refuse before any step below
        lines.insert(0, f"note: destroy refuses now: {exc}")
    if plan.termination_protection:
        lines.append(f"  lift the stack's termination protection{needs}")
    if plan.protected_load_balancers:
        names = ", ".join(map(load_balancer_name, plan.protected_load_balancers))
        lines.append(f"  lift the deletion protection of the load balancers {names}{needs}")
    found = plan.leftovers
    if found:
        lines.append(f"  delete what the cloud controller made (tagged {found.tag}), {len(found)} resources:")
        lines += leftover_rows(found.resources, indent="    ")
    elif found is not None:
        lines.append(f"  find nothing left by the cloud controller (tagged {found.tag})")
    lines += [f"  empty the {what} bucket s3://{bucket}" for what, bucket in plan.buckets]
    count = "its" if request.nested_stacks is None else f"its {request.nested_stacks}"
    lines.append(f"  delete stack {request.stack_name} ({plan.status}) and {count} nested stacks")
    if plan.parameters:
        lines.append(f"  delete the node-owned parameters {', '.join(plan.parameters)} (where present)")
    lines.append(f"  remove this cluster's templates from {plan.artifacts} (and the bucket once empty)")
    if plan.retained:
        lines.append("  keep (DeletionPolicy Retain), to delete by hand when no longer needed:")
        lines += aligned(plan.retained, indent="    ")
    elif not plan.retained_listed and plan.protected:
        lines.append("  keep the cluster's KMS key, secrets and snapshot bucket (DeletionPolicy Retain; not listed)")
    lines.append("nothing deleted (dry run)")
    return lines
