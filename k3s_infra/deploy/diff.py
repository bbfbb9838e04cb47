"""A read-only comparison of the rendered templates with the deployed ones, resource by
resource, for CI under a read-only role.

Only Describe/Get calls: DescribeStacks, DescribeStackResources (the root's nested stack
IDs), GetTemplate and STS GetCallerIdentity. Nothing is uploaded, no change set is made
(``plan`` does both). GetTemplate returns the template as submitted ("Original" stage):
a JSON body arrives parsed (botocore/handlers.py ``json_decode_template_body``, registered
on ``after-call.cloudformation.GetTemplate``), a YAML body as text.
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_GetTemplate.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackResources.html
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from k3s_infra.model import naming
from k3s_infra.deploy import changeset
from k3s_infra.deploy.events import STACK_TYPE


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !Sub, !GetAtt a.b) as their long forms,
    for templates someone deployed by other means."""


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref": value} if suffix == "Ref" else {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _short_form)


def parse(body: Any) -> dict:
    if isinstance(body, dict):
        return body
    text = body.strip()
    return json.loads(text) if text.startswith("{") else yaml.load(text, Loader=_CfnLoader)  # noqa: S506


def deployed(cfn, stack_name: str) -> tuple[dict[str, dict], dict[str, dict[str, str]]] | None:
    """(stack -> template, stack -> parameter values) of the root and its nested stacks, or
    None when the root does not exist."""
    root = changeset.stack_state(cfn, stack_name)
    if root is None:
        return None
    stacks = {naming.ROOT: root}
    for resource in cfn.describe_stack_resources(StackName=root["StackId"])["StackResources"]:
        if resource.get("ResourceType") == STACK_TYPE and resource.get("PhysicalResourceId"):
            stacks[resource["LogicalResourceId"]] = cfn.describe_stacks(
                StackName=resource["PhysicalResourceId"])["Stacks"][0]
    templates, values = {}, {}
    for logical, stack in stacks.items():
        templates[logical] = parse(cfn.get_template(StackName=stack["StackId"])["TemplateBody"])
        values[logical] = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
    return templates, values


def _paths(old: Any, new: Any, prefix: str, depth: int = 3) -> list[str]:
    """Dotted paths where two resource definitions differ, down to ``depth`` levels."""
    if old == new:
        return []
    if depth == 0 or not (isinstance(old, dict) and isinstance(new, dict)):
        return [prefix]
    result = []
    for key in sorted(set(old) | set(new), key=str):
        result += _paths(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key), depth - 1)
    return result


def compare_stack(name: str, old: dict | None, new: dict | None, values: dict[str, str] | None,
                  passed: dict[str, Any] | None = None) -> dict:
    """One stack's differences. ``values``: the parameter values the deployed stack runs
    with; ``passed``: the values the rendered parent passes it (the root: None, its
    parameters' defaults are what it gets)."""
    old_res, new_res = (old or {}).get("Resources", {}), (new or {}).get("Resources", {})
    resources = {
        "added": [{"logical_id": k, "type": new_res[k].get("Type")} for k in sorted(set(new_res) - set(old_res))],
        "removed": [{"logical_id": k, "type": old_res[k].get("Type")} for k in sorted(set(old_res) - set(new_res))],
        "changed": [{"logical_id": k, "type": new_res[k].get("Type"), "paths": _paths(old_res[k], new_res[k], "")}
                    for k in sorted(set(old_res) & set(new_res)) if old_res[k] != new_res[k]],
    }
    old_par, new_par = (old or {}).get("Parameters", {}), (new or {}).get("Parameters", {})
    parameters = {"added": sorted(set(new_par) - set(old_par)), "removed": sorted(set(old_par) - set(new_par)),
                  "changed": []}
    for key in sorted(set(old_par) & set(new_par)):
        if old_par[key] != new_par[key]:
            parameters["changed"].append({"name": key, "what": "declaration",
                                          "paths": _paths(old_par[key], new_par[key], "")})
            continue
        rendered = (passed or {}).get(key, new_par[key].get("Default"))
        if values is not None and key in values and rendered is not None and not isinstance(rendered, dict) \
                and str(values[key]) != _as_value(rendered):
            # A value the stack runs with that differs from what the render gives it
            # (values computed by CloudFormation, {"Fn::GetAtt": ...}, are not compared).
            parameters["changed"].append({"name": key, "what": "value", "deployed": values[key],
                                          "rendered": _as_value(rendered)})
    state = "added" if old is None else "removed" if new is None else \
        "changed" if any(resources.values()) or any(parameters.values()) or _rest(old) != _rest(new) else "unchanged"
    return {"stack": name, "state": state, "resources": resources, "parameters": parameters,
            "other_sections": [] if old is None or new is None else
            sorted(k for k in set(_rest(old)) | set(_rest(new)) if _rest(old).get(k) != _rest(new).get(k))}


def _rest(template: dict) -> dict:
    return {k: v for k, v in template.items() if k not in ("Resources", "Parameters")}


def _as_value(default: Any) -> str:
    return ",".join(map(str, default)) if isinstance(default, list) else str(default)


def diff(aws, rendering) -> dict:
    """The "diff" JSON shape of docs/commands.md (without its envelope)."""
    env = aws.env
    # The root of a first create is never what a deployed stack holds (deploy/roll_order.py).
    rendered = {s.stack_id: parse(s.body) for s in rendering.stacks if s is not rendering.create_root}
    found = deployed(aws.cloudformation, env.stack_name)
    templates, values = found if found else ({}, {})
    children = rendered[naming.ROOT].get("Resources", {})
    stacks = [compare_stack(name, templates.get(name), rendered.get(name), values.get(name),
                            children.get(name, {}).get("Properties", {}).get("Parameters") if name != naming.ROOT
                            else None)
              for name in [naming.ROOT, *sorted((set(rendered) | set(templates)) - {naming.ROOT})]]
    return {"stack_name": env.stack_name, "deployed": found is not None,
            "has_changes": any(s["state"] != "unchanged" for s in stacks), "stacks": stacks}
