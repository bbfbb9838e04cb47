"""Secrets of the enabled add-ons (k3s_infra/components/addon_secrets.py): generated in Secrets
Manager, encrypted with the cluster key, never rendered into a chart's values (the servers
read them into the HelmChart's valuesSecrets at boot), wired by the root into the IAM stack
and the server stacks only, and retained when asked (DeletionPolicy values that keep the
resource: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html).
"""

from __future__ import annotations

import yaml
from troposphere import Ref

from k3s_infra.components import addon_secrets
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import validate
from k3s_infra.model import addons

from tests.support.addons import charts_of
from tests.support.rendering import component_resources as _resources


# AWS::* DeletionPolicy values that keep the resource when its stack is deleted
# (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html).
KEEPS_ON_DELETE = {"Retain", "RetainExceptOnCreate"}


SERVER_STACKS = ("ServerInit", "Servers")


def test_addon_secrets_component_retains_when_asked(env_document):
    document = env_document("dev")
    document["addons"] = {"rancher": {"enabled": True, "values": {"hostname": "r.example.com"}},
                          "grafana": {"enabled": True}}
    env = validate(document, "dev.yaml")
    for retain, allowed in ((True, KEEPS_ON_DELETE), (False, {"Delete"})):
        t = StackTemplate("test", {})
        addon_secrets.build(t, env, Ref("Key"), retain=retain)
        secrets = {k: v for k, v in _resources(t).items() if v["Type"] == "AWS::SecretsManager::Secret"}
        assert len(secrets) == 2  # rancher bootstrapPassword, grafana adminPassword
        for logical, secret in secrets.items():
            assert secret["DeletionPolicy"] in allowed, (retain, logical)


def test_secret_values_are_generated_in_secrets_manager_and_never_rendered(everything):
    env, rendering, _, templates = everything
    secrets = {k: r for k, r in templates["ClusterData"]["Resources"].items()
               if r["Type"] == "AWS::SecretsManager::Secret"}
    for spec in addons.secret_specs(env):
        secret = secrets[spec.logical_id]["Properties"]
        assert "GenerateSecretString" in secret and "SecretString" not in secret
        assert secret["KmsKeyId"] == {"Fn::GetAtt": ["ClusterKey", "Arn"]}
        assert templates["ClusterData"]["Outputs"][spec.output]["Value"] == {"Ref": spec.logical_id}
        # Wired by the root into the IAM stack and both server stacks, nowhere else.
        users = {s for s, r in templates["Root"]["Resources"].items()
                 if spec.output in r["Properties"].get("Parameters", {})}
        assert users == {"NodeIam", *SERVER_STACKS}
    assert {s.value_key for s in addons.secret_specs(env)} == {"bootstrapPassword", "adminPassword"}
    for stack_id in SERVER_STACKS:
        charts = charts_of(templates[stack_id])
        for spec in addons.secret_specs(env):
            spec_values = yaml.safe_load(charts[addons.chart_name(spec.addon)]["spec"]["valuesContent"])
            assert spec.value_key not in spec_values
            assert charts[addons.chart_name(spec.addon)]["spec"]["valuesSecrets"][0]["keys"] == [addons.VALUES_KEY]
