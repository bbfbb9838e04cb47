"""k3s-infra destroy: delete the root stack (and so every nested stack), streaming events;
``--dry-run`` lists what it would do and changes nothing."""

from __future__ import annotations

import argparse

from k3s_infra.cli import EXIT_FAILED, EXIT_OK, UsageError, load
from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli.output import aligned, say
from k3s_infra.cli.progress import Console, leftover_rows
from k3s_infra.deploy import DeployError, lifecycle, stack_states
from k3s_infra.deploy.aws import Aws
from k3s_infra.deploy.protection import load_balancer_name


def run(args: argparse.Namespace) -> int:
    env = load(args)
    dry_run = getattr(args, "dry_run", False)
    if env.protected and not args.allow_protected and not dry_run:
        raise UsageError(f"{env.name} is protected: refusing to destroy {env.stack_name}; "
                         f"pass --allow-protected if you really mean it")

    def action(aws: Aws) -> int:
        if dry_run:
            for line in plan_lines(lifecycle.destroy_plan(aws), allow_protected=args.allow_protected):
                say(line)
            return EXIT_OK
        outcome = lifecycle.destroy(aws, allow_protected=args.allow_protected, on_progress=Console(),
                                    confirm=lambda request: cli_aws.ask(question(request), args.yes))
        if outcome == "declined":
            say("not destroyed")
        return EXIT_OK if outcome in ("destroyed", "absent") else EXIT_FAILED

    return cli_aws.run(args, action)


def question(request: lifecycle.DestroyRequest) -> str:
    count = "its" if request.nested_stacks is None else f"its {request.nested_stacks}"
    return f"delete stack {request.stack_name} and {count} nested stacks in {request.account_id}/{request.region}"


def plan_lines(plan: lifecycle.DestroyPlan, *, allow_protected: bool = False) -> list[str]:
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
