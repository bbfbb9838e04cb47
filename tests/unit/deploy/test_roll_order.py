"""After a first create (deploy/roll_order.py): the stack is updated to the ordered root that
``render`` writes and every update sends, whose only difference from the create root is
``DependsOn`` (stacks/root.py roll_order). CloudFormation orders an update by the template it
is given (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html:
"override default parallelism when creating, updating, or deleting resources"), so the
ordered root must be the one sent. The emulator run that executes it: tests/e2e/test_lifecycle.py."""

from __future__ import annotations

import json
from types import SimpleNamespace

import boto3
import pytest
import yaml
from botocore.stub import ANY, Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy import DeployError, roll_order
from k3s_infra.deploy.package import Package
from k3s_infra.deploy.progress import RollOrderMissing, RollOrderRecorded, StackEvent
from k3s_infra.render import render

STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
CHANGE_SET = "arn:aws:cloudformation:eu-west-1:123456789012:changeSet/k3s-infra-1/0a1b2c3d"


def _described(status: str) -> dict:
    """DescribeStacks as CloudFormation answers it (the fields the deploy reads)."""
    return {"Stacks": [{"StackId": STACK_ID, "StackName": "k3s-dev", "StackStatus": status,
                        "CreationTime": "2026-12-04T05:00:00Z"}]}


def test_the_ordered_root_is_sent_and_nothing_to_change_is_no_error():
    env = load_environment("dev")
    rendering = render(env)
    pkg = Package(rendering, [], [], roots={"CREATE": {"TemplateBody": rendering.create_root.body},
                                           "UPDATE": {"TemplateBody": rendering.root.body}})
    cfn = boto3.client("cloudformation", region_name=env.region, aws_access_key_id="x", aws_secret_access_key="x")
    sent = {}
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", _described("CREATE_COMPLETE"), {"StackName": STACK_ID})
        stub.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": STACK_ID}, {
            "StackName": env.stack_name, "ChangeSetName": ANY, "ChangeSetType": "UPDATE", "Capabilities": ANY,
            "IncludeNestedStacks": True, "Parameters": [], "Tags": ANY, "Description": ANY, "TemplateBody": ANY})
        stub.add_response("describe_change_set", {
            "ChangeSetId": CHANGE_SET, "Status": "FAILED", "ExecutionStatus": "UNAVAILABLE",
            "StatusReason": "The submitted information didn't contain changes. Submit different information to "
                            "create a change set."}, {"ChangeSetName": CHANGE_SET})
        stub.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
        original = cfn.create_change_set
        cfn.create_change_set = lambda **kwargs: sent.update(kwargs) or original(**kwargs)
        seen = []
        status = roll_order.record(SimpleNamespace(cloudformation=cfn, env=env), pkg, [], STACK_ID, seen.append,
                                   poll=0)
        stub.assert_no_pending_responses()
    assert status is None and seen == [RollOrderRecorded(changed=False)]
    root = yaml.safe_load(sent["TemplateBody"])
    assert root["Resources"]["Servers"]["DependsOn"] == ["ServerInit"]
    pools = [k for k in root["Resources"] if k.startswith("AgentPool")]
    assert pools and all(root["Resources"][k]["DependsOn"] == ["Servers"] for k in pools)
    assert json.dumps(yaml.safe_load(rendering.create_root.body)) != json.dumps(root)


def test_a_failed_recording_is_a_warning_not_a_failed_deploy():
    """The cluster is up when the recording runs: its failure is reported, never fatal."""
    env = load_environment("dev")
    rendering = render(env)
    pkg = Package(rendering, [], [], roots={"CREATE": {"TemplateBody": rendering.create_root.body},
                                           "UPDATE": {"TemplateBody": rendering.root.body}})
    cfn = boto3.client("cloudformation", region_name=env.region, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", _described("CREATE_COMPLETE"), {"StackName": STACK_ID})
        stub.add_client_error("create_change_set", "Throttling", "Rate exceeded", 400)
        seen = []
        status = roll_order.record(SimpleNamespace(cloudformation=cfn, env=env), pkg, [], STACK_ID, seen.append,
                                   poll=0)
        stub.assert_no_pending_responses()
    assert status is None
    (message,) = seen
    assert message.changed is False and "Rate exceeded" in message.problem


def test_a_change_set_that_would_change_a_resource_is_not_executed():
    """The recording changes no resource: a change set that would (a parameter resolved anew,
    anything but the nested stacks CloudFormation always lists) is discarded with a warning."""
    env = load_environment("dev")
    rendering = render(env)
    pkg = Package(rendering, [], [], roots={"CREATE": {"TemplateBody": rendering.create_root.body},
                                           "UPDATE": {"TemplateBody": rendering.root.body}})
    cfn = boto3.client("cloudformation", region_name=env.region, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", _described("CREATE_COMPLETE"), {"StackName": STACK_ID})
        stub.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": STACK_ID}, {
            "StackName": env.stack_name, "ChangeSetName": ANY, "ChangeSetType": "UPDATE", "Capabilities": ANY,
            "IncludeNestedStacks": True, "Parameters": [], "Tags": ANY, "Description": ANY, "TemplateBody": ANY})
        stub.add_response("describe_change_set", {
            "ChangeSetId": CHANGE_SET, "Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE", "Changes": [
                {"Type": "Resource", "ResourceChange": {"Action": "Modify", "LogicalResourceId": "Servers",
                                                        "ResourceType": "AWS::CloudFormation::Stack"}},
                {"Type": "Resource", "ResourceChange": {"Action": "Remove", "LogicalResourceId": "Draining",
                                                        "ResourceType": "AWS::CloudFormation::Stack"}}]},
            {"ChangeSetName": CHANGE_SET})
        stub.add_response("delete_change_set", {}, {"ChangeSetName": CHANGE_SET})
        seen = []
        status = roll_order.record(SimpleNamespace(cloudformation=cfn, env=env), pkg, [], STACK_ID, seen.append,
                                   poll=0)
        stub.assert_no_pending_responses()  # never executed
    assert status is None
    (message,) = seen
    assert message.changed is False and "Remove Draining would change" in message.problem


def _event(n: int, status: str, logical: str = "k3s-dev") -> dict:
    """A root stack event as DescribeStackEvents returns it."""
    return {"StackId": STACK_ID, "EventId": f"e{n}", "StackName": "k3s-dev", "LogicalResourceId": logical,
            "ResourceType": "AWS::CloudFormation::Stack", "ResourceStatus": status,
            "Timestamp": f"2026-12-04T05:{n:02d}:00Z"}


def _ordered_update(stub, env, *, described: dict | None = None, tags=ANY, parameters=(),
                   history: list[dict] | None = None) -> None:
    """The stack (``described``), then a change set that modifies only the nested stacks (as
    CloudFormation lists them even when only DependsOn changed), sent with ``tags`` and
    ``parameters``, then the watch's priming reads (``history``: the events before it)."""
    stub.add_response("describe_stacks", described or _described("CREATE_COMPLETE"), {"StackName": STACK_ID})
    stub.add_response("create_change_set", {"Id": CHANGE_SET, "StackId": STACK_ID}, {
        "StackName": env.stack_name, "ChangeSetName": ANY, "ChangeSetType": "UPDATE", "Capabilities": ANY,
        "IncludeNestedStacks": True, "Parameters": parameters if parameters is ANY else list(parameters),
        "Tags": tags, "Description": ANY, "TemplateBody": ANY})
    stub.add_response("describe_change_set", {
        "ChangeSetId": CHANGE_SET, "Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE", "Changes": [
            {"Type": "Resource", "ResourceChange": {"Action": "Modify", "LogicalResourceId": "Servers",
                                                    "ResourceType": "AWS::CloudFormation::Stack"}}]},
        {"ChangeSetName": CHANGE_SET})
    # the create's events: reported while the create ran, history now
    stub.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": STACK_ID})
    stub.add_response("describe_stack_events", {"StackEvents": history if history is not None else [
        _event(2, "CREATE_COMPLETE"), _event(1, "CREATE_IN_PROGRESS")]}, {"StackName": STACK_ID})


def _executed(stub, *, during: list[dict], after: list[dict], final: dict) -> None:
    """ExecuteChangeSet, the watch's read while it runs (``during``), the stack as it ended
    (``final``) and the events read at the end (``after``)."""
    stub.add_response("execute_change_set", {}, {"ChangeSetName": CHANGE_SET})
    stub.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": STACK_ID})
    stub.add_response("describe_stack_events", {"StackEvents": during}, {"StackName": STACK_ID})
    stub.add_response("describe_stacks", final, {"StackName": STACK_ID})
    stub.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": STACK_ID})
    stub.add_response("describe_stack_events", {"StackEvents": after}, {"StackName": STACK_ID})


def test_an_executed_recording_reports_its_own_events_and_its_final_status():
    """The update's events are reported, not the create's again (the create's watch reported
    them); the recording returns the status the update ended in."""
    env = load_environment("dev")
    rendering = render(env)
    pkg = Package(rendering, [], [], roots={"CREATE": {"TemplateBody": rendering.create_root.body},
                                           "UPDATE": {"TemplateBody": rendering.root.body}})
    cfn = boto3.client("cloudformation", region_name=env.region, aws_access_key_id="x", aws_secret_access_key="x")
    update = [_event(4, "UPDATE_COMPLETE"), _event(3, "UPDATE_IN_PROGRESS")]
    with Stubber(cfn) as stub:
        _ordered_update(stub, env)
        _executed(stub, during=[*update, _event(2, "CREATE_COMPLETE"), _event(1, "CREATE_IN_PROGRESS")],
                  after=update, final=_described("UPDATE_COMPLETE"))
        seen = []
        status = roll_order.record(SimpleNamespace(cloudformation=cfn, env=env), pkg, [], STACK_ID, seen.append,
                                   poll=0)
        stub.assert_no_pending_responses()
    assert status == "UPDATE_COMPLETE"
    assert [m.event["EventId"] for m in seen if isinstance(m, StackEvent)] == ["e3", "e4"]
    assert seen[-1] == RollOrderRecorded(changed=True)


def test_a_change_set_that_cannot_be_executed_is_a_warning():
    """ExecuteChangeSet can refuse (InvalidChangeSetStatus: the stack moved on meanwhile,
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_ExecuteChangeSet.html):
    the cluster is up, so it is reported, never fatal."""
    env = load_environment("dev")
    rendering = render(env)
    pkg = Package(rendering, [], [], roots={"CREATE": {"TemplateBody": rendering.create_root.body},
                                           "UPDATE": {"TemplateBody": rendering.root.body}})
    cfn = boto3.client("cloudformation", region_name=env.region, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(cfn) as stub:
        _ordered_update(stub, env)
        stub.add_client_error("execute_change_set", "InvalidChangeSetStatus",
                              "ChangeSet [k3s-infra-1] cannot be executed in its current status of [OBSOLETE]", 400)
        seen = []
        status = roll_order.record(SimpleNamespace(cloudformation=cfn, env=env), pkg, [], STACK_ID, seen.append,
                                   poll=0)
        stub.assert_no_pending_responses()
    assert status is None
    assert seen[-1].changed is False and "OBSOLETE" in seen[-1].problem


# --- an order never recorded: found and recorded before an update (roll_order.ensure) ----------
# Expected order from docs/operations.md ("Rolling updates") and stacks/root.py's docstring, not
# from the code under test: joining servers after the first server, every agent pool after the
# joining servers, the first server after the issuer policy it publishes with.

def _dev_roots():
    env = load_environment("dev")
    rendering = render(env)
    return env, rendering, yaml.safe_load(rendering.create_root.body), yaml.safe_load(rendering.root.body)


def test_a_root_deployed_without_the_order_lacks_exactly_the_roll_order():
    env, rendering, create_root, _ = _dev_roots()
    pools = [f"AgentPool{p.name.title()}" for p in env.agent_pools]
    expected = {"ServerInit": ["IssuerAccess"], "Servers": ["ServerInit"], **{p: ["Servers"] for p in pools}}
    assert roll_order.lacking(create_root, rendering) == expected


def test_an_ordered_root_lacks_nothing_and_an_older_root_only_what_it_can_hold():
    _, rendering, create_root, ordered_root = _dev_roots()
    assert roll_order.lacking(ordered_root, rendering) == {}
    older = json.loads(json.dumps(create_root))
    del older["Resources"]["IssuerAccess"]  # a release before the issuer policy had its own stack
    missing = roll_order.lacking(older, rendering)
    assert "ServerInit" not in missing and missing["Servers"] == ["ServerInit"]


def test_the_order_is_added_and_nothing_else_changes():
    _, rendering, create_root, _ = _dev_roots()
    create_root["Resources"]["Servers"]["DependsOn"] = "Security"  # a string DependsOn is kept too
    fixed = roll_order.ordered(create_root, roll_order.lacking(create_root, rendering))
    assert fixed["Resources"]["Servers"]["DependsOn"] == ["Security", "ServerInit"]
    for logical_id, resource in create_root["Resources"].items():
        assert {k: v for k, v in fixed["Resources"][logical_id].items() if k != "DependsOn"} == \
            {k: v for k, v in resource.items() if k != "DependsOn"}
    assert {k: v for k, v in fixed.items() if k != "Resources"} == \
        {k: v for k, v in create_root.items() if k != "Resources"}


ROOT_PARAMETERS = [{"ParameterKey": "ImageIdX8664", "ParameterValue": "ami-0123456789abcdef0"},
                   {"ParameterKey": "K3sBinarySha256X8664", "ParameterValue": "a" * 64}]


# The tags the stack holds; the file's deploy.tags may have changed since (stack tags propagate to
# every resource: "Stack-level tags", CloudFormation User Guide), so the recording keeps these.
ROOT_TAGS = [{"Key": "k3s-infra:cluster", "Value": "k3s-dev"}, {"Key": "environment", "Value": "before-the-edit"}]


def _described_with_parameters(status: str) -> dict:
    described = _described(status)
    described["Stacks"][0]["Parameters"] = ROOT_PARAMETERS
    described["Stacks"][0]["Tags"] = ROOT_TAGS
    return described


def _ensure(stub_setup, *, allow_quorum_loss=False, template=None):
    env, rendering, create_root, _ = _dev_roots()
    pkg = Package(rendering, [], [], roots={"UPDATE": {"TemplateBody": rendering.root.body}})
    cfn = boto3.client("cloudformation", region_name=env.region, aws_access_key_id="x", aws_secret_access_key="x")
    sent, seen = {}, []
    with Stubber(cfn) as stub:
        # GetTemplate: TemplateBody is a string for a YAML template (API reference, GetTemplate)
        stub.add_response("get_template", {"TemplateBody": template if template is not None else
                                           rendering.create_root.body},
                          {"StackName": STACK_ID, "TemplateStage": "Original"})
        stub_setup(stub, env)
        original = cfn.create_change_set
        cfn.create_change_set = lambda **kwargs: sent.update(kwargs) or original(**kwargs)
        try:
            roll_order.ensure(SimpleNamespace(cloudformation=cfn, env=env), pkg,
                              _described_with_parameters("UPDATE_COMPLETE")["Stacks"][0], seen.append, 0,
                              allow_quorum_loss=allow_quorum_loss)
        finally:
            stub.assert_no_pending_responses()
    return sent, seen, create_root


def test_a_missing_order_is_recorded_first_keeping_every_parameter():
    def update(stub, env):
        _ordered_update(stub, env, described=_described("UPDATE_COMPLETE"), tags=ROOT_TAGS,
                        parameters=[{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
                                    for p in ROOT_PARAMETERS],
                        history=[_event(2, "CREATE_COMPLETE")])
        _executed(stub, during=[_event(3, "UPDATE_COMPLETE")], after=[_event(3, "UPDATE_COMPLETE")],
                  final=_described("UPDATE_COMPLETE"))

    sent, seen, create_root = _ensure(update)
    body = json.loads(sent["TemplateBody"])
    assert body["Resources"]["Servers"]["DependsOn"] == ["ServerInit"]
    assert body["Resources"]["AgentPoolGeneral"]["DependsOn"] == ["Servers"]
    # the deployed template's nested stacks, URLs and parameters, untouched
    assert {k: v["Properties"] for k, v in body["Resources"].items()} == \
        {k: v["Properties"] for k, v in create_root["Resources"].items()}
    assert isinstance(seen[0], RollOrderMissing) and "Servers after ServerInit" in seen[0].lacking
    assert seen[-1] == RollOrderRecorded(changed=True)


def test_an_ordered_stack_is_only_read():
    env, rendering, _, _ = _dev_roots()
    sent, seen, _ = _ensure(lambda stub, env: None, template=rendering.root.body)
    assert sent == {} and seen == []


def test_an_order_that_cannot_be_recorded_stops_the_update_unless_quorum_loss_is_allowed():
    def refused(stub, env):
        stub.add_response("describe_stacks", _described("UPDATE_COMPLETE"), {"StackName": STACK_ID})
        stub.add_client_error("create_change_set", "Throttling", "Rate exceeded", 400)

    with pytest.raises(DeployError, match="lacks the roll order.*Rate exceeded.*--allow-quorum-loss"):
        _ensure(refused)
    _, seen, _ = _ensure(refused, allow_quorum_loss=True)
    assert seen[-1].changed is False and "Rate exceeded" in seen[-1].problem


def test_a_template_in_short_form_yaml_is_not_ours_to_judge():
    """Short-form tags (!Ref) are not what render writes: nothing is read into them."""
    sent, seen, _ = _ensure(lambda stub, env: None, template="Resources:\n  X:\n    Type: !Ref Y\n")
    assert sent == {} and seen == []


def test_a_json_template_comes_back_as_a_dict_and_is_judged_the_same():
    """botocore decodes a JSON TemplateBody into a dict (its handler json_decode_template_body)."""
    env, rendering, create_root, ordered_root = _dev_roots()
    sent, seen, _ = _ensure(lambda stub, env: None, template=json.dumps(ordered_root))
    assert sent == {} and seen == []
    with pytest.raises(DeployError):  # lacking the order, and nothing stubbed to record it
        _ensure(lambda stub, env: stub.add_client_error("describe_stacks", "ValidationError", "gone", 400),
                template=json.dumps(create_root))
