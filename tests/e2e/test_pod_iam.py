"""Pod IAM (issue 22) on the session's moto server: a cluster with one ``workload_roles`` entry
deployed through the real CLI, then read back with boto3: the IAM OIDC provider for the
issuer URL with the client ID sts.amazonaws.com, the CloudFront distribution serving the
issuer through an origin access control, the role trusting that provider for exactly that
service account, and ``sts:AssumeRoleWithWebIdentity`` with a signed token for the
service account returning credentials of that role. Destroy removes them.

What this cannot show: moto 5.2.5's STS checks neither the token nor the trust policy.
``moto/sts/responses.py`` ``assume_role_with_web_identity`` never reads the
``WebIdentityToken`` parameter, and ``moto/sts/models.py`` ``assume_role_with_web_identity``
just calls ``assume_role`` ("the role does not need to exist"): no signature, issuer,
audience, subject or trust condition is evaluated (test_moto_does_not_check_the_token pins
that). So the trust conditions are decided by tests/unit/components/test_workload_trust.py
(IAM's documented evaluation, tests/support/iam_eval.py), and what STS would verify a
signature against, the JWKS and discovery document the first server publishes (exactly the
API server's), by tests/boot/test_boot_issuer.py; no test here verifies a signature. The
three CloudFormation resources moto does not model are created through its own backends by
k3s_infra/emulator/shims_identity.py.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from joserfc import jwt
from joserfc.jwk import RSAKey

from k3s_infra.config import load_environment
from k3s_infra.model import workload_identity

from tests.support.emulated_account import ACCOUNT, REGION

STACK = "k3s-pod-iam"
POOL = {"name": "general", "instance_types": ["t3.small"], "min_size": 1, "desired": 1, "max_size": 2,
        "root_volume_gb": 30}
SERVICE_ACCOUNT = "payments/api"
SUBJECT = "system:serviceaccount:payments:api"  # Kubernetes service account tokens' sub
AUDIENCE = "sts.amazonaws.com"
STATEMENT = {"Sid": "SendPayments", "Effect": "Allow", "Action": ["sqs:SendMessage"],
             "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:payments"}


@pytest.fixture(scope="module")
def config(write_env):
    return str(write_env("pod-iam.yaml", deploy={"stack_name": STACK}, agent_pools=[POOL],
                         workload_roles=[{"service_account": SERVICE_ACCOUNT, "statements": [STATEMENT]}]))


@pytest.fixture(scope="module")
def identity(cli, config, aws) -> dict[str, str]:
    """Deploy once; the Identity stack's outputs (and its ID as "_stack")."""
    result = cli("deploy", "--config", config, "--yes")
    assert result.code == 0, result
    cfn = aws.cloudformation
    (child,) = [r["PhysicalResourceId"] for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
                if r["LogicalResourceId"] == "Identity"]
    stack = cfn.describe_stacks(StackName=child)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    return {"_stack": child, **{o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}}


@pytest.fixture(scope="module")
def role(aws, identity) -> dict:
    """The role whose trust names the subject (found by reading IAM, not by its name)."""
    roles = [r for page in aws.iam.get_paginator("list_roles").paginate(PathPrefix="/k3s-infra/")
             for r in page["Roles"] if SUBJECT in str(r["AssumeRolePolicyDocument"])]
    (found,) = roles
    return found


def _token(issuer: str, subject: str = SUBJECT, audience: str = AUDIENCE) -> str:
    """A service account token as the API server signs it (RS256, kid in the header)."""
    key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
    now = int(time.time())
    claims = {"iss": issuer, "sub": subject, "aud": [audience], "iat": now, "nbf": now, "exp": now + 3600,
              "kubernetes.io": {"namespace": "payments", "serviceaccount": {"name": "api", "uid": str(uuid.uuid4())}}}
    return jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, key)


def test_the_oidc_provider_is_the_issuer_with_the_sts_client_id(aws, identity):
    issuer = identity["IssuerUrl"]
    assert issuer.startswith("https://") and issuer.endswith(".cloudfront.net")
    assert identity["OidcProviderArn"] in [p["Arn"] for p in aws.iam.list_open_id_connect_providers()[
        "OpenIDConnectProviderList"]]
    provider = aws.iam.get_open_id_connect_provider(OpenIDConnectProviderArn=identity["OidcProviderArn"])
    # IAM reports the URL without its scheme; the ARN ends with it (IAM User Guide, "IAM identifiers").
    assert provider["Url"] == issuer.removeprefix("https://")
    assert identity["OidcProviderArn"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{provider['Url']}"
    assert provider["ClientIDList"] == [AUDIENCE]


def test_the_issuer_is_a_distribution_reading_the_bucket_through_access_control(aws, identity):
    host = identity["IssuerUrl"].removeprefix("https://")
    cloudfront = aws.cloudfront
    (summary,) = [d for d in cloudfront.list_distributions()["DistributionList"].get("Items", [])
                  if d["DomainName"] == host]
    config = cloudfront.get_distribution(Id=summary["Id"])["Distribution"]["DistributionConfig"]
    (origin,) = config["Origins"]["Items"]
    assert origin["DomainName"].startswith(identity["IssuerBucketName"] + ".s3.")
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "https-only"
    # moto 5.2.5 does not echo an origin's OriginAccessControlId: read the control the stack made.
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in aws.cloudformation.list_stack_resources(
        StackName=identity["_stack"])["StackResourceSummaries"]}
    control = cloudfront.get_origin_access_control(Id=resources["IssuerOriginAccessControl"])[
        "OriginAccessControl"]["OriginAccessControlConfig"]
    assert (control["OriginAccessControlOriginType"], control["SigningBehavior"], control["SigningProtocol"]) == \
        ("s3", "always", "sigv4")
    assert resources["IssuerDistribution"] == summary["Id"]


def test_the_role_trusts_that_provider_for_that_service_account_only(aws, config, identity, role):
    host = identity["IssuerUrl"].removeprefix("https://")
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {"Federated": identity["OidcProviderArn"]}
    assert statement["Condition"] == {"StringEquals": {f"{host}:sub": SUBJECT, f"{host}:aud": AUDIENCE}}
    # The ARN known at render time (for the service account's role-arn annotation) is the real one.
    env = load_environment(path=Path(config))
    assert role["Arn"] in workload_identity.annotations(env, SERVICE_ACCOUNT).values()
    policy = aws.iam.get_role_policy(RoleName=role["RoleName"], PolicyName="workload")["PolicyDocument"]
    assert policy["Statement"] == [STATEMENT]


def test_a_signed_token_for_the_service_account_gets_the_roles_credentials(moto_endpoint, identity, role):
    sts = boto3.client("sts", region_name=REGION, endpoint_url=moto_endpoint)
    answer = sts.assume_role_with_web_identity(RoleArn=role["Arn"], RoleSessionName="payments-api",
                                               WebIdentityToken=_token(identity["IssuerUrl"]))
    credentials = answer["Credentials"]
    assert credentials["AccessKeyId"] and credentials["SecretAccessKey"] and credentials["SessionToken"]
    assumed = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role['RoleName']}/payments-api"
    assert answer["AssumedRoleUser"]["Arn"] == assumed
    caller = boto3.client("sts", region_name=REGION, endpoint_url=moto_endpoint,
                          aws_access_key_id=credentials["AccessKeyId"],
                          aws_secret_access_key=credentials["SecretAccessKey"],
                          aws_session_token=credentials["SessionToken"]).get_caller_identity()
    assert caller["Arn"] == assumed and caller["Account"] == ACCOUNT


def test_moto_does_not_check_the_token(moto_endpoint, identity, role):
    """Pins the gap the module docstring names: real STS refuses both (another subject, and a
    token that is no JWT at all); if moto ever checks, this fails and the gap is closed."""
    sts = boto3.client("sts", region_name=REGION, endpoint_url=moto_endpoint)
    for token in (_token(identity["IssuerUrl"], subject="system:serviceaccount:payments:other"), "not-a-jwt"):
        answer = sts.assume_role_with_web_identity(RoleArn=role["Arn"], RoleSessionName="gap",
                                                   WebIdentityToken=token)
        assert answer["Credentials"]["AccessKeyId"]


def test_destroy_removes_the_provider_the_distribution_and_the_role(cli, config, aws, identity, role):
    """The first server has published the two documents: CloudFormation cannot delete a bucket
    that holds objects (https://docs.aws.amazon.com/AmazonS3/latest/userguide/delete-bucket.html),
    so destroy empties the issuer's bucket first."""
    bucket = identity["IssuerBucketName"]
    for key in (".well-known/openid-configuration", "openid/v1/jwks"):
        aws.s3.put_object(Bucket=bucket, Key=key, Body=b"{}", ContentType="application/json")
    result = cli("destroy", "--config", config, "--yes")
    assert result.code == 0, result
    assert f"emptied the OIDC issuer bucket s3://{bucket} (2 object versions" in result.out, result
    with pytest.raises(ClientError):
        aws.s3.head_bucket(Bucket=bucket)
    assert identity["OidcProviderArn"] not in [p["Arn"] for p in aws.iam.list_open_id_connect_providers()[
        "OpenIDConnectProviderList"]]
    host = identity["IssuerUrl"].removeprefix("https://")
    assert host not in [d["DomainName"] for d in aws.cloudfront.list_distributions()["DistributionList"].get(
        "Items", [])]
    assert role["RoleName"] not in [r["RoleName"] for r in aws.iam.list_roles(PathPrefix="/k3s-infra/")["Roles"]]
