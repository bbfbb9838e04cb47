"""The last step of every boot that succeeds: the instance tags itself ready, exactly once, right
before it signals SUCCESS; `deploy` waits for that tag on every new instance
(k3s_infra/deploy/readiness.py), resizes included, where no CloudFormation signal is awaited.
CreateTags: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateTags.html.
An agent is ready only once its Node exists, read with the kubelet's own credentials (the Node
authorizer lets a kubelet read its own Node:
https://kubernetes.io/docs/reference/access-authn-authz/node/): a healthy kubelet whose Node
never registers (a rejected node password, a wrong provider ID) runs no pod."""

from __future__ import annotations

import pytest
from tests.support.boot_sandbox import INSTANCE_ID, READY_ATTEMPTS, expand

from k3s_infra import bootstrap
from k3s_infra.bootstrap import k3s_config
from k3s_infra.model import naming

READY = [INSTANCE_ID, naming.READY_TAG, naming.READY_VALUE]  # the tag deploy/readiness.py waits for


@pytest.mark.parametrize("env_name,stack_id,knobs", [
    ("dev", "ServerInit", {}),  # a new cluster
    ("prod", "Servers", {"api_up_after": 0}),  # a joining server
    ("prod", "AgentPoolGeneral", {"api_up_after": 0}),
])
def test_a_boot_that_succeeds_tags_itself_ready_once_right_before_success(sandbox, rendered, env_name, stack_id,
                                                                           knobs):
    run = sandbox.run(expand(rendered[env_name].templates[stack_id]), **knobs)
    assert run.returncode == 0, run.stderr
    assert run.tags == [READY]
    tagged, signalled = run.position("aws", "create-tags"), run.position("aws", "signal-resource")
    assert 0 <= tagged == signalled - 1  # nothing between the two
    assert run.statuses == ["SUCCESS"]


@pytest.mark.parametrize("stack_id,knobs", [
    ("Servers", {"api_up_after": 0, "node_ready": False}),
    ("Servers", {"api_up_after": None, "join_attempts": 2}),
    ("AgentPoolGeneral", {"api_up_after": 0, "node_appears": False}),
], ids=["server never ready", "API never answers", "agent's Node never appears"])
def test_a_boot_that_fails_never_tags_itself_ready(sandbox, rendered, stack_id, knobs):
    run = sandbox.run(expand(rendered["prod"].templates[stack_id]), **knobs)
    assert run.returncode == 1
    assert run.tags == [] and not [c for c in run.aws_calls if "create-tags" in c]
    assert run.statuses == ["FAILURE"]


def test_an_agent_whose_node_never_appears_fails(sandbox, rendered):
    run = sandbox.run(expand(rendered["prod"].templates["AgentPoolGeneral"]), api_up_after=0, node_appears=False)
    assert run.returncode == 1
    assert "its Node never appeared" in run.stderr
    get_node = ["kubectl", "--kubeconfig", str(run.path(k3s_config.KUBELET_KUBECONFIG)), "get", "node", INSTANCE_ID]
    assert run.k3s_calls == [get_node] * READY_ATTEMPTS  # bounded, each after a healthy kubelet
    assert run.statuses == ["FAILURE"]


def test_an_agent_succeeds_once_its_node_exists(sandbox, rendered):
    run = sandbox.run(expand(rendered["prod"].templates["AgentPoolGeneral"]), api_up_after=0)
    assert run.returncode == 0, run.stderr
    assert run.position("curl", "http://127.0.0.1:10248/healthz") < run.position("k3s", "get", "node", INSTANCE_ID) \
        < run.position("aws", "create-tags") < run.position("aws", "signal-resource")
    assert run.statuses == ["SUCCESS"]


def test_a_server_that_succeeds_starts_its_watch_as_a_service_before_it_says_so(sandbox, rendered):
    """The watch (`<boot script> watch`) runs from then on as a systemd service, restarted if
    it stops (systemd.service(5): Restart=always)."""
    run = sandbox.run(expand(rendered["prod"].templates["Servers"]), api_up_after=0)
    assert run.returncode == 0, run.stderr
    unit = run.path("/etc/systemd/system/k3s-infra-watch.service").read_text().splitlines()
    assert f"ExecStart={bootstrap.BOOT_SCRIPT} watch" in unit and "Restart=always" in unit
    assert bootstrap.BOOT_SCRIPT in run.files  # the script cloud-init wrote
    assert run.state["watch_started"]
    assert run.position("systemctl", "enable", "--now", "k3s-infra-watch") < run.position("aws", "create-tags")
