"""Facts a node reads at boot instead of as node-stack parameters (roles.Role.late, boot.sh
bind_facts): the API load balancers' DNS names (the ApiEndpoint stack writes them to SSM once
the load balancers exist) and the OIDC issuer's URL (the Identity stack, once its CloudFront
distribution is deployed). No node stack waits for those stacks (stacks/root.py), so the boot
waits for each fact, bounded, and uses only a value it checked."""

from __future__ import annotations

import pytest

from k3s_infra import bootstrap
from tests.support.boot_sandbox import JOIN_URL, PARAMETERS

ISSUER, API = PARAMETERS["IssuerUrl"], PARAMETERS["ApiDnsName"]
SERVER_STACKS = ("ServerInit", "Servers")
# A new cluster for the first server (test_boot_server_init), an API that answers for the others.
WORLD = {"ServerInit": {"marker": None, "api_up_after": None, "targets": ("unhealthy",), "secure_tokens": False},
         "Servers": {"api_up_after": 0}, "AgentPoolGeneral": {"api_up_after": 0}}


def _fact_reads(run) -> list[str]:
    names = [c[c.index("--name") + 1] for c in run.aws_calls if c[4] == "ssm"]
    return [name.rsplit("/", 1)[1] for name in names if "/facts/" in name]


@pytest.mark.parametrize("stack", [*SERVER_STACKS, "AgentPoolGeneral"])
def test_the_facts_read_at_boot_replace_their_markers_everywhere(sandbox, user_data, rendered, stack):
    env = rendered["dev"].env
    given = user_data("dev", stack)
    assert bootstrap.fact_marker("api_dns_name") in given and API not in given and ISSUER not in given
    run = sandbox.run(given, **WORLD[stack])
    assert run.returncode == 0, run.stderr
    # The API's name before anything uses it (the first server's probe, a joiner's wait), the
    # issuer's only before K3s starts: its CloudFront distribution is the slowest resource.
    # The first server also reads the issuer's bucket, where it publishes the issuer's documents.
    expected = {"ServerInit": ["api-dns-name", "issuer-url", "issuer-bucket"], "Servers": ["api-dns-name", "issuer-url"]}
    assert _fact_reads(run) == expected.get(stack, ["api-dns-name"])
    config = run.config()
    if stack != "ServerInit":
        assert config["server"] == JOIN_URL
    if stack in SERVER_STACKS:
        assert API in config["tls-san"]
        assert f"service-account-issuer-={ISSUER}" in config["kube-apiserver-arg"]
        assert f"service-account-jwks-uri={ISSUER}/openid/v1/jwks" in config["kube-apiserver-arg"]
    for path in (bootstrap.BOOT_ENV, bootstrap.K3S_CONFIG):
        text = run.path(path).read_text()
        assert "@@K3S_INFRA_FACT_" not in text and f"/k3s-infra/{env.stack_name}/facts/" in run.path(
            bootstrap.BOOT_ENV).read_text()


@pytest.mark.parametrize("stack,fact", [("ServerInit", "ISSUER_URL"), ("Servers", "ISSUER_URL"),
                                        ("Servers", "API_DNS_NAME"), ("AgentPoolGeneral", "API_DNS_NAME")])
def test_a_fact_that_never_appears_fails_the_boot_before_k3s_starts(sandbox, user_data, stack, fact):
    run = sandbox.run(user_data("dev", stack), facts={fact: None}, **WORLD[stack])
    assert run.returncode != 0
    name = fact.lower().replace("_", "-")
    assert f"facts/{name} never appeared" in run.stderr
    assert _fact_reads(run).count(name) == 3  # K3S_INFRA_FACT_ATTEMPTS in the sandbox
    assert not [c for c in run.systemctl_calls if c[0] == "start"]
    assert [s[3] for s in run.signals] == ["FAILURE"]


@pytest.mark.parametrize("value", [
    "https://d1.cloudfront.net\nkube-apiserver-arg: [anonymous-auth=true]",  # a second line
    "https://d1.cloudfront.net#x",   # the sed delimiter
    "https://d1.cloudfront.net/&",   # sed's whole-match reference
    "http://d1.cloudfront.net",      # not https
    "https://d1.cloudfront.net/",    # a trailing slash: another issuer to STS
    "https://-d1.cloudfront.net",    # no DNS label starts with a hyphen
    "",
    "d1.cloudfront.net",             # the URL fact without its scheme
])
def test_a_url_fact_that_is_no_https_url_of_a_dns_name_is_refused(sandbox, user_data, value):
    run = sandbox.run(user_data("dev", "Servers"), facts={"ISSUER_URL": value}, **WORLD["Servers"])
    assert run.returncode != 0
    assert "holds no DNS name or https URL: refusing it" in run.stderr
    assert ["start", "k3s"] not in run.systemctl_calls


@pytest.mark.parametrize("value", ["https://internal-k3s-api.elb.eu-west-1.amazonaws.com", "api example", "-api"])
def test_a_name_fact_that_is_no_bare_dns_name_is_refused(sandbox, user_data, value):
    run = sandbox.run(user_data("dev", "AgentPoolGeneral"), facts={"API_DNS_NAME": value}, **WORLD["AgentPoolGeneral"])
    assert run.returncode != 0
    assert "holds no DNS name or https URL: refusing it" in run.stderr
    assert not [c for c in run.systemctl_calls if c[0] == "start"]
