"""The cluster's nodes as AWS Systems Manager reaches them: which instance a name means, which
instances of a role are in service, whether their SSM Agent is online, and the Session Manager
session `k3s-infra shell` hands to the session-manager-plugin. No inbound port, no key pair:
the agent Amazon Linux 2023 ships dials out (node roles: components/iam.py ssm_agent_statements).

Nodes are named by their instance ID (boot.sh discover: ``node-name: $instance_id``); a node
is also found by its private DNS name (``ip-10-0-1-5.eu-west-1.compute.internal`` or just
``ip-10-0-1-5``), always among this cluster's running instances only (its cluster tag).

``run_shell``: a shell script on one instance through Run Command (AWS-RunShellScript), its
output read back with GetCommandInvocation: what `snapshots create` and the drill's API check
run on a server."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import ClientError

from k3s_infra.deploy import DeployError, Refused, changeset
from k3s_infra.deploy.groups import describe_groups, nested_stack, outputs
from k3s_infra.model import naming
from k3s_infra.model import outputs as o

INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")
PRIVATE_DNS = re.compile(r"ip-\d{1,3}(-\d{1,3}){3}(\.[a-z0-9.-]+)?")
# DescribeInstanceInformation: a filter takes at most 100 values, a page at most 50 items
# (botocore ssm service-2.json: InstanceInformationFilterValueSet, MaxResultsEC2Compatible).
IDS_PER_CALL = 50
SERVER_STACKS = (naming.STACK_SERVER_INIT, naming.STACK_SERVERS)
SESSION_REASON = "k3s-infra shell"
DOCUMENT = "AWS-RunShellScript"
PLUGIN = "aws:runShellScript"
# GetCommandInvocation Status (SSM API Reference, GetCommandInvocation; botocore ssm
# service-2.json CommandInvocationStatus): these end an invocation, the others do not yet.
DONE = frozenset({"Success", "Cancelled", "TimedOut", "Failed"})
# SendCommand TimeoutSeconds: 30 to 2592000 (service-2.json TimeoutSeconds); AWS-RunShellScript's
# executionTimeout: 1 to 172800 seconds (the document's allowedPattern).
DELIVERY_MIN, EXECUTION_MAX = 30, 172800
# GetCommandInvocation returns at most the first 24,000 characters of stdout and 8,000 of stderr
# (StandardOutputContent, StandardErrorContent; service-2.json max): a script whose output matters
# prints little, and ends with a line of its own to show it was not cut.
STDOUT_MAX = 24000


@dataclass(frozen=True)
class Node:
    instance_id: str
    stack: str  # its node stack's logical ID (ServerInit, Servers, AgentPool<Name>)
    group: str  # its auto scaling group


@dataclass(frozen=True)
class Shell:
    """An ended Run Command invocation, as GetCommandInvocation reports it."""
    command_id: str
    instance_id: str
    status: str           # Success, Failed, TimedOut or Cancelled (DONE)
    stdout: str           # at most STDOUT_MAX characters
    stderr: str
    code: int | None      # the script's exit status; None when it did not run to an end
    details: str          # StatusDetails: Undeliverable, ExecutionTimedOut, Terminated...


@dataclass(frozen=True)
class Session:
    """What StartSession answered and what the plugin needs beside it (the AWS CLI's contract:
    aws/aws-cli awscli/customizations/sessionmanager.py StartSessionCaller.invoke)."""
    instance_id: str
    session_id: str
    token_value: str
    stream_url: str
    region: str
    endpoint_url: str
    parameters: dict  # the StartSession request, as the plugin is given it


def in_service(aws, root_id: str, stacks: tuple[str, ...]) -> list[Node]:
    """InService, healthy instances of these node stacks' groups, in the stacks' order."""
    groups = {stack: outputs(nested_stack(aws.cloudformation, root_id, stack)).get(o.AUTO_SCALING_GROUP)
              for stack in stacks}
    described = describe_groups(aws.autoscaling, [name for name in groups.values() if name])
    return [Node(i["InstanceId"], stack, name) for stack, name in groups.items() if name
            for i in described.get(name, {}).get("Instances", [])
            if i.get("LifecycleState") == "InService" and i.get("HealthStatus", "Healthy") == "Healthy"]


def role_stacks(aws, role: str, pool: str | None) -> tuple[str, ...]:
    """The node stacks of ``server`` or ``agent`` (every pool, or the one named)."""
    if role == "server":
        return SERVER_STACKS
    pools = [p.name for p in aws.env.agent_pools]
    if pool is not None and pool not in pools:
        raise Refused(f"agent pool {pool!r} is not in {aws.env.name}: agent_pools are {', '.join(pools)}")
    return tuple(naming.agent_pool_stack(name) for name in pools if pool in (None, name))


def online(aws, instance_ids: list[str]) -> dict[str, str]:
    """Instance ID -> the PingStatus its SSM Agent reports (Online, ConnectionLost, Inactive);
    an instance whose agent never registered is absent (DescribeInstanceInformation)."""
    found: dict[str, str] = {}
    for start in range(0, len(instance_ids), IDS_PER_CALL):
        batch = instance_ids[start:start + IDS_PER_CALL]
        pages = aws.ssm.get_paginator("describe_instance_information").paginate(
            Filters=[{"Key": "InstanceIds", "Values": batch}], PaginationConfig={"PageSize": IDS_PER_CALL})
        for page in pages:
            found.update({i["InstanceId"]: i.get("PingStatus", "?") for i in page.get("InstanceInformationList", [])})
    return found


def not_online(node_ids: list[str], status: dict[str, str]) -> str:
    """Why these nodes cannot be reached, one clause each."""
    return "; ".join(f"{i}: SSM Agent {status[i]}" if i in status else f"{i}: its SSM Agent never registered"
                     for i in node_ids)


AGENT_HINT = ("the node role needs the SSM Agent's permissions (node_access in the environment file, then "
              "'k3s-infra deploy') and the node a route to the ssm, ssmmessages and ec2messages endpoints "
              "(NAT or interface endpoints); DescribeInstanceInformation lists the agents that registered")


def pick_online(aws, nodes: list[Node], what: str) -> Node:
    """The first of ``nodes`` whose agent is Online; DeployError naming each one's state otherwise."""
    if not nodes:
        raise DeployError(f"{aws.env.stack_name} has no {what} in service; see 'k3s-infra status'")
    status = online(aws, [n.instance_id for n in nodes])
    for node in nodes:
        if status.get(node.instance_id) == "Online":
            return node
    raise DeployError(f"no {what} has an online SSM Agent ({not_online([n.instance_id for n in nodes], status)}); "
                      f"{AGENT_HINT}")


def resolve(aws, name: str) -> str:
    """The instance ID of this cluster's running node ``name`` (an instance ID, which is its
    node name, or its private DNS name); Refused (the user's input) when there is none."""
    if INSTANCE_ID.fullmatch(name):
        key, value = "instance-id", name
    elif PRIVATE_DNS.fullmatch(name):
        key, value = "private-dns-name", name if "." in name else f"{name}.*"
    else:
        raise Refused(f"{name!r} is not a node name: give an instance ID (i-0123456789abcdef0, as K3s names the "
                      f"nodes here) or a private DNS name (ip-10-0-1-5...), or --role server|agent[:POOL]")
    filters = [{"Name": key, "Values": [value]}, {"Name": "instance-state-name", "Values": ["running"]},
               {"Name": f"tag:{naming.CLUSTER_TAG}", "Values": [naming.cluster_name(aws.env)]}]
    found = [i["InstanceId"] for page in aws.ec2.get_paginator("describe_instances").paginate(Filters=filters)
             for reservation in page["Reservations"] for i in reservation["Instances"]]
    if len(found) != 1:
        many = f" ({', '.join(sorted(found))}: give the instance ID)" if found else ""
        raise Refused(f"{'more than one' if found else 'no'} running node {name!r} in {aws.env.stack_name}{many}; "
                      f"'kubectl get nodes' or 'k3s-infra status' list them")
    return found[0]


def start_session(aws, instance_id: str) -> Session:
    """Session Manager StartSession on the node's default shell document. The session is open
    once this returns: the caller hands it to the plugin (or terminates it)."""
    parameters = {"Target": instance_id, "Reason": SESSION_REASON}
    response = aws.ssm.start_session(**parameters)
    return Session(instance_id, response["SessionId"], response["TokenValue"], response["StreamUrl"],
                   aws.ssm.meta.region_name, aws.ssm.meta.endpoint_url, parameters)


def terminate_session(aws, session_id: str) -> None:
    aws.ssm.terminate_session(SessionId=session_id)


# --- Run Command ----------------------------------------------------------------------

def send_shell(aws, instance_id: str, commands: list[str], *, timeout: float, comment: str) -> str:
    """SendCommand AWS-RunShellScript to one instance; its CommandId. ``timeout`` bounds both the
    delivery and the script. DeployError when the instance's agent cannot take it."""
    try:
        response = aws.ssm.send_command(
            InstanceIds=[instance_id], DocumentName=DOCUMENT, Comment=comment,
            TimeoutSeconds=max(DELIVERY_MIN, int(timeout)),
            Parameters={"commands": list(commands),
                        "executionTimeout": [str(min(EXECUTION_MAX, max(1, int(timeout))))]})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidInstanceId":  # not registered or not online
            raise DeployError(f"{instance_id} cannot take Run Command now (SendCommand: InvalidInstanceId: "
                              f"its SSM Agent is not online); {AGENT_HINT}") from None
        raise
    return response["Command"]["CommandId"]


def wait_shell(aws, command_id: str, instance_id: str, *, clock: tuple[float, float, float],
               on_status: Callable[[str], None] | None = None) -> Shell:
    """Poll GetCommandInvocation until the invocation ends (any of DONE: the caller judges the
    status). ``clock``: (deadline on time.monotonic, poll seconds, the whole timeout), see tick."""
    while True:
        try:
            invocation = aws.ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id,
                                                        PluginName=PLUGIN)
        except ClientError as exc:
            # Right after SendCommand the invocation may not exist yet (eventual consistency).
            if exc.response.get("Error", {}).get("Code") != "InvocationDoesNotExist":
                raise
            invocation = {"Status": "Pending"}
        status = invocation.get("Status", "?")
        if status in DONE:
            code = invocation.get("ResponseCode")
            return Shell(command_id, instance_id, status, invocation.get("StandardOutputContent") or "",
                         invocation.get("StandardErrorContent") or "", None if code in (None, -1) else code,
                         invocation.get("StatusDetails") or status)
        tick(clock, f"command {command_id} on {instance_id} (last status {status}); it may still finish: "
                    f"'aws ssm get-command-invocation --command-id {command_id} --instance-id {instance_id}'")
        if on_status:
            on_status(status)


def run_shell(aws, instance_id: str, commands: list[str], *, timeout: float, poll: float,
              comment: str = "k3s-infra") -> Shell:
    """``commands`` (one script) on ``instance_id``, waited for at most ``timeout`` seconds."""
    clock = (time.monotonic() + timeout, poll, timeout)
    return wait_shell(aws, send_shell(aws, instance_id, commands, timeout=timeout, comment=comment),
                      instance_id, clock=clock)


def tick(clock: tuple[float, float, float], what: str) -> None:
    """Sleep one poll, or DeployError once the deadline has passed. ``clock``: (deadline on
    time.monotonic, poll seconds, the whole timeout)."""
    deadline, poll, timeout = clock
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeployError(f"gave up after {timeout:.0f}s waiting for {what}")
    time.sleep(min(poll, left))
