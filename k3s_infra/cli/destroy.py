"""k3s-infra destroy: delete the root stack (and so every nested stack), streaming events."""

from __future__ import annotations

import argparse

from k3s_infra.cli import UsageError, add_environment_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_environment_arguments(parser)
    parser.add_argument("--yes", "-y", action="store_true", help="delete without asking")
    parser.add_argument("--allow-protected", action="store_true",
                        help="override: destroy an environment marked protected (and lift termination protection)")


def run(args: argparse.Namespace) -> int:
    from k3s_infra.cli import load
    from k3s_infra.deploy import command, lifecycle

    env = load(args)
    if env.protected and not args.allow_protected:
        raise UsageError(f"{env.name} is protected: refusing to destroy {env.stack_name}; "
                         f"pass --allow-protected if you really mean it")
    return command.run(args, lambda aws: lifecycle.destroy(
        aws, allow_protected=args.allow_protected,
        confirm=lambda what: command.ask(what, args.yes)))
