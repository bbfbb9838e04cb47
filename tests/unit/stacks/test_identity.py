"""The Identity stack (stacks/identity.py): the OIDC issuer is a private bucket only its own
CloudFront distribution reads, the provider trusts that distribution's HTTPS URL for the STS
audience, and the servers run kube-apiserver with exactly that issuer.

Expected values come from the documents they follow:
- CloudFront Developer Guide, "Restrict access to an Amazon S3 origin" (origin access
  control: OriginAccessIdentity "", a bucket policy for service principal
  cloudfront.amazonaws.com with AWS:SourceArn = the distribution's ARN);
- IAM User Guide, "Create an OpenID Connect (OIDC) identity provider": the provider URL is
  the token's `iss`, client ID the audience (sts.amazonaws.com: amazon-eks-pod-identity-webhook
  README, --token-audience default);
- Kubernetes "Service account issuer discovery": /.well-known/openid-configuration and the
  JWKS below the issuer; kube-apiserver signs with the first --service-account-issuer;
- k3s-io/k3s pkg/util/args.go GetArgs: `key-=value` puts value before K3s's default.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.support.oracle_helpers import bundle_files, written_files
from tests.support.published import addons_manifest

STS = "sts.amazonaws.com"
ENVIRONMENTS = ("dev", "staging", "prod")


def _of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_the_issuer_bucket_is_private_and_read_only_by_its_distribution(rendered, name):
    identity = rendered[name].templates["Identity"]
    ((bucket_id, bucket),) = _of_type(identity, "AWS::S3::Bucket").items()
    block = bucket["Properties"]["PublicAccessBlockConfiguration"]
    assert block == {"BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
                     "RestrictPublicBuckets": True}
    ((distribution_id, distribution),) = _of_type(identity, "AWS::CloudFront::Distribution").items()
    config = distribution["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": [bucket_id, "RegionalDomainName"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    ((oac_id, oac),) = _of_type(identity, "AWS::CloudFront::OriginAccessControl").items()
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    assert oac["Properties"]["OriginAccessControlConfig"]["OriginAccessControlOriginType"] == "s3"
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "https-only"
    assert set(config["DefaultCacheBehavior"]["AllowedMethods"]) == {"GET", "HEAD"}
    ((_, policy),) = _of_type(identity, "AWS::S3::BucketPolicy").items()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    (allow,) = allows  # nobody else is allowed anything
    assert allow["Principal"] in ({"Service": "cloudfront.amazonaws.com"}, {"Service": ["cloudfront.amazonaws.com"]})
    assert allow["Action"] == ["s3:GetObject"]
    source = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source[0].endswith(":distribution/${Id}") and source[1]["Id"] == {"Ref": distribution_id}
    denies = [s for s in statements if s["Effect"] == "Deny"]
    assert denies and denies[0]["Condition"] == {"Bool": {"aws:SecureTransport": False}}


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_the_provider_trusts_the_distributions_https_url_for_sts(rendered, name):
    identity = rendered[name].templates["Identity"]
    ((_, provider),) = _of_type(identity, "AWS::IAM::OIDCProvider").items()
    ((distribution_id, _),) = _of_type(identity, "AWS::CloudFront::Distribution").items()
    url = provider["Properties"]["Url"]["Fn::Sub"]
    assert url[0] == "https://${Host}" and url[1]["Host"] == {"Fn::GetAtt": [distribution_id, "DomainName"]}
    assert provider["Properties"]["ClientIdList"] == [STS]
    # The same URL is the issuer the servers get (no trailing slash: STS compares it with `iss`).
    assert identity["Outputs"]["IssuerUrl"]["Value"] == provider["Properties"]["Url"]


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_every_server_signs_with_the_issuer_and_publishes_its_keys_below_it(rendered, name):
    templates = rendered[name].templates
    root = templates["Root"]["Resources"]
    configs = []
    # The servers read the issuer's URL (the first server also its bucket) at boot from the SSM
    # parameters the Identity stack writes (boot.sh bind_facts): no server stack waits for CloudFront.
    env = rendered[name].env
    facts = {r["Properties"]["Name"]: r["Properties"]["Value"] for r in templates["Identity"]["Resources"].values()
             if r["Type"] == "AWS::SSM::Parameter"}
    url, bucket = (f"/k3s-infra/{env.stack_name}/facts/{fact}" for fact in ("issuer-url", "issuer-bucket"))
    assert facts == {url: templates["Identity"]["Outputs"]["IssuerUrl"]["Value"],
                     bucket: templates["Identity"]["Outputs"]["IssuerBucketName"]["Value"]}
    marker = "@@K3S_INFRA_FACT_ISSUER_URL@@"
    for stack_id in ("ServerInit", "Servers"):
        assert "Identity" not in str(root[stack_id]["Properties"]["Parameters"]), stack_id
        files = written_files(templates[stack_id])
        (read,) = [line for line in files["/etc/k3s-infra/boot.env"].splitlines() if line.startswith("FACTS=")]
        assert f"ISSUER_URL={url}" in read and (f"ISSUER_BUCKET={bucket}" in read) is (stack_id == "ServerInit")
        config = yaml.safe_load(files["/etc/rancher/k3s/config.yaml"])
        configs.append(config["kube-apiserver-arg"])
        args = config["kube-apiserver-arg"]
        assert args[0] == f"service-account-issuer-={marker}"  # before K3s's own issuer
        assert f"service-account-jwks-uri={marker}/openid/v1/jwks" in args
        # A token for STS must not also pass as one for the Kubernetes API.
        assert not [a for a in args if a.startswith("api-audiences")]
    assert configs[0] == configs[1]  # identical on every server
    agent = next(s for s in templates if s.startswith("AgentPool"))
    assert "IssuerUrl" not in templates[agent].get("Parameters", {})


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_the_webhook_runs_from_every_servers_manifests_and_only_the_first_server_holds_its_config(rendered, name):
    templates = rendered[name].templates
    init, joining = bundle_files(templates["ServerInit"]), bundle_files(templates["Servers"])
    webhook = "/var/lib/rancher/k3s/server/manifests/k3s-infra-pod-identity-webhook.yaml"
    assert init[webhook] == joining[webhook]
    objects = {o["kind"]: o for o in yaml.safe_load_all(init[webhook])}
    assert set(objects) == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment"}
    # Read-only on service accounts: it needs nothing else with a certificate of its own.
    assert objects["ClusterRole"]["rules"] == [{"apiGroups": [""], "resources": ["serviceaccounts"],
                                                "verbs": ["get", "watch", "list"]}]
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    image = container["image"]
    name_part, digest = image.split("@sha256:")
    assert name_part == "public.ecr.aws/eks/amazon-eks-pod-identity-webhook" and len(digest) == 64
    assert f"--token-audience={STS}" in container["args"] and "--annotation-prefix=eks.amazonaws.com" in container["args"]
    (volume,) = pod["volumes"]
    # The first server's bundle settings (bundle.env, sourced before its scripts).
    settings = dict(line.split("=", 1) for line in init["/usr/local/lib/k3s-infra/bundle.env"].splitlines())
    assert volume["secret"]["secretName"] == settings["WEBHOOK_TLS"].strip("'")
    port = next(p["containerPort"] for p in container["ports"])
    assert objects["Service"]["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": port}]
    # The configuration (with the CA the first server makes) is never in the manifests folder.
    configuration = settings["WEBHOOK_CONFIGURATION"].strip("'")
    assert configuration in init and configuration not in joining
    assert not [p for p in init if p.startswith("/var/lib/rancher/k3s/server/manifests/") and
                "MutatingWebhookConfiguration" in init[p]]
    (hook,) = yaml.safe_load(init[configuration])["webhooks"]
    assert hook["failurePolicy"] == "Ignore" and hook["sideEffects"] == "None"
    assert hook["clientConfig"]["caBundle"] == settings["WEBHOOK_CA_PLACEHOLDER"].strip("'")
    assert hook["clientConfig"]["service"] == {"name": objects["Service"]["metadata"]["name"],
                                               "namespace": objects["Service"]["metadata"]["namespace"],
                                               "path": "/mutate", "port": 443}
    assert hook["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                              "resources": ["pods"]}]


def test_a_controllers_service_account_names_the_role_the_identity_stack_makes(rendered):
    """prod runs the autoscaler and the termination handler: each chart's service account is
    annotated with the ARN of the one role that trusts exactly that service account."""
    r = rendered["prod"]
    roles = {}
    for role in _of_type(r.templates["Identity"], "AWS::IAM::Role").values():
        document = json.loads(role["Properties"]["AssumeRolePolicyDocument"]["Fn::Sub"][0])
        (statement,) = document["Statement"]
        subject = statement["Condition"]["StringEquals"]["${IssuerHost}:sub"]
        roles[subject] = f"arn:aws:iam::{r.env.account_id}:role{role['Properties']['Path']}" \
                         f"{role['Properties']['RoleName']}"
    charts = {c["metadata"]["name"]: yaml.safe_load(c["spec"]["valuesContent"]) for c in yaml.safe_load_all(
        addons_manifest(r.templates["Servers"])) if c}
    nth = charts["node-termination-handler"]["serviceAccount"]
    autoscaler = charts["cluster-autoscaler"]["rbac"]["serviceAccount"]
    assert nth["annotations"]["eks.amazonaws.com/role-arn"] == \
        roles[f"system:serviceaccount:kube-system:{nth['name']}"]
    assert autoscaler["annotations"]["eks.amazonaws.com/role-arn"] == \
        roles[f"system:serviceaccount:kube-system:{autoscaler['name']}"]
    assert len(roles) == 2 + len(r.env.workload_roles)


@pytest.mark.parametrize("region", ["us-gov-west-1", "cn-north-1"])
def test_without_cloudfront_the_bucket_serves_exactly_the_two_documents(env_document, region, tmp_path, linter):
    """CloudFront is not available in the AWS GovCloud (US) partition (AWS GovCloud (US) User
    Guide, "Amazon CloudFront") and aws-cn has no origin access control: there the bucket's
    regional HTTPS endpoint is the issuer, as in amazon-eks-pod-identity-webhook's
    SELF_HOSTED_SETUP.md, readable by anyone for the two documents only; the template passes
    cfn-lint against that region's resource types."""
    from k3s_infra.config import validate
    from k3s_infra.render import render, write

    document = env_document("dev")
    document["region"] = region
    for subnet in document["network"]["subnets"]:
        subnet["az"] = region + subnet["az"][-1]
    rendering = render(validate(document, "dev.yaml"))
    folder = write(rendering, tmp_path / region)
    identity = yaml.safe_load((folder / "identity.yaml").read_text())
    kinds = {r["Type"] for r in identity["Resources"].values()}
    assert not {k for k in kinds if k.startswith("AWS::CloudFront::")}
    assert linter.lint_file(folder / "identity.yaml", region) == []
    ((bucket_id, bucket),) = _of_type(identity, "AWS::S3::Bucket").items()
    block = bucket["Properties"]["PublicAccessBlockConfiguration"]
    assert block["BlockPublicAcls"] is True and block["IgnorePublicAcls"] is True
    ((_, policy),) = _of_type(identity, "AWS::S3::BucketPolicy").items()
    (allow,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Action"] == ["s3:GetObject"] and allow["Principal"] == "*"
    assert [r["Fn::Join"][1][1] for r in allow["Resource"]] == ["/.well-known/openid-configuration",
                                                                "/openid/v1/jwks"]
    ((_, provider),) = _of_type(identity, "AWS::IAM::OIDCProvider").items()
    assert provider["Properties"]["Url"]["Fn::Sub"][1]["Host"] == {"Fn::GetAtt": [bucket_id, "RegionalDomainName"]}


def test_the_provider_needs_nothing_from_the_issuer_when_it_is_created(rendered):
    """A thumbprint: without one IAM fetches the issuer's certificate chain at creation
    (IAM API Reference, CreateOpenIDConnectProvider, ThumbprintList), before the first server
    has published anything; with one it does not, and for a CA it trusts it never uses it."""
    ((_, provider),) = _of_type(rendered["prod"].templates["Identity"], "AWS::IAM::OIDCProvider").items()
    (thumbprint,) = provider["Properties"]["ThumbprintList"]
    assert len(thumbprint) == 40 and int(thumbprint, 16) >= 0
