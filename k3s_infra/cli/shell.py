"""k3s-infra shell NODE | --role server|agent[:POOL]: a shell on a node through AWS Systems
Manager Session Manager. No inbound port, no key pair: the node's SSM Agent dials out.

The session is started here (ssm StartSession, boto3) and handed to AWS's
``session-manager-plugin``, exec'd in this process's place with the arguments the AWS CLI
gives it (aws/aws-cli awscli/customizations/sessionmanager.py, StartSessionCaller.invoke):
the StartSession response (SessionId, TokenValue, StreamUrl) as JSON, the region,
``StartSession``, the profile ('' for the default chain), the request's parameters as JSON and
the endpoint URL. Plugins newer than 1.2.497.0 take the response from the environment variable
named in its place (AWS_SSM_START_SESSION_RESPONSE), so the session token never shows in the
process list; older plugins would need it on the command line and are refused here.

Refused before any AWS call (exit 2): node_access.session_manager false in the environment
file, or no usable plugin (installing it:
https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess

from botocore.exceptions import ClientError

from k3s_infra.cli import AwsFailure, UsageError, load, source_of
from k3s_infra.cli import aws as cli_aws
from k3s_infra.config import ConfigError
from k3s_infra.deploy import DeployError, changeset, node_access
from k3s_infra.deploy.aws import Aws

PLUGIN = "session-manager-plugin"
INSTALL_URL = ("https://docs.aws.amazon.com/systems-manager/latest/userguide/"
               "session-manager-working-with-install-plugin.html")
# awscli/customizations/sessionmanager.py: LAST_PLUGIN_VERSION_WITHOUT_ENV_VAR, DEFAULT_SSM_ENV_NAME.
LAST_VERSION_WITHOUT_ENV_VAR = (1, 2, 497, 0)
RESPONSE_VARIABLE = "AWS_SSM_START_SESSION_RESPONSE"
VERSION = re.compile(r"\d+(\.\d+){0,3}")


def run(args: argparse.Namespace) -> int:
    role, pool = _role(args)
    env = load(args)
    if not env.node_access.session_manager:
        raise ConfigError(source_of(args), [("node_access.session_manager", (
            "false: this environment forbids Session Manager sessions on its nodes (their roles have no "
            "ssmmessages permission), so 'k3s-infra shell' cannot open one"))])
    plugin = plugin_path()

    def open_shell(aws: Aws) -> int:
        instance_id = _target(aws, args.node, role, pool)
        try:
            session = node_access.start_session(aws, instance_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TargetNotConnected":
                raise DeployError(f"{instance_id}: StartSession: TargetNotConnected; "
                                  f"{node_access.AGENT_HINT}") from None
            raise
        argv, variables = plugin_command(plugin, session, getattr(args, "profile", None))
        try:
            os.execve(plugin, argv, variables)  # the plugin owns the terminal from here
        except OSError as exc:
            node_access.terminate_session(aws, session.session_id)  # no session left open for nobody
            raise AwsFailure(f"cannot run {plugin}: {exc.strerror or exc}") from None
        return 0  # only when exec is replaced (tests)

    return cli_aws.run(args, open_shell)


def _role(args: argparse.Namespace) -> tuple[str | None, str | None]:
    if (args.node is None) == (args.role is None):
        raise UsageError("give a NODE (instance ID or private DNS name) or --role server|agent[:POOL], one of them")
    if args.role is None:
        return None, None
    role, _, pool = args.role.partition(":")
    if role not in ("server", "agent") or (role == "server" and pool) or (":" in args.role and not pool):
        raise UsageError(f"--role {args.role!r}: give server, agent or agent:POOL")
    return role, pool or None


def _target(aws: Aws, node: str | None, role: str | None, pool: str | None) -> str:
    if node is not None:
        instance_id = node_access.resolve(aws, node)
        status = node_access.online(aws, [instance_id])
        if status.get(instance_id) != "Online":
            raise DeployError(f"{node_access.not_online([instance_id], status)}; {node_access.AGENT_HINT}")
        return instance_id
    stacks = node_access.role_stacks(aws, role, pool)  # a pool not in the file: refused before any call
    root = changeset.deployed(aws)
    nodes = node_access.in_service(aws, root["StackId"], stacks)
    return node_access.pick_online(aws, nodes, f"{role} node" + (f" of pool {pool}" if pool else "")).instance_id


def plugin_path() -> str:
    """The plugin on PATH, new enough to take the session from the environment; UsageError (exit 2) otherwise."""
    found = shutil.which(PLUGIN)
    if not found:
        raise UsageError(f"{PLUGIN} is not installed (or not on PATH): 'k3s-infra shell' hands the session to it, "
                         f"as 'aws ssm start-session' does; install it: {INSTALL_URL}")
    try:
        text = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(f"{found} --version did not answer ({exc}); reinstall it: {INSTALL_URL}") from None
    version = re.sub(r"\s+", "", text)
    if not VERSION.fullmatch(version) or not _newer(version):
        raise UsageError(f"{found} is version {version or 'unknown'}; 'k3s-infra shell' needs one newer than "
                         f"{'.'.join(map(str, LAST_VERSION_WITHOUT_ENV_VAR))}, which takes the session token from "
                         f"the environment instead of the command line; update it: {INSTALL_URL}")
    return found


def _newer(version: str) -> bool:
    parts = [int(p) for p in version.split(".")]
    parts += [0] * (len(LAST_VERSION_WITHOUT_ENV_VAR) - len(parts))
    return tuple(parts) > LAST_VERSION_WITHOUT_ENV_VAR


def plugin_command(plugin: str, session: node_access.Session, profile: str | None) -> tuple[list[str], dict]:
    """The plugin's argv and environment, as the AWS CLI builds them (module docstring)."""
    response = json.dumps({"SessionId": session.session_id, "TokenValue": session.token_value,
                           "StreamUrl": session.stream_url})
    variables = {**os.environ, RESPONSE_VARIABLE: response}
    argv = [plugin, RESPONSE_VARIABLE, session.region, "StartSession", profile or "",
            json.dumps(session.parameters), session.endpoint_url]
    return argv, variables
