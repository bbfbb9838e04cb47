"""A first deploy over data an earlier protected deployment kept (deploy/retained.py, docs/operations.md
"Protected environments"): its secrets' names (k3s-infra/<stack>/token, agent-token,
kubeconfig) and the cluster key's alias (alias/k3s-infra/<stack>) cannot be created again, so
the deploy refuses before uploading, naming each. DescribeSecret answers a secret scheduled
for deletion with its DeletedDate, an unknown one with ResourceNotFoundException
(https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html).
The whole lifecycle against moto is tests/e2e/test_clean_lifecycle.py's."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.config import load_environment
from k3s_infra.deploy import Refused, retained

DEV = load_environment("dev")
TOKEN, AGENT, KUBECONFIG = "k3s-infra/k3s-dev/token", "k3s-infra/k3s-dev/agent-token", "k3s-infra/k3s-dev/kubeconfig"
ALIAS = "alias/k3s-infra/k3s-dev"


class Rig:
    def __init__(self):
        def client(service):
            return boto3.client(service, region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x",
                                endpoint_url=f"https://{service}.invalid")

        self.sm, self.kms = client("secretsmanager"), client("kms")
        self.sm_stub, self.kms_stub = Stubber(self.sm), Stubber(self.kms)
        self.aws = SimpleNamespace(env=DEV, secretsmanager=self.sm, client={"kms": self.kms}.__getitem__)

    def secrets(self, **found: bool | None) -> None:
        """Each secret name: None absent, False kept, True scheduled for deletion."""
        for name in (TOKEN, AGENT, KUBECONFIG):
            state = found.get(name.rsplit("/", 1)[1].replace("-", "_"))
            if state is None:
                self.sm_stub.add_client_error("describe_secret", "ResourceNotFoundException",
                                              expected_params={"SecretId": name})
            else:
                described = {"ARN": f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{name}-AbCdEf", "Name": name}
                if state:
                    described["DeletedDate"] = datetime(2026, 12, 1, tzinfo=timezone.utc)
                self.sm_stub.add_response("describe_secret", described, {"SecretId": name})

    def aliases(self, *names: str) -> None:
        self.kms_stub.add_response("list_aliases", {"Aliases": [{"AliasName": n, "TargetKeyId": "k"} for n in names]}, {})

    def __enter__(self):
        self.sm_stub.activate()
        self.kms_stub.activate()
        return self

    def __exit__(self, *exc):
        self.sm_stub.assert_no_pending_responses()
        self.kms_stub.assert_no_pending_responses()
        self.sm_stub.deactivate()
        self.kms_stub.deactivate()


def test_kept_and_deleting_secrets_are_told_apart():
    with Rig() as rig:
        rig.secrets(token=False, kubeconfig=True)
        assert retained.existing(rig.aws) == [(TOKEN, False), (KUBECONFIG, True)]


def test_a_secret_that_cannot_be_described_is_an_error():
    with Rig() as rig:
        rig.sm_stub.add_client_error("describe_secret", "AccessDeniedException", expected_params={"SecretId": TOKEN})
        with pytest.raises(Exception, match="AccessDeniedException"):
            retained.existing(rig.aws)


@pytest.mark.parametrize("secrets, aliases, named", [
    ({"token": False}, (), [f"  {TOKEN}"]),
    ({"agent_token": True}, ("alias/other",), [f"  {AGENT}  (scheduled for deletion)"]),
    ({}, (ALIAS,), [f"  {ALIAS}  (KMS alias of the kept cluster key)"]),
])
def test_a_first_deploy_over_any_kept_name_is_refused_naming_it(secrets, aliases, named):
    with Rig() as rig:
        rig.secrets(**secrets)
        rig.aliases(*aliases)
        with pytest.raises(Refused) as refused:
            retained.check_first_deploy(rig.aws, None)
    lines = str(refused.value).splitlines()
    assert [line for line in lines if line.startswith("  ")] == named


def test_a_first_deploy_with_every_name_free_goes_on_and_an_update_asks_nothing():
    with Rig() as rig:
        rig.secrets()
        rig.aliases("alias/k3s-infra/k3s-devx")
        retained.check_first_deploy(rig.aws, None)
        retained.check_first_deploy(rig.aws, {"StackStatus": "UPDATE_COMPLETE", "StackId": "arn"})


def test_the_refusal_names_both_ways_out():
    """A secret scheduled for deletion keeps its name until its recovery window ends unless it
    is deleted with ForceDeleteWithoutRecovery
    (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DeleteSecret.html), and
    an alias is freed by DeleteAlias; the other way out is a new deploy.stack_name. Keeping the
    old token matters to a restore: K3s needs the token the snapshot was taken with
    (https://docs.k3s.io/cli/etcd-snapshot)."""
    with Rig() as rig:
        rig.secrets(token=True)
        rig.aliases(ALIAS)
        with pytest.raises(Refused) as refused:
            retained.check_first_deploy(rig.aws, None)
    advice = str(refused.value).splitlines()[-1]
    for way_out in ("aws secretsmanager delete-secret", "--force-delete-without-recovery", "aws kms delete-alias",
                    "deploy.stack_name", "token"):
        assert way_out in advice
