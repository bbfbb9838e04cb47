"""Joins trust only the cluster's CA: joiners take secure tokens, K10<sha256 of the cluster
CA>::<credentials>, which make K3s check the CA it is shown before sending credentials; a
short token makes the joiner trust the first CA it sees (https://docs.k3s.io/cli/token,
"Token Format"). The first server publishes the secure tokens K3s writes to
<data-dir>/server/token and agent-token (k3s-io/k3s:pkg/server/server.go, printTokens)."""

from __future__ import annotations

import re

import pytest
from tests.support.boot_sandbox import (
    AGENT_TOKEN,
    CA_HASH,
    PARAMETERS,
    SECURE_AGENT_TOKEN,
    SECURE_SERVER_TOKEN,
    SERVER_TOKEN,
    token_leaks,
)

from k3s_infra.bootstrap import k3s_config

SECURE = re.compile(r"^K10[0-9a-f]{64}::[^:]+:.+$")
JOINERS = [("Servers", "TokenSecretArn", SECURE_SERVER_TOKEN), ("AgentPoolGeneral", "AgentTokenSecretArn",
                                                                 SECURE_AGENT_TOKEN)]


def test_the_first_server_publishes_both_secure_tokens_without_exposing_them(sandbox, user_data):
    run = sandbox.run(user_data("dev", "ServerInit"), marker=None, api_up_after=None, secure_tokens=False)
    assert run.returncode == 0, run.stderr
    published = {call[call.index("--secret-id") + 1]: call[call.index("--secret-string") + 1]
                 for call in run.secret_writes()}
    # Each from the file K3s wrote, as file:// (the value never on a command line).
    assert published[PARAMETERS["TokenSecretArn"]] == f"file://{run.root}/var/lib/rancher/k3s/server/token"
    assert published[PARAMETERS["AgentTokenSecretArn"]] == f"file://{run.root}/var/lib/rancher/k3s/server/agent-token"
    for arn, password in (("TokenSecretArn", SERVER_TOKEN), ("AgentTokenSecretArn", AGENT_TOKEN)):
        value = run.state["secrets"][PARAMETERS[arn]].strip()
        assert SECURE.match(value) and value.startswith(f"K10{CA_HASH}::") and value.endswith(password)
        assert value not in run.stderr and value not in run.stdout
    # A new cluster starts from the generated (short) token: K3s creates the CA it then pins.
    assert run.path(k3s_config.TOKEN_FILE).read_text().strip() == SERVER_TOKEN
    assert token_leaks(run, {k3s_config.TOKEN_FILE: SERVER_TOKEN, k3s_config.AGENT_TOKEN_FILE: AGENT_TOKEN}) == []


def test_a_retried_first_init_starts_from_the_password_of_a_secure_token(sandbox, user_data):
    # An earlier init published the secure token, then died before the marker: the CA it
    # names is gone, and K3s takes a secure token on a first server only with an existing CA.
    run = sandbox.run(user_data("dev", "ServerInit"), marker=None, api_up_after=None, secure_tokens=True)
    assert run.returncode == 0, run.stderr
    assert run.path(k3s_config.TOKEN_FILE).read_text().strip() == SERVER_TOKEN


def test_a_restore_keeps_the_token_it_finds(sandbox, user_data):
    # The CA comes back with the snapshot, encrypted with the token: the same token, as is
    # (https://docs.k3s.io/datastore/backup-restore).
    run = sandbox.run(user_data("dev", "ServerInit"), marker="initialised", api_up_after=None,
                      objects=(("etcd/dev/etcd-snapshot-i-0aaa-1735711200", "2025-01-01T06:00:00+00:00"),))
    assert run.returncode == 0, run.stderr
    assert [c for c in run.k3s_calls if "--cluster-reset" in c]
    assert run.path(k3s_config.TOKEN_FILE).read_text().strip() == SECURE_SERVER_TOKEN


@pytest.mark.parametrize("stack_id,secret,secure", JOINERS)
def test_a_joiner_refuses_a_short_token_and_fails_its_signal(sandbox, user_data, stack_id, secret, secure):
    run = sandbox.run(user_data("prod", stack_id), api_up_after=0, secure_tokens=False, token_attempts=3)
    assert run.returncode == 1
    assert "refusing to join with a short token" in run.stderr
    # It waited, bounded, re-reading the secret.
    assert run.secrets_read().count(PARAMETERS[secret]) == 3
    assert not run.path(k3s_config.TOKEN_FILE).exists()
    assert not run.state["started"]
    assert [s[3] for s in run.signals] == ["FAILURE"]
    assert token_leaks(run, {}) == []


@pytest.mark.parametrize("stack_id,secret,secure", JOINERS)
def test_a_joiner_waits_for_the_secure_token_then_joins_with_it(sandbox, user_data, stack_id, secret, secure):
    run = sandbox.run(user_data("prod", stack_id), api_up_after=0, publish_after=2, token_attempts=5)
    assert run.returncode == 0, run.stderr
    assert run.secrets_read().count(PARAMETERS[secret]) == 3
    assert run.path(k3s_config.TOKEN_FILE).read_text().strip() == secure
    assert run.path(k3s_config.TOKEN_FILE).stat().st_mode & 0o077 == 0
    assert "waiting for the first server" in run.stderr
    # Joiners never publish.
    assert run.secret_writes() == []
    assert [s[3] for s in run.signals] == ["SUCCESS"]
