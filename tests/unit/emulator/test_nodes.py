"""The emulator's stand-in for the first server's kubeconfig (k3s_infra/emulator/nodes.py): it
reads what the node reads (the boot.env of the rendered first server, its facts in SSM) and
publishes once, as first_server.sh publish_kubeconfig does, a kubeconfig that says it is a
stand-in. Its run inside a deploy: tests/e2e/test_readme_walkthrough.py."""

from __future__ import annotations

import base64
from types import SimpleNamespace

import boto3
import pytest
import yaml
from moto import mock_aws

from k3s_infra.deploy.kubeconfig import _is_kubeconfig
from k3s_infra.emulator import nodes
from tests.support.boot_sandbox import PARAMETERS, expand
from tests.support.isolated import in_child

REGION, ACCOUNT = "eu-west-1", "123456789012"  # moto's default account


class FakeSsm:
    """moto's SSM backend as the stand-in asks it: get_parameter(name) -> .value or None."""

    def __init__(self, values: dict[str, str]):
        self.values = values

    def get_parameter(self, name: str):
        found = [v for suffix, v in self.values.items() if name.endswith(suffix)]
        return SimpleNamespace(value=found[0]) if found else None


def _settings(rendered, env: str, stack: str) -> dict[str, str]:
    return nodes.boot_settings(base64.b64encode(expand(rendered[env].templates[stack]).encode()))


@pytest.mark.parametrize("env, fact", [("dev", "/facts/api-dns-name"),  # internal API: its DNS name
                                       ("staging", "/facts/public-api-dns-name")])  # internet-facing: the public one
def test_the_stand_in_reads_the_first_servers_boot_settings(rendered, env, fact):
    settings = _settings(rendered, env, "ServerInit")
    assert settings["KUBECONFIG_SECRET"] == PARAMETERS["KubeconfigSecretArn"]
    ssm = FakeSsm({fact: "api.example.internal"})
    assert nodes._bind_facts(settings["KUBECONFIG_HOST"], settings["FACTS"], ssm) == "api.example.internal"
    assert nodes._bind_facts(settings["KUBECONFIG_HOST"], settings["FACTS"], FakeSsm({})) is None  # not yet


@pytest.mark.parametrize("stack", ["Servers", "AgentPoolGeneral"])
def test_joining_servers_and_agents_publish_no_kubeconfig(rendered, stack):
    settings = _settings(rendered, "prod" if stack == "Servers" else "dev", stack)
    assert settings and "KUBECONFIG_SECRET" not in settings


def test_user_data_that_is_no_cloud_config_gives_no_settings():
    assert nodes.boot_settings(base64.b64encode(b"#!/bin/sh\necho hi\n")) == {}
    assert nodes.boot_settings(b"%%% not base64") == {} and nodes.boot_settings(None) == {}


@in_child  # mock_aws resets moto's backends: not those of this process's e2e server
def test_a_first_server_publishes_its_kubeconfig_once_its_fact_exists(monkeypatch):
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):  # a worker's e2e moto server is not this test's
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        _publish_once()


def _publish_once() -> None:
    ec2, sm, ssm = (boto3.client(s, region_name=REGION) for s in ("ec2", "secretsmanager", "ssm"))
    arn = sm.create_secret(Name="k3s-infra/k3s-x/kubeconfig", SecretString="generated-placeholder")["ARN"]
    parameter = "/k3s-infra/k3s-x/facts/api-dns-name"
    boot_env = (f"KUBECONFIG_SECRET='{arn}'\nKUBECONFIG_HOST='@@K3S_INFRA_FACT_API_DNS_NAME@@'\nAPI_PORT='6443'\n"
                f"FACTS='API_DNS_NAME={parameter}'\n")
    user_data = "#cloud-config\n" + yaml.safe_dump({"write_files": [{"path": "/etc/k3s-infra/boot.env",
                                                                     "content": boot_env}]})
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, UserData=user_data, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "k3s-infra:cluster", "Value": "k3s-x"}]}])
    assert nodes.publish_kubeconfigs(ACCOUNT, REGION) == []  # the DNS name is not written yet
    ssm.put_parameter(Name=parameter, Value="k3s-x-api.elb.eu-west-1.amazonaws.com", Type="String")
    assert nodes.publish_kubeconfigs(ACCOUNT, REGION) == [arn]
    text = sm.get_secret_value(SecretId=arn)["SecretString"]
    doc = _is_kubeconfig(text)  # the product reads it as a kubeconfig
    assert doc["clusters"][0]["cluster"]["server"] == "https://k3s-x-api.elb.eu-west-1.amazonaws.com:6443"
    assert {doc["current-context"], doc["users"][0]["name"], doc["clusters"][0]["name"]} == {"k3s-x"}
    assert "stand-in" in doc["clusters"][0]["cluster"]["extensions"][0]["extension"]["stand-in"]
    assert nodes.publish_kubeconfigs(ACCOUNT, REGION) == []  # published once, never rewritten
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == text
