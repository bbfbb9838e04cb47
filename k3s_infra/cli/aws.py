"""Glue for the commands that talk to AWS: clients for the chosen environment,
confirmation prompts, and AWS errors turned into exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, ProfileNotFound
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import ConnectTimeoutError
from botocore.parsers import ResponseParserError

from k3s_infra.cli import AwsFailure, UsageError, load
from k3s_infra.deploy import AccountMismatch, DeployError, Refused
from k3s_infra.deploy.aws import CONNECT_TIMEOUT, Aws, check_account
from k3s_infra.deploy.kubeconfig import NotPublished


def ask(question: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"{question}: no terminal to ask on; pass --yes to confirm")
    answer = input(f"{question}? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def run(args: argparse.Namespace, action: Callable[[Aws], int]) -> int:
    """Load the environment, build clients, check the account, run ``action(aws)``; failures
    become UsageError (exit 2) or AwsFailure (exit 1), which cli/__init__.py reports."""
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
        raise UsageError(f"{exc} (configure credentials, e.g. AWS_PROFILE)") from None
    except (DeployError, NotPublished) as exc:
        raise AwsFailure(str(exc)) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise AwsFailure(f"{exc.operation_name}: {error.get('Code', '?')}: {error.get('Message', exc)}") from None
    except BotoConnectionError as exc:
        raise AwsFailure(unreachable(exc)) from None
    except (BotoCoreError, ResponseParserError) as exc:
        raise AwsFailure(str(exc)) from None


def unreachable(exc: BotoConnectionError) -> str:
    """One line naming the endpoint that did not answer and why (deploy/aws.py bounds the wait)."""
    url = exc.kwargs.get("endpoint_url", "?")
    # urllib3's reason ends in the system's words: "[Errno 111] Connection refused"
    reason = re.search(r"\[Errno -?\d+\] ([^)'\"]+)", str(exc.kwargs.get("error", "")))
    why = reason[1].strip() if reason else f"no answer within {CONNECT_TIMEOUT} s" \
        if isinstance(exc, ConnectTimeoutError) else str(exc)
    emulator = os.environ.get("AWS_ENDPOINT_URL")
    hint = (f"AWS_ENDPOINT_URL is {emulator}: is the emulator running? ('k3s-infra emulator start')" if emulator
            else "check the network and the region")
    return f"cannot reach {url}: {why}; {hint}"
