"""The read-only diff (deploy/diff.py): templates as GetTemplate returns them, and one
stack's differences in the "diff" JSON shape (docs/commands.md "JSON output":
state added | removed | changed | unchanged; resources and parameters added / removed /
changed with their property paths, three levels deep; other template sections by name).
The whole command against moto is tests/e2e/test_cli_pipeline.py's."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.deploy.diff import compare_stack, deployed, parse

ROOT = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev/1111"
CHILD = "arn:aws:cloudformation:eu-west-1:123456789012:stack/k3s-dev-Security-1/2222"
GROUP = {"Type": "AWS::AutoScaling::AutoScalingGroup", "Properties": {"MaxSize": "3", "Tags": [{"Key": "a"}]}}


def test_a_yaml_template_deployed_by_other_means_reads_its_short_forms_as_the_long_ones():
    """https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference.html:
    !GetAtt a.b is Fn::GetAtt [a, b]; !Ref is Ref; the rest Fn::<name>."""
    body = ("Resources:\n  G:\n    Type: AWS::AutoScaling::AutoScalingGroup\n    Properties:\n"
            "      VPCZoneIdentifier: !Ref Subnets\n      LaunchTemplate:\n"
            "        Version: !GetAtt Template.LatestVersionNumber\n"
            "      Vpc: !GetAtt Network.Outputs.VpcId\n"
            "      Name: !Join [\"-\", [!Ref AWS::StackName, g]]\n"
            "      Size: !If {Big: 5}\n")
    props = parse(body)["Resources"]["G"]["Properties"]
    assert props["VPCZoneIdentifier"] == {"Ref": "Subnets"}
    assert props["LaunchTemplate"]["Version"] == {"Fn::GetAtt": ["Template", "LatestVersionNumber"]}
    assert props["Vpc"] == {"Fn::GetAtt": ["Network", "Outputs.VpcId"]}  # split at the first dot only
    assert props["Name"] == {"Fn::Join": ["-", [{"Ref": "AWS::StackName"}, "g"]]}
    assert props["Size"] == {"Fn::If": {"Big": 5}}


def test_a_json_body_is_read_as_json_and_one_botocore_parsed_is_taken_as_it_is():
    parsed = {"Resources": {"G": GROUP}}
    assert parse(parsed) is parsed
    assert parse('  {"Resources": {}}\n') == {"Resources": {}}


def test_only_nested_stacks_with_an_id_are_read_from_the_root():
    client = boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x",
                          aws_secret_access_key="x", endpoint_url="https://cloudformation.invalid")

    def stack(arn, name):
        return {"Stacks": [{"StackId": arn, "StackName": name, "CreationTime": "2026-01-02T03:04:05Z",
                            "StackStatus": "UPDATE_COMPLETE",
                            "Parameters": [{"ParameterKey": "MaxSize", "ParameterValue": "3"}]}]}

    def resource(logical, type_, physical=None):
        item = {"LogicalResourceId": logical, "ResourceType": type_, "Timestamp": "2026-01-02T03:04:05Z",
                "ResourceStatus": "CREATE_COMPLETE", "StackName": "k3s-dev", "StackId": ROOT}
        return {**item, "PhysicalResourceId": physical} if physical else item

    with Stubber(client) as stub:  # a call for anything but the root and Security fails the test
        stub.add_response("describe_stacks", stack(ROOT, "k3s-dev"), {"StackName": "k3s-dev"})
        stub.add_response("describe_stack_resources", {"StackResources": [
            resource("Security", "AWS::CloudFormation::Stack", CHILD),
            resource("Servers", "AWS::CloudFormation::Stack"),  # still being created: no ID yet
            resource("ApiRecord", "AWS::SSM::Parameter", "k3s-dev-api")]}, {"StackName": ROOT})
        stub.add_response("describe_stacks", stack(CHILD, "k3s-dev-Security-1"), {"StackName": CHILD})
        stub.add_response("get_template", {"TemplateBody": '{"Resources": {}}'}, {"StackName": ROOT})
        stub.add_response("get_template", {"TemplateBody": "Resources: {}\n"}, {"StackName": CHILD})
        templates, values = deployed(client, "k3s-dev")
        stub.assert_no_pending_responses()
    assert sorted(templates) == ["Root", "Security"] and values["Security"] == {"MaxSize": "3"}


def test_paths_go_three_levels_deep_and_stop_where_a_value_changes_its_kind():
    old = {"Resources": {"G": {**GROUP, "Properties": {"A": {"B": {"C": {"D": 1}}}, "Tags": [{"Key": "a"}],
                                                       "LaunchTemplate": {"Version": "1"}}}}}
    new = {"Resources": {"G": {**GROUP, "Properties": {"A": {"B": {"C": {"D": 2}}}, "Tags": "none",
                                                       "LaunchTemplate": "lt-0123"}}}}
    (changed,) = compare_stack("Servers", old, new, None)["resources"]["changed"]
    assert changed == {"logical_id": "G", "type": GROUP["Type"],
                       "paths": ["Properties.A.B", "Properties.LaunchTemplate", "Properties.Tags"]}


def test_a_parameter_declared_otherwise_is_a_changed_declaration_with_its_paths():
    old = {"Parameters": {"MaxSize": {"Type": "String", "Default": "3"}}}
    new = {"Parameters": {"MaxSize": {"Type": "Number", "Default": "3"}}}
    result = compare_stack("AgentPoolGeneral", old, new, {"MaxSize": "3"}, {"MaxSize": "3"})
    assert result["parameters"]["changed"] == [{"name": "MaxSize", "what": "declaration", "paths": ["Type"]}]
    assert result["state"] == "changed"


def test_other_sections_are_named_when_they_differ_and_only_then():
    template = {"Resources": {"G": GROUP}, "Parameters": {}, "Outputs": {"Group": {"Value": "g"}}}
    same = compare_stack("Servers", template, {**template, "Resources": {}}, None)
    assert same["other_sections"] == [] and same["resources"]["removed"] == [{"logical_id": "G", "type": GROUP["Type"]}]
    outputs = compare_stack("Servers", template, {**template, "Outputs": {"Group": {"Value": "h"}}}, None)
    assert outputs["other_sections"] == ["Outputs"] and outputs["state"] == "changed"
    assert compare_stack("Servers", template, template, None)["state"] == "unchanged"
    declared = compare_stack("Servers", template, {**template, "Parameters": {"MaxSize": {"Type": "String"}}}, None)
    assert declared["other_sections"] == [] and declared["parameters"]["added"] == ["MaxSize"]


@pytest.mark.parametrize("old, new, state", [(None, {"Resources": {"G": GROUP}}, "added"),
                                             ({"Resources": {"G": GROUP}}, None, "removed")])
def test_a_stack_only_one_side_has_lists_no_other_sections(old, new, state):
    result = compare_stack("Servers", old, new, None)
    assert result["state"] == state and result["other_sections"] == []
