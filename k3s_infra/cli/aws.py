"""Glue for the commands that talk to AWS: clients for the chosen environment,
confirmation prompts, and AWS errors turned into exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, ProfileNotFound
from botocore.parsers import ResponseParserError

from k3s_infra.cli import EXIT_FAILED, EXIT_USAGE, UsageError, load
from k3s_infra.deploy import AccountMismatch, DeployError, Refused
from k3s_infra.deploy.aws import Aws, check_account
from k3s_infra.deploy.kubeconfig import NotPublished


def ask(question: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"{question}: no terminal to ask on; pass --yes to confirm")
    answer = input(f"{question}? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def run(args: argparse.Namespace, action: Callable[[Aws], int]) -> int:
    """Load the environment, build clients, check the account, run ``action(aws)`` and map
    failures to exit codes."""
    env = load(args)
    try:
        session = boto3.Session(profile_name=getattr(args, "profile", None), region_name=env.region)
    except ProfileNotFound as exc:
        raise UsageError(f"{exc}; --profile names a profile of ~/.aws/config") from None
    logging.getLogger(__name__).info("AWS profile %s, region %s, endpoint %s", session.profile_name, env.region,
                                     os.environ.get("AWS_ENDPOINT_URL", "default"))
    try:
        aws = Aws(env, session)
        check_account(aws)  # every AWS command, before it reads or changes anything
        return action(aws)
    except (AccountMismatch, Refused) as exc:
        raise UsageError(str(exc)) from None
    except (NoCredentialsError, NoRegionError) as exc:
        print(f"error: {exc} (configure credentials, e.g. AWS_PROFILE)", file=sys.stderr)
        return EXIT_USAGE
    except (DeployError, NotPublished) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(f"error: {exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', exc)}", file=sys.stderr)
        return EXIT_FAILED
    except (BotoCoreError, ResponseParserError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
