"""The node roles allow exactly what the boot script and K3s do, on named resources."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["dev", "prod"])
def r(request, rendered):
    return rendered[request.param]


def _statements(r, role: str) -> dict[str, dict]:
    roles = r.resources("NodeIam", "AWS::IAM::Role")
    (policy,) = roles[f"{role}Role"]["Properties"]["Policies"]
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


def _actions(statement: dict) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def test_server_role_scopes_boot_writes_to_their_one_resource(r):
    s = _statements(r, "FirstServer")
    assert s["PublishKubeconfig"]["Resource"] == [{"Ref": "KubeconfigSecretArn"}]
    assert "secretsmanager:PutSecretValue" in _actions(s["PublishKubeconfig"])
    (marker,) = s["ClusterStateMarker"]["Resource"]
    assert "ClusterStateParameterName" in str(marker) and "*" not in str(marker)
    assert _actions(s["ClusterStateMarker"]) == {"ssm:GetParameter", "ssm:PutParameter"}
    assert s["ReadClusterTokens"]["Resource"] == [{"Ref": "TokenSecretArn"}, {"Ref": "AgentTokenSecretArn"}]
    # The first server publishes the secure tokens (boot.sh publish_token): put only, only these two.
    assert s["PublishClusterTokens"]["Resource"] == [{"Ref": "TokenSecretArn"}, {"Ref": "AgentTokenSecretArn"}]
    assert _actions(s["PublishClusterTokens"]) == {"secretsmanager:PutSecretValue"}
    writers = {sid for sid, st in s.items() if "secretsmanager:PutSecretValue" in _actions(st)}
    assert writers == {"PublishClusterTokens", "PublishKubeconfig"}
    # The OIDC issuer's documents (first_server.sh publish_issuer): put only, exactly its two keys,
    # by a policy of its own on this role (stacks/issuer_access.py).
    assert "PublishIssuerDocuments" not in s
    attached = r.resources("IssuerAccess", "AWS::IAM::Policy")["PublishIssuerDocuments"]["Properties"]
    assert attached["Roles"] == [{"Ref": "FirstServerRoleName"}]
    (issuer,) = attached["PolicyDocument"]["Statement"]
    assert _actions(issuer) == {"s3:PutObject"}
    assert [(res["Fn::Sub"][0].rsplit("}/", 1)[1], res["Fn::Sub"][1]) for res in issuer["Resource"]] == [
        (key, {"Bucket": {"Ref": "IssuerBucketName"}}) for key in (".well-known/openid-configuration", "openid/v1/jwks")]
    # A joining server publishes none of it: it only reads the tokens.
    joining = _statements(r, "Server")
    assert not {"PublishClusterTokens", "PublishKubeconfig", "ClusterStateMarker", "RestoreRequest",
                "PublishIssuerDocuments"} & set(joining)
    assert not [sid for sid, st in joining.items() if "secretsmanager:PutSecretValue" in _actions(st)]


def test_snapshot_bucket_check_is_allowed_but_listing_stays_in_the_folder(r):
    listing = _statements(r, "Server")["EtcdSnapshotListing"]
    # K3s's HeadBucket carries no prefix: the condition must not deny it.
    (condition,) = listing["Condition"].values()
    assert list(listing["Condition"]) == ["StringLikeIfExists"]
    assert f"etcd/{r.env.name}/*" in condition["s3:prefix"]


def test_cloud_controller_permissions(r):
    s = _statements(r, "Server")
    ccm = set().union(*(_actions(s[sid]) for sid in (
        "CloudControllerCreates", "CloudControllerTagsOnCreateEc2", "CloudControllerChangesClusterResources",
        "Discovery")))
    for action in ("ec2:DescribeInstances", "ec2:CreateTags", "elasticloadbalancing:CreateLoadBalancer",
                   "elasticloadbalancing:DetachLoadBalancerFromSubnets", "elasticloadbalancing:RegisterTargets"):
        assert action in ccm
    changes = s["CloudControllerChangesClusterResources"]["Condition"]["StringEquals"]
    assert changes == {f"aws:ResourceTag/kubernetes.io/cluster/{r.env.stack_name}": "owned"}
    linked = s["CloudControllerElbServiceRole"]
    assert _actions(linked) == {"iam:CreateServiceLinkedRole"}
    assert "AWSServiceRoleForElasticLoadBalancing" in str(linked["Resource"])


def test_agent_role_reads_only_the_agent_token(r):
    s = _statements(r, "Agent")
    secret_actions = {sid: st for sid, st in s.items() if any(a.startswith("secretsmanager:") for a in _actions(st))}
    assert list(secret_actions) == ["ReadAgentToken"]
    assert secret_actions["ReadAgentToken"]["Resource"] == [{"Ref": "AgentTokenSecretArn"}]
    assert _actions(secret_actions["ReadAgentToken"]) == {"secretsmanager:GetSecretValue"}  # never a writer
    # Its one SSM read: the internal API's name, a fact the ApiEndpoint stack writes (bind_facts).
    reads = {sid: st for sid, st in s.items() if any(a.startswith("ssm:") and "Parameter" in a for a in _actions(st))}
    assert list(reads) == ["ReadBootFacts"] and _actions(reads["ReadBootFacts"]) == {"ssm:GetParameter"}
    # Its other SSM action: the SSM Agent registering itself (docs/operations.md "Node access without SSH")
    agent = {a for st in s.values() for a in _actions(st) if a.startswith("ssm:") and "Parameter" not in a}
    assert agent <= {"ssm:UpdateInstanceInformation"}
    # on "*" as AmazonSSMManagedInstanceCore grants it, so alone in its statement: "*" reaches no read
    for st in s.values():
        if "ssm:UpdateInstanceInformation" in _actions(st):
            assert _actions(st) == {"ssm:UpdateInstanceInformation"} and st["Resource"] == ["*"], st["Sid"]
    (arn,) = reads["ReadBootFacts"]["Resource"]
    assert arn["Fn::Sub"][1]["Name"] == f"/k3s-infra/{r.env.stack_name}/facts/api-dns-name"
    assert not any(a.startswith("s3:") and a != "s3:GetObject" for st in s.values() for a in _actions(st))
