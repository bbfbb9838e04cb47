"""Secrets in fields anyone can read are refused, naming the field and never quoting the value
(k3s_infra/config/types.py ``no_secret``, ``no_url_credentials``; shapes in secret_shapes.py):
tags (on every resource: DescribeTags), node labels (kubectl get nodes; also autoscaler tags),
taints, the stack name (ListStacks), TLS names (in the API certificate) and the URLs nodes and
the helm controller fetch (k3s.release_url, addons.<name>.repo, in templates and logs).

Credential shapes (formats cited in test_secret_scan.py): AWS access key IDs AKIA/ASIA + 16,
AWS secret access keys of 40 base64 characters, user info in a URL (RFC 3986 3.2.1), tokens
in a query string (?token=, ?X-Amz-Signature= of SigV4 presigned URLs, ?sig= of SAS URLs).
Tag and label keys are descriptions (``auth``, ``secret-level``): judged by shape, not name.
"""

from __future__ import annotations

import pytest

from tests.support.config_errors import paths, refused

KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example access key ID
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # and its secret access key
SESSION_KEY_ID = "ASIAQWERTYUIOPASDFGH"


def pool(d: dict) -> dict:
    return d["agent_pools"][0]


REFUSED = {
    "access key ID in a tag value": (lambda d: d["deploy"]["tags"].update(owner=f"ci-{KEY_ID}"),
                                     "deploy.tags.owner", KEY_ID),
    "secret key in a tag value": (lambda d: d["deploy"]["tags"].update(backup=SECRET_KEY), "deploy.tags.backup",
                                  SECRET_KEY),
    "session key ID as a tag key": (lambda d: d["deploy"]["tags"].update({SESSION_KEY_ID: "x"}), "deploy.tags",
                                    SESSION_KEY_ID),
    "password URL in a tag value": (lambda d: d["deploy"]["tags"].update(repo="https://ci:s3cr3tPW@git.example.com"),
                                    "deploy.tags.repo", "s3cr3tPW"),
    "access key ID as a node label": (lambda d: pool(d)["labels"].update(team=KEY_ID), "agent_pools[general].labels.team",
                                      KEY_ID),
    "label key that is a key ID": (lambda d: pool(d)["labels"].update({f"example.com/{KEY_ID}": "y"}),
                                   "agent_pools[general].labels", KEY_ID),
    "access key ID in a taint": (lambda d: pool(d).update(taints=[f"owner={KEY_ID}:NoSchedule"]),
                                 "agent_pools[general].taints[0]", KEY_ID),
    "access key ID in the stack name": (lambda d: d["deploy"].update(stack_name=f"k3s-{KEY_ID}"),
                                        "deploy.stack_name", KEY_ID),
    "random secret as the stack name": (lambda d: d["deploy"].update(stack_name="Xr7tQ2vL9mK4pZ8wN3bH6jF1sD5gY0cA"),
                                        "deploy.stack_name", "Xr7tQ2vL9mK4pZ8wN3bH6jF1sD5gY0cA"),
    "user info in the release URL": (lambda d: d.setdefault("k3s", {}).update(
        release_url="https://mirror:hunter2@mirror.example.com/k3s"), "k3s.release_url", "hunter2"),
    "token as the user of the release URL": (lambda d: d.setdefault("k3s", {}).update(
        release_url="https://ghp_0123456789abcdefABCDEF0123456789@github.example.com/k3s"), "k3s.release_url",
        "ghp_0123456789abcdef"),
    "presigned release URL": (lambda d: d.setdefault("k3s", {}).update(
        release_url="https://b.s3.eu-west-1.amazonaws.com/k3s?X-Amz-Credential=AKIA/x&X-Amz-Signature=f00d"),
        "k3s.release_url", "f00d"),
    "password in a chart repository URL": (lambda d: d.update(addons={"grafana": {
        "repo": "https://helm:hunter2@charts.example.com/stable"}}), "addons.grafana.repo", "hunter2"),
    "token query in a chart repository URL": (lambda d: d.update(addons={"grafana": {
        "repo": "https://charts.example.com/stable?access_token=hunter2"}}), "addons.grafana.repo", "hunter2"),
    "SAS signature in a chart repository URL": (lambda d: d.update(addons={"grafana": {
        "repo": "https://acct.blob.core.windows.net/charts?sv=2022-11-02&sig=hunter2"}}), "addons.grafana.repo",
        "hunter2"),
    "key ID as a TLS name": (lambda d: d.setdefault("k3s", {}).update(tls_san=[f"{KEY_ID}.example.com"]),
                             "k3s.tls_san[0]", KEY_ID),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_credentials_in_readable_fields_are_refused_naming_the_field(dev, case):
    mutate, path, secret = REFUSED[case]
    mutate(dev)
    error = refused(dev)
    assert paths(error) == [path], error.problems
    assert secret not in str(error)  # named, never quoted


ACCEPTED = {
    "ordinary tags": lambda d: d["deploy"]["tags"].update({
        "cost-center": "platform-42", "owner": "team-k8s@example.com", "data-classification": "secret",
        "auth": "oidc", "repo": "https://git.example.com/platform/k3s", "Project": "MyCompanyProductionClusterEuWest1"}),
    "ordinary labels": lambda d: pool(d)["labels"].update({"example.com/tier": "backend", "auth": "enabled",
                                                           "build": "0123456789abcdef0123456789abcdef01234567"}),
    "CamelCase stack name": lambda d: d["deploy"].update(stack_name="AcmeCorpPlatformTeamKubernetesProdEuWest1"),
    "mirror URL with a port and a path": lambda d: d.setdefault("k3s", {}).update(
        release_url="https://mirror.example.com:8443/github.com/k3s-io/k3s/releases/download"),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_ordinary_values_in_those_fields_are_accepted(dev, case):
    from k3s_infra.config import validate

    ACCEPTED[case](dev)
    validate(dev, "dev.yaml")
