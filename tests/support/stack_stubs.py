"""A CLI run against botocore Stubbers: the real command modules, exit codes and library,
with every AWS answer queued by the test and checked against the request it expects
(strict: an unexpected call or parameter is recorded and fails the test, even where the
command turns the Stubber's error into an exit code). Responses are shaped as the
CloudFormation API Reference shows them (DescribeStacks: API_Stack.html, DescribeChangeSet:
API_DescribeChangeSet.html, DescribeStackEvents: API_StackEvent.html)."""

from __future__ import annotations

import contextlib
import io
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import boto3
from botocore.exceptions import StubResponseError
from botocore.stub import Stubber

from k3s_infra.cli import _run, arguments
from k3s_infra.config import load_environment
from k3s_infra.deploy.aws import Aws

ACCOUNT = "123456789012"  # environments/dev.yaml
NAME = "k3s-dev"
ROOT = f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:stack/{NAME}/5b3c9a40-0b1d-11f0-9c2e-0a1b2c3d4e5f"
CHANGE_SET = f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:changeSet/k3s-infra-20260102030405/7d1e"
NESTED_CHANGE_SET = f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:changeSet/k3s-dev-Servers-1/8e2f"
SERVERS = f"arn:aws:cloudformation:eu-west-1:{ACCOUNT}:stack/k3s-dev-Servers-1AB2/6c4d"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
DOES_NOT_EXIST = "Stack with id {} does not exist"  # DescribeStacks of a deleted or unknown name
_REASONS = {  # StackStatusReason as CloudFormation words it for these
    "ROLLBACK": "The following resource(s) failed to create: [ServerInit]. Rollback requested by user.",
    "UPDATE_ROLLBACK": "The following resource(s) failed to update: [Servers].",
    "DELETE_FAILED": "The following resource(s) failed to delete: [SnapshotBucket].",
}


class StrictStubber(Stubber):
    """A Stubber that also records its assertion errors: a command that catches botocore's
    errors (cli/aws.py maps BotoCoreError to exit 1) cannot hide an unexpected call."""

    def __init__(self, client, errors: list):
        super().__init__(client)
        self.errors = errors

    def _assert_expected_params(self, *args, **kwargs):
        try:
            return super()._assert_expected_params(*args, **kwargs)
        except StubResponseError as exc:
            self.errors.append(exc)
            raise

    def _get_response_handler(self, *args, **kwargs):
        try:
            return super()._get_response_handler(*args, **kwargs)
        except StubResponseError as exc:
            self.errors.append(exc)
            raise


def stack(status: str, *, outputs: bool = False) -> dict:
    """One DescribeStacks ``Stacks`` item of the root in ``status``."""
    item = {"StackId": ROOT, "StackName": NAME, "ChangeSetId": CHANGE_SET, "Description": "k3s-infra dev",
            "CreationTime": T0, "StackStatus": status, "RollbackConfiguration": {},
            # CREATE_FAILED / UPDATE_FAILED stay only with rollback disabled
            "DisableRollback": status in ("CREATE_FAILED", "UPDATE_FAILED"), "NotificationARNs": [],
            "Capabilities": CAPABILITIES, "Tags": [{"Key": "k3s-infra:cluster", "Value": NAME}],
            "EnableTerminationProtection": False, "DriftInformation": {"StackDriftStatus": "NOT_CHECKED"}}
    if status == "REVIEW_IN_PROGRESS":  # a stack a CREATE change set reserved: no template yet
        item.update(StackStatusReason="User Initiated", Capabilities=[])
        del item["ChangeSetId"]
    if status.startswith(("UPDATE", "IMPORT")):
        item["LastUpdatedTime"] = T0 + timedelta(minutes=5)
    if status.startswith("DELETE"):
        item["DeletionTime"] = T0 + timedelta(minutes=9)
    for prefix, reason in _REASONS.items():
        if status.startswith(prefix):
            item["StackStatusReason"] = reason
    if outputs:
        item["Outputs"] = [{"OutputKey": "ApiEndpoint", "OutputValue": "https://k3s-dev.example:6443",
                            "Description": "K3s API"}]
    return item


def event(n: int, status: str, reason: str | None = None) -> dict:
    """A stack-level DescribeStackEvents item (newest first in a page)."""
    item = {"StackId": ROOT, "EventId": f"{n:04d}-e", "StackName": NAME, "LogicalResourceId": NAME,
            "PhysicalResourceId": ROOT, "ResourceType": "AWS::CloudFormation::Stack",
            "Timestamp": T0 + timedelta(seconds=n), "ResourceStatus": status}
    if reason:
        item["ResourceStatusReason"] = reason
    return item


def change_set(kind: str, *, failed: str | None = None) -> dict:
    """DescribeChangeSet of the root's change set: one nested stack's change, or FAILED."""
    described = {"ChangeSetName": "k3s-infra-20260102030405", "ChangeSetId": CHANGE_SET, "StackId": ROOT,
                 "StackName": NAME, "Description": "k3s-infra dev", "Parameters": [], "CreationTime": T0,
                 "ExecutionStatus": "AVAILABLE", "Status": "CREATE_COMPLETE", "NotificationARNs": [],
                 "RollbackConfiguration": {}, "Capabilities": CAPABILITIES, "Changes": [],
                 "IncludeNestedStacks": True}
    if failed:
        return {**described, "ExecutionStatus": "UNAVAILABLE", "Status": "FAILED", "StatusReason": failed}
    change = {"Action": "Add" if kind == "CREATE" else "Modify", "LogicalResourceId": "Servers",
              "ResourceType": "AWS::CloudFormation::Stack", "ChangeSetId": NESTED_CHANGE_SET,
              "Scope": [] if kind == "CREATE" else ["Properties"], "Details": []}
    if kind == "UPDATE":
        change.update(PhysicalResourceId=SERVERS, Replacement="False")
    return {**described, "Changes": [{"Type": "Resource", "ResourceChange": change}]}


def nested_change_set() -> dict:
    return {"ChangeSetName": "k3s-dev-Servers-1", "ChangeSetId": NESTED_CHANGE_SET, "StackId": SERVERS,
            "StackName": "k3s-dev-Servers-1AB2", "ExecutionStatus": "AVAILABLE", "Status": "CREATE_COMPLETE",
            "Changes": [], "IncludeNestedStacks": True, "ParentChangeSetId": CHANGE_SET,
            "RootChangeSetId": CHANGE_SET, "CreationTime": T0}


_CLIENTS: dict[str, object] = {}  # made once per process: a client costs ~15 ms, a Stubber nothing


def _client(service: str, region: str):
    if (service, region) not in _CLIENTS:
        _CLIENTS[service, region] = boto3.client(service, region_name=region, aws_access_key_id="x",
                                                 aws_secret_access_key="x", endpoint_url=f"https://{service}.invalid")
    return _CLIENTS[service, region]


class Rig:
    """Clients of one environment with strict Stubbers; ``effects`` lists what changed AWS
    (every call that is not a Describe/List/Get/Head) and what the test's fakes did.
    ``close`` takes the Stubbers off the (shared) clients again."""

    SERVICES = ("cloudformation", "sts", "s3", "ssm", "autoscaling", "elbv2", "ec2", "secretsmanager", "kms", "elb")

    def __init__(self, env=None):
        self.env = env or load_environment("dev")
        self.errors: list = []
        self.effects: list[str] = []
        self.stubs: dict[str, StrictStubber] = {}
        self.aws = Aws(self.env, session=SimpleNamespace())  # every client below; the session is never asked
        clients = {}
        for service in self.SERVICES:
            client = clients[service] = _client(service, self.env.region)
            client.meta.events.register("before-parameter-build.*.*", self._record)
            self.stubs[service] = StrictStubber(client, self.errors)
            self.stubs[service].activate()
            if service != "elb":
                self.aws.__dict__[service] = client  # what Aws's cached property would hold
        self.aws.client = clients.__getitem__
        self.cfn = self.stubs["cloudformation"]
        self.stubs["sts"].add_response("get_caller_identity", {
            "UserId": "AIDAEXAMPLE", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/ci"}, {})

    def close(self) -> None:
        for stub in self.stubs.values():
            stub.deactivate()
            stub.client.meta.events.unregister("before-parameter-build.*.*", self._record)

    def _record(self, model, params, **_):
        if not model.name.startswith(("Describe", "List", "Get", "Head")):
            kind = params.get("ChangeSetType")
            self.effects.append(f"{model.name} {kind}" if kind else model.name)

    def root(self, status: str | None) -> None:
        """DescribeStacks by the environment's stack name (None: there is no such stack). By
        name, a deleted stack is not found: DELETE_COMPLETE answers as None does."""
        if status is None or status == "DELETE_COMPLETE":
            self.cfn.add_client_error("describe_stacks", "ValidationError", DOES_NOT_EXIST.format(NAME), 400,
                                      expected_params={"StackName": NAME})
        else:
            self.cfn.add_response("describe_stacks", {"Stacks": [stack(status)]}, {"StackName": NAME})

    def by_id(self, status: str, *, outputs: bool = False) -> None:
        """DescribeStacks by StackId: a deleted stack is still described (DELETE_COMPLETE)."""
        self.cfn.add_response("describe_stacks", {"Stacks": [stack(status, outputs=outputs)]}, {"StackName": ROOT})

    def resources(self) -> None:
        self.cfn.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": ROOT})

    def events(self, *items: dict) -> None:
        self.cfn.add_response("describe_stack_events", {"StackEvents": list(items)}, {"StackName": ROOT})

    def run(self, *argv: str) -> tuple[int, str, str]:
        """The command as ``k3s-infra`` runs it (parser, command module, exit code)."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = _run(arguments.parser().parse_args(list(argv)))
        return code, out.getvalue(), err.getvalue()

    def check(self) -> None:
        """No unexpected call or parameter, and nothing queued left unasked."""
        assert not self.errors, self.errors[0]
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()
