#!/usr/bin/env python3
"""The same nested stacks and resources as an AWS CDK app, for the synth comparison in run.py.

    python bench/cdk_app.py RENDERED_JSON_DIR CDK_OUT_DIR

Run with an interpreter that has aws-cdk-lib (and node on PATH). It declares every
resource, parameter and output of a JSON rendering (`build.py --format json`) with CDK's
L1 constructs: one NestedStack per child under one root Stack, resources as CfnResource
with the same logical IDs, properties and attributes, nested stacks wired with the same
Parameters and DependsOn. CDK then does its usual synth (construct tree, token
resolution, nested-stack assets) and writes cdk.out. An app written with L2 constructs
would do more work than this, so its time is a lower bound for CDK.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import aws_cdk as cdk

STACK_TYPE = "AWS::CloudFormation::Stack"
ATTRIBUTES = ("DependsOn", "DeletionPolicy", "UpdateReplacePolicy", "UpdatePolicy", "CreationPolicy", "Metadata",
              "Condition")


def _value(value):
    """Plain strings stay strings; intrinsic functions (dicts) become tokens that resolve to themselves."""
    return value if isinstance(value, str) else cdk.Token.as_string(value)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def declare(stack: cdk.Stack, template: dict) -> None:
    unsupported = set(template) - {"AWSTemplateFormatVersion", "Description", "Parameters", "Resources", "Outputs"}
    if unsupported:
        raise SystemExit(f"cdk_app: sections not handled: {sorted(unsupported)}")
    if "Description" in template:
        stack.template_options.description = template["Description"]
    for name, spec in template.get("Parameters", {}).items():
        cdk.CfnParameter(stack, name, **{_snake(k): v for k, v in spec.items()})
    for logical_id, spec in template.get("Resources", {}).items():
        if spec["Type"] == STACK_TYPE:
            continue  # nested stacks are NestedStack constructs, declared by the caller
        resource = cdk.CfnResource(stack, logical_id, type=spec["Type"], properties=spec.get("Properties"))
        for attribute in ATTRIBUTES:
            if attribute in spec:
                resource.add_override(attribute, spec[attribute])
    for name, spec in template.get("Outputs", {}).items():
        cdk.CfnOutput(stack, name, value=_value(spec["Value"]), description=spec.get("Description"),
                      export_name=spec.get("Export", {}).get("Name"))


def main(rendered: Path, out: Path) -> None:
    root_template = json.loads((rendered / "root.json").read_text())
    app = cdk.App(outdir=str(out), analytics_reporting=False)
    root = cdk.Stack(app, "Root")
    declare(root, root_template)
    nested: dict[str, cdk.NestedStack] = {}
    stacks = {k: v for k, v in root_template["Resources"].items() if v["Type"] == STACK_TYPE}
    for stack_id, spec in stacks.items():
        properties = dict(spec["Properties"])
        child_file = properties.pop("TemplateURL").rsplit("/", 1)[1]
        parameters = {k: _value(v) for k, v in properties.pop("Parameters", {}).items()}
        child = cdk.NestedStack(root, stack_id, parameters=parameters)
        child.nested_stack_resource.override_logical_id(stack_id)  # GetAtt Child.Outputs.X keeps working
        for key, value in properties.items():  # Tags, TimeoutInMinutes
            child.nested_stack_resource.add_property_override(key, value)
        declare(child, json.loads((rendered / child_file).read_text()))
        nested[stack_id] = child
    for stack_id, spec in stacks.items():
        depends = spec.get("DependsOn", [])
        for other in [depends] if isinstance(depends, str) else depends:
            nested[stack_id].node.add_dependency(nested[other])
    app.synth()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
