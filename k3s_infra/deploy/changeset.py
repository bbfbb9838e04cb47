"""Change sets for the root stack: CREATE or UPDATE, nested stacks included, described
as one Change per resource (the CLI shows them as a table: k3s_infra/cli/progress.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from k3s_infra.model import naming
from k3s_infra.deploy import DeployError, stack_states
from k3s_infra.deploy.package import Package

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


@dataclass
class Change:
    stack: str          # "Root" or the nested stack's logical ID
    action: str         # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str    # True | False | Conditional | "" (not applicable)


@dataclass
class ChangeSet:
    stack_name: str
    change_set_id: str
    change_set_type: str  # CREATE | UPDATE
    changes: list[Change] = field(default_factory=list)
    empty: bool = False
    created_review_stack: bool = False
    stack_arn: str = ""  # CloudFormation's StackId (an ARN); logical IDs are naming's
    name: str = ""       # as created: found by it (with the stack) before CreateChangeSet answers


def stack_state(cfn, stack_name: str) -> dict | None:
    """The live stack, or None when it does not exist (deleted stacks count as absent)."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks and stacks[0]["StackStatus"] != stack_states.DELETE_COMPLETE else None


def deployed(aws) -> dict:
    """The environment's root stack, described; DeployError when it is not deployed."""
    root = stack_state(aws.cloudformation, aws.env.stack_name)
    if root is None:
        raise DeployError(f"{aws.env.stack_name} is not deployed")
    return root


def _wait_created(cfn, change_set_id: str, poll: float, timeout: float) -> dict:
    delay, deadline = poll, time.monotonic() + timeout
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set_id)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED", "DELETE_COMPLETE"):
            return described
        if time.monotonic() > deadline:
            raise DeployError(f"change set {change_set_id} still {described['Status']} after {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 1.5, 10.0)


def _changes(cfn, described: dict, stack_label: str, depth: int = 0) -> list[Change]:
    result = []
    pages = [described]
    while pages[-1].get("NextToken"):
        pages.append(cfn.describe_change_set(ChangeSetName=described["ChangeSetId"], NextToken=pages[-1]["NextToken"]))
    for page in pages:
        for item in page.get("Changes", []):
            rc = item.get("ResourceChange", {})
            result.append(Change(stack_label, rc.get("Action", "?"), rc.get("LogicalResourceId", "?"),
                                 rc.get("ResourceType", "?"), rc.get("Replacement", "") or ""))
            nested = rc.get("ChangeSetId")
            if nested and rc.get("ResourceType") == "AWS::CloudFormation::Stack" and depth < 5:
                child = cfn.describe_change_set(ChangeSetName=nested)
                result.extend(_changes(cfn, child, rc["LogicalResourceId"], depth + 1))
    return result


def create(aws, pkg: Package, *, parameters: list[dict[str, str]] | None = None, current: dict | None = None,
           poll: float = 2.0, timeout: float = 1800, tags: list[dict[str, str]] | None = None) -> ChangeSet:
    """Create and describe a change set for the root stack (CREATE or UPDATE). ``current`` is
    the described root (None: not deployed). ``tags``: the stack's tags, the environment's
    unless given (stack tags propagate to every resource: a change in them changes them all).
    Interrupted or failed while CloudFormation builds it, the change set (and the empty stack a
    CREATE made) is deleted again."""
    env = pkg.rendering.env
    cfn = aws.cloudformation
    kind = stack_states.change_set_type(env.stack_name, current)  # DeployError: none can run now
    name = f"k3s-infra-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
    # Only a stack this run made is its to delete again: a REVIEW_IN_PROGRESS stack found may
    # hold another run's change set (discard checks that none is left either).
    result = ChangeSet(env.stack_name, "", kind, created_review_stack=current is None, stack_arn=env.stack_name,
                       name=name)
    try:
        response = cfn.create_change_set(
            StackName=env.stack_name, ChangeSetName=name, ChangeSetType=kind,
            Capabilities=CAPABILITIES, IncludeNestedStacks=True, Parameters=parameters or [],
            Tags=tags if tags is not None else [{"Key": k, "Value": v} for k, v in naming.cluster_tags(env).items()],
            Description=f"k3s-infra {env.name}", **pkg.template_args(kind))
    except ClientError:
        raise  # CloudFormation answered: it made nothing
    except BaseException:
        # No answer (Ctrl-C, a connection lost) may come after CloudFormation made the change
        # set: without its ID, discard deletes it by name.
        discard(aws, result)
        raise
    try:
        # Followed by the StackId CloudFormation returned, never by name: a stack of the same
        # name created or deleted meanwhile is another stack.
        result.change_set_id = response["Id"]
        result.stack_arn = response.get("StackId") or env.stack_name
        described = _wait_created(cfn, response["Id"], poll, timeout)
        if described["Status"] == "FAILED":
            reason = described.get("StatusReason", "")
            if any(marker in reason for marker in NO_CHANGES):
                result.empty = True
                return result
            raise DeployError(f"change set failed: {reason}")
        result.changes = _changes(cfn, described, naming.ROOT)
    except BaseException:
        discard(aws, result)
        raise
    return result


def discard(aws, change_set: ChangeSet) -> None:
    """Delete a change set that will not run (and the empty stack a CREATE change set made,
    unless another change set waits on it: a plan kept for 'deploy PLANFILE')."""
    cfn = aws.cloudformation
    try:
        if change_set.change_set_id:
            cfn.delete_change_set(ChangeSetName=change_set.change_set_id)
        else:  # a name needs its stack (API_DeleteChangeSet.html)
            cfn.delete_change_set(ChangeSetName=change_set.name, StackName=change_set.stack_name)
    except ClientError:
        pass  # never made, or gone already
    if change_set.created_review_stack:
        state = stack_state(cfn, change_set.stack_arn or change_set.stack_name)
        if state and stack_states.discard_review_stack(state["StackStatus"]) and \
                not _others_waiting(cfn, state["StackId"], change_set):
            cfn.delete_stack(StackName=state["StackId"])


def _others_waiting(cfn, stack_id: str, mine: ChangeSet) -> bool:
    """Another change set of the stack that is not being deleted (ListChangeSets: its Status
    DELETE_PENDING | DELETE_IN_PROGRESS | DELETE_COMPLETE while it goes). Filtered by StackId
    too: moto 5.2.5 answers with the change sets of every stack."""
    pages = cfn.get_paginator("list_change_sets").paginate(StackName=stack_id)
    return any(summary.get("StackId") == stack_id and summary.get("ChangeSetId") != mine.change_set_id
               and summary.get("ChangeSetName") != mine.name and not summary.get("Status", "").startswith("DELETE_")
               for page in pages for summary in page.get("Summaries", []))


class ChangeSetGone(DeployError):
    """DescribeChangeSet: ChangeSetNotFound (executed and cleaned up, deleted, or expired)."""


def describe(aws, change_set_id: str, kind: str) -> tuple[ChangeSet, dict]:
    """A ``kind`` change set made earlier (``plan --out``; DescribeChangeSet does not say its
    type), as ``create`` returns one, with the answer (Status, ExecutionStatus); ChangeSetGone
    when it no longer exists."""
    cfn = aws.cloudformation
    try:
        described = cfn.describe_change_set(ChangeSetName=change_set_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ChangeSetNotFound":
            raise ChangeSetGone(f"change set {change_set_id} no longer exists") from None
        raise
    return ChangeSet(described["StackName"], described["ChangeSetId"], kind, _changes(cfn, described, naming.ROOT),
                     stack_arn=described["StackId"], name=described.get("ChangeSetName", "")), described


def available(aws, change_set: ChangeSet) -> bool:
    """Whether the change set still waits to be executed (ExecutionStatus AVAILABLE), asked
    after Ctrl-C interrupted ExecuteChangeSet; False when that cannot be read either."""
    try:
        described = aws.cloudformation.describe_change_set(ChangeSetName=change_set.change_set_id)
    except (ClientError, ResponseParserError):
        return False
    return described.get("ExecutionStatus") == "AVAILABLE"


def execute(aws, change_set: ChangeSet) -> None:
    try:
        aws.cloudformation.execute_change_set(ChangeSetName=change_set.change_set_id)
    except (ClientError, ResponseParserError) as exc:  # the latter: a non-AWS error page (HTTP 5xx)
        raise DeployError(f"executing the change set failed: {exc}") from None
