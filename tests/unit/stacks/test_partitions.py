"""Issue 24: a cluster outside the commercial partition. In China the endpoint domain is
amazonaws.com.cn ("The endpoint domain for both the Beijing and Ningxia Regions is
.amazonaws.com.cn": Amazon Web Services in China, Beijing Region Endpoints) and VPC endpoint
services are named cn.com.amazonaws.<region>.<service> for some services, com.amazonaws for the
others and the S3 gateway (DescribeVpcEndpointServices in cn-north-1). Templates therefore come from the S3 endpoint of that domain, interface endpoints
use that naming, and kms:ViaService names Secrets Manager's endpoint through AWS::URLSuffix
(CloudFormation pseudo parameters: "amazonaws.com.cn" in China). Service principals keep their
global form (service.amazonaws.com): AWS standardised them (AWS CDK docs, ServicePrincipal,
"@aws-cdk/aws-iam:standardizedServicePrincipals"). The rendering passes cfn-lint for the region."""

from __future__ import annotations

import json

import pytest
import yaml

from k3s_infra.config import validate
from k3s_infra.render import render, write

DOMAIN = {"cn-north-1": "amazonaws.com.cn", "eu-west-1": "amazonaws.com", "us-gov-west-1": "amazonaws.com"}
# DescribeVpcEndpointServices in cn-north-1 (and the AWS CDK's InterfaceVpcEndpointAwsService):
# these interface services carry a cn. prefix there, the others and the S3 gateway do not.
CHINA_PREFIXED = {"ec2", "sts", "autoscaling", "cloudformation", "sqs"}


def _expected(region: str, service: str, gateway: bool) -> str:
    china = region.startswith("cn-") and not gateway and service in CHINA_PREFIXED
    return f"{'cn.' if china else ''}com.amazonaws.{region}.{service}"


@pytest.mark.parametrize("region", ["cn-north-1", "us-gov-west-1", "eu-west-1"])
def test_urls_and_endpoint_names_follow_the_regions_partition(env_document, region, tmp_path, linter):
    document = env_document("staging")
    document["region"] = region
    document["network"]["create"]["nat_gateways"] = "none"  # interface endpoints for every service
    document.setdefault("k3s", {})
    document["k3s"]["release_url"] = "https://mirror.example.com/k3s"
    document["k3s"]["binary_sha256"] = {"amd64": "a" * 64, "arm64": "b" * 64}
    env = validate(document, "staging.yaml")
    rendering = render(env)
    root = yaml.safe_load(rendering.root.body)
    for child in (r for r in root["Resources"].values() if r["Type"] == "AWS::CloudFormation::Stack"):
        assert child["Properties"]["TemplateURL"].startswith(
            f"https://{env.artifact_bucket}.s3.{region}.{DOMAIN[region]}/"), child["Properties"]["TemplateURL"]
    network = yaml.safe_load(next(s.body for s in rendering.children if s.stack_id == "Network"))
    endpoints = [r["Properties"] for r in network["Resources"].values() if r["Type"] == "AWS::EC2::VPCEndpoint"]
    assert len(endpoints) > 5
    for endpoint in endpoints:
        service = endpoint["ServiceName"].split(f".{region}.", 1)[1]
        assert endpoint["ServiceName"] == _expected(region, service, endpoint["VpcEndpointType"] == "Gateway")
    node_iam = next(s.body for s in rendering.children if s.stack_id == "NodeIam")
    via = [s["Condition"]["StringEquals"]["kms:ViaService"] for r in yaml.safe_load(node_iam)["Resources"].values()
           if r["Type"] == "AWS::IAM::Role" for p in r["Properties"].get("Policies", [])
           for s in p["PolicyDocument"]["Statement"] if "kms:ViaService" in s.get("Condition", {}).get("StringEquals", {})]
    assert via and all(v == {"Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"} for v in via)
    assert "amazonaws.com.cn" not in json.dumps(via)  # resolved by CloudFormation, not spelled
    folder = write(rendering, tmp_path / region)
    for stack in rendering.children:
        assert linter.lint_file(folder / stack.file, region) == [], stack.file
