"""Each AWS client of one command (deploy/aws.py Aws): the service it is for, in the
environment's region, with the command's retry and connection settings, made once per command.
botocore names a client's service and region in client.meta
(https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html: retries'
total_max_attempts is the first call and its retries)."""

from __future__ import annotations

import boto3
import pytest

from k3s_infra.config import load_environment
from k3s_infra.deploy.aws import Aws

DEV = load_environment("dev")


@pytest.mark.parametrize("attribute, service", [
    ("cloudformation", "cloudformation"), ("s3", "s3"), ("autoscaling", "autoscaling"),
    ("secretsmanager", "secretsmanager"), ("ssm", "ssm"), ("ec2", "ec2"), ("elbv2", "elbv2"),
])
def test_each_client_is_for_its_service_in_the_environments_region_made_once(monkeypatch, attribute, service):
    monkeypatch.delenv("AWS_RETRY_MODE", raising=False)
    aws = Aws(DEV, session=boto3.Session(aws_access_key_id="x", aws_secret_access_key="x"))
    client = getattr(aws, attribute)
    assert client.meta.service_model.service_name == service and client.meta.region_name == DEV.region
    assert client.meta.config.retries["total_max_attempts"] == 11 and client.meta.config.connect_timeout == 5
    assert getattr(aws, attribute) is client
