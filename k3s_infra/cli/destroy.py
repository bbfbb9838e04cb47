"""k3s-infra destroy: delete the root stack (and so every nested stack), streaming events."""

from __future__ import annotations

import argparse

from k3s_infra.cli import EXIT_FAILED, EXIT_OK, UsageError, load
from k3s_infra.cli import aws as cli_aws
from k3s_infra.cli.output import say
from k3s_infra.cli.progress import Console
from k3s_infra.deploy import lifecycle
from k3s_infra.deploy.aws import Aws


def run(args: argparse.Namespace) -> int:
    env = load(args)
    if env.protected and not args.allow_protected:
        raise UsageError(f"{env.name} is protected: refusing to destroy {env.stack_name}; "
                         f"pass --allow-protected if you really mean it")

    def action(aws: Aws) -> int:
        outcome = lifecycle.destroy(aws, allow_protected=args.allow_protected, on_progress=Console(),
                                    confirm=lambda request: cli_aws.ask(question(request), args.yes))
        if outcome == "declined":
            say("not destroyed")
        return EXIT_OK if outcome in ("destroyed", "absent") else EXIT_FAILED

    return cli_aws.run(args, action)


def question(request: lifecycle.DestroyRequest) -> str:
    count = "its" if request.nested_stacks is None else f"its {request.nested_stacks}"
    return f"delete stack {request.stack_name} and {count} nested stacks in {request.account_id}/{request.region}"
