"""The 16 KB user data guard (k3s_infra/bootstrap/__init__.py, limits.MAX_USER_DATA_BYTES)
counts what EC2 will count: Fn::Sub applied with the longest value each deploy-time
parameter can take.

EC2 limits user data to 16 KB in raw form, before base64
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html). The
longest values are derived here from the resource behind each parameter and AWS's limits:
DNS names at most 253 characters (RFC 1035); stack names 128 (CloudFormation quotas); S3 bucket
names 63 (bucket naming rules); SQS queue names 80 (SQS quotas); target group names 32 with
a 16-hex-digit ID (elasticloadbalancing ARN format); secret ARNs end in the name, "-" and six
random characters (Secrets Manager, "Secret ARN"); the partition and DNS suffix are the
region's (boto3's partition lookup, botocore's data loader here).
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import dataclasses

import boto3
import botocore.loaders
import pytest
from troposphere import Ref

from k3s_infra import bootstrap
from k3s_infra.config import available_environments, load_environment, validate
from k3s_infra.model import limits, roles
from k3s_infra.render import build_templates

from tests.support.oracle_helpers import ALL_ADDONS, launch_template_data, node_stack_ids, resolve


def _longest_value(r, stack_id: str, parameter: str) -> str:
    env, templates = r.env, r.templates
    partition = boto3.session.Session().get_partition_for_region(env.region)
    (suffix,) = [p["outputs"]["dnsSuffix"] for p in botocore.loaders.create_loader().load_data("partitions")["partitions"]
                 if p["id"] == partition]
    arn = f"arn:{partition}:{{service}}:{env.region}:{env.account_id}:{{resource}}"
    wired = templates["Root"]["Resources"][stack_id]["Properties"]["Parameters"][parameter]
    if isinstance(wired, str):
        return wired
    if "Ref" in wired:  # a root parameter the deployer sets: CloudFormation holds it to its AllowedPattern
        assert templates["Root"]["Parameters"][wired["Ref"]]["AllowedPattern"] == "^[0-9a-f]{64}$", parameter
        return "0" * 64  # a SHA-256 digest (the K3s files: deploy/artifacts.py)
    (stack, output) = wired["Fn::GetAtt"]
    value = templates[stack]["Outputs"][output.removeprefix("Outputs.")]["Value"]
    if "Fn::Sub" in value:  # the issuer URL: https://${Host}, the distribution's (or bucket's) DNS name
        text, variables = value["Fn::Sub"]
        ((name, host),) = variables.items()
        assert (templates[stack]["Resources"][host["Fn::GetAtt"][0]]["Type"], host["Fn::GetAtt"][1]) in (
            ("AWS::CloudFront::Distribution", "DomainName"), ("AWS::S3::Bucket", "RegionalDomainName")), (stack, output)
        return text.replace("${" + name + "}", "x" * 253)  # the longest DNS name
    if "Fn::GetAtt" in value:
        resource, attribute = value["Fn::GetAtt"]
        assert (templates[stack]["Resources"][resource]["Type"], attribute) == (
            "AWS::ElasticLoadBalancingV2::LoadBalancer", "DNSName"), (stack, output)
        return "x" * 253
    resource = templates[stack]["Resources"][value["Ref"]]
    kind, properties = resource["Type"], resource.get("Properties", {})
    if kind == "AWS::SecretsManager::Secret":
        return arn.format(service="secretsmanager", resource=f"secret:{properties['Name']}-XXXXXX")
    if kind == "AWS::S3::Bucket":
        return properties.get("BucketName", "x" * 63)
    if kind == "AWS::SQS::Queue":  # the longer of the sqs.<region> and legacy <region>.queue hosts
        return f"https://{env.region}.queue.{suffix}/{env.account_id}/{properties.get('QueueName', 'x' * 80)}"
    if kind == "AWS::ElasticLoadBalancingV2::TargetGroup":
        return arn.format(service="elasticloadbalancing", resource=f"targetgroup/{'x' * 32}/{'0' * 16}")
    raise AssertionError(f"no longest value known for a {kind} ({stack_id}.{parameter})")


def worst_case_size(r, stack_id: str) -> int:
    sub = launch_template_data(r.templates[stack_id])["UserData"]["Fn::Base64"]["Fn::Sub"]
    text, variables = sub if isinstance(sub, list) else (sub, {})
    values = {}
    partition = boto3.session.Session().get_partition_for_region(r.env.region)
    # A stack ID is the stack's ARN: ...:stack/<name, at most 128>/<UUID> (CloudFormation API
    # Reference, Stack.StackId and CreateStack StackName).
    pseudo = {"AWS::StackName": "x" * 128,
              "AWS::StackId": f"arn:{partition}:cloudformation:{r.env.region}:{r.env.account_id}:stack/"
                              f"{'x' * 128}/{'0' * 8}-{'0' * 4}-{'0' * 4}-{'0' * 4}-{'0' * 12}"}
    for name, ref in variables.items():
        parameter = ref["Ref"]
        values[name] = pseudo[parameter] if parameter in pseudo else _longest_value(r, stack_id, parameter)
    return len(resolve({"Fn::Sub": [text, values]}, {}).encode())


def _node(env, stack_id: str):
    pool = next((p for p in env.agent_pools if stack_id == f"AgentPool{p.name.title().replace('-', '')}"), None)
    return ("agent" if pool else {"ServerInit": "server-init", "Servers": "server"}[stack_id]), pool


def _user_data(env, stack_id: str):
    role, pool = _node(env, stack_id)
    names = {field.name for field in dataclasses.fields(bootstrap.BootRefs)} - {"stack_name", "stack_id", "addon"}
    refs = {name: Ref(name) for name in names}
    return bootstrap.user_data(env, roles.by_name(role), bootstrap.BootRefs(**refs), pool)


def size_the_guard_counts(env, stack_id: str, monkeypatch) -> int:
    """The size in the guard's refusal, with the limit lowered to nothing."""
    monkeypatch.setattr(limits, "MAX_USER_DATA_BYTES", 0)
    with pytest.raises(limits.LimitError) as refused:
        _user_data(env, stack_id)
    return int(re.search(r"would be ([\d,]+) bytes", str(refused.value)).group(1).replace(",", ""))


def _rendering(rendered, name: str):
    if name != "all-addons":
        return rendered[name]
    env = load_environment(path=ALL_ADDONS)
    return SimpleNamespace(env=env, templates={k: json.loads(json.dumps(t.to_dict()))
                                               for k, t in build_templates(env).items()})


@pytest.mark.parametrize("name", [*available_environments(), "all-addons"])
def test_the_guard_counts_exactly_the_longest_user_data(rendered, name, monkeypatch):
    r = _rendering(rendered, name)
    assert limits.MAX_USER_DATA_BYTES == 16 * 1024
    for stack_id in node_stack_ids(r.templates):
        exact = worst_case_size(r, stack_id)
        counted = size_the_guard_counts(r.env, stack_id, monkeypatch)
        assert counted == exact, stack_id
        assert exact <= 16 * 1024, stack_id  # and the shipped environments fit


@pytest.mark.parametrize("region", ["us-gov-west-1", "cn-north-1"])
def test_other_partitions_are_counted_with_their_own_arns_and_dns_suffix(env_document, region, monkeypatch):
    """GovCloud's partition name (aws-us-gov) is the longest, China's DNS suffix (amazonaws.com.cn)."""
    document = env_document("dev")
    document["region"] = region
    for subnet, zone in zip(document["network"]["subnets"], "ab"):
        subnet["az"] = f"{region}{zone}"
    env = validate(document, "dev.yaml")
    r = SimpleNamespace(env=env, templates={k: json.loads(json.dumps(t.to_dict()))
                                            for k, t in build_templates(env).items()})
    for stack_id in node_stack_ids(r.templates):
        assert size_the_guard_counts(env, stack_id, monkeypatch) == worst_case_size(r, stack_id), stack_id


def test_literal_dollar_braces_survive_fn_sub_and_the_size_count():
    """Fn::Sub reads ${Name} as a variable; text meant literally is written ${!Name} and comes
    out as ${Name} (CloudFormation User Guide, Fn::Sub). No validated field can put ${ into a
    plain user-data file today; this pins the escape for the day one can."""
    parameter = bootstrap._placeholder("api_dns_name")
    document = f"echo ${{HOME}} ${{!x}}\nserver: https://{parameter}:6443\n"
    sub_text = bootstrap._sub_text(document)
    values = {"ApiDnsName": "api.example.internal"}
    by_cloudformation = resolve({"Fn::Sub": [sub_text, values]}, {})
    assert by_cloudformation == "echo ${HOME} ${!x}\nserver: https://api.example.internal:6443\n"
    assert bootstrap.resolve(sub_text, values) == by_cloudformation


def test_exactly_the_limit_is_allowed_and_the_refusal_names_the_field(rendered, monkeypatch):
    """EC2 takes user data up to 16 KB inclusive; a refusal points at the pool (its labels and
    taints) or, for servers, at the SANs they carry (k3s.tls_san, the field that grows)."""
    env = rendered["dev"].env
    for stack_id, field in (("ServerInit", "k3s.tls_san"), ("AgentPoolGeneral", "agent_pools[general]")):
        size = size_the_guard_counts(env, stack_id, monkeypatch)
        monkeypatch.setattr(limits, "MAX_USER_DATA_BYTES", size)
        _user_data(env, stack_id)  # exactly at the limit: accepted
        monkeypatch.setattr(limits, "MAX_USER_DATA_BYTES", size - 1)
        with pytest.raises(limits.LimitError, match=rf"^environment dev: {re.escape(field)}: user data of "):
            _user_data(env, stack_id)


def test_a_node_stack_missing_a_boot_parameter_is_a_build_error(rendered):
    """Internal wiring guard: user data never renders with a parameter left out (Fn::Sub would
    fail the deploy with an unresolved variable)."""
    env = rendered["dev"].env
    with pytest.raises(ValueError, match=r"^server-init user data needs parameters \[.*'KubeconfigSecret'"):
        bootstrap.user_data(env, roles.SERVER_INIT, bootstrap.BootRefs(agent_token_secret=Ref("B")))
