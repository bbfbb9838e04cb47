"""The node roles' SSM Agent permissions (components/iam.py ssm_agent_statements), per the
environment's node_access, read from the rendered NodeIam stack.

Oracles: the actions are those of AWS's AmazonSSMManagedInstanceCore for the two message
channels (AWS Managed Policy Reference, AmazonSSMManagedInstanceCore: ssmmessages
Create/Open Control/Data Channel; ec2messages Acknowledge/Delete/Fail Message, GetEndpoint,
GetMessages, SendReply) and its ssm:UpdateInstanceInformation, the agent's registration; the
Session Manager instance-profile minimum is registration plus the four ssmmessages actions
(AWS Systems Manager User Guide, "Step 2: Verify or add instance permissions for Session
Manager"). All on "*" as both AWS policies grant them (AmazonSSMManagedInstanceCore,
AmazonSSMManagedEC2InstanceDefaultPolicy): the two channel services define no resource type, and
for UpdateInstanceInformation the Service Authorization Reference lists two (ec2 instance, ssm
managed-instance) without saying which ARN an EC2 instance's agent is evaluated against, so a
scoped grant could leave nodes unregistered. ssmmessages also delivers Run Command (User Guide,
"Reference: ec2messages, ssmmessages, and other API operations"): sessions on without commands is
refused."""

from __future__ import annotations

import pytest

from k3s_infra.config import ConfigError, available_environments, environment_file, read_document, validate
from tests.support.rendering import rendered_templates

SESSION_CHANNEL = {"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
                   "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"}
COMMAND_CHANNEL = {"ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage",
                   "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply"}
ROLES = ("FirstServerRole", "ServerRole", "AgentRole")


def _roles(templates) -> dict[str, list[dict]]:
    resources = templates["NodeIam"]["Resources"]
    return {name: [s for p in resources[name]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
            for name in ROLES}


def _actions(statement) -> set[str]:
    actions = statement["Action"]
    return set(actions if isinstance(actions, list) else [actions])


def _env(name: str, node_access: dict | None):
    document = read_document(environment_file(name))
    document.pop("extends", None)
    if node_access is not None:
        document["node_access"] = node_access
    return validate(document, f"{name}.yaml")


@pytest.mark.parametrize("name", available_environments())
def test_every_node_role_lets_its_agent_register_and_open_both_channels_by_default(rendered, name):
    for role, statements in _roles(rendered[name].templates).items():
        by_sid = {s["Sid"]: s for s in statements}
        registration = by_sid["SsmAgentRegistration"]
        assert _actions(registration) == {"ssm:UpdateInstanceInformation"}, role
        assert _actions(by_sid["SsmAgentSessionChannel"]) == SESSION_CHANNEL
        assert _actions(by_sid["SsmAgentCommandChannel"]) == COMMAND_CHANNEL
        for sid in ("SsmAgentRegistration", "SsmAgentSessionChannel", "SsmAgentCommandChannel"):
            assert by_sid[sid]["Resource"] == ["*"] and "Condition" not in by_sid[sid]
        # nothing else of SSM's agent-side API: no State Manager, Inventory, Patch Manager
        granted = {a for s in statements for a in _actions(s)}
        assert not {a for a in granted if a.startswith("ssm:") and a != "ssm:UpdateInstanceInformation"} - {
            "ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter"}, role  # the boot's own parameters


@pytest.mark.parametrize("name", available_environments())
def test_sessions_off_leaves_no_ssmmessages_but_run_command_stays(name):
    statements = _roles(rendered_templates(_env(name, {"session_manager": False})))
    for role, found in statements.items():
        granted = {a for s in found for a in _actions(s)}
        assert not any(a.startswith("ssmmessages:") for a in granted), role
        assert COMMAND_CHANNEL <= granted and "ssm:UpdateInstanceInformation" in granted, role


def test_both_off_leaves_the_agent_nothing():
    statements = _roles(rendered_templates(_env("dev", {"session_manager": False, "run_command": False})))
    for role, found in statements.items():
        granted = {a for s in found for a in _actions(s)}
        assert not any(a.startswith(("ssmmessages:", "ec2messages:")) for a in granted), role
        assert "ssm:UpdateInstanceInformation" not in granted, role


def test_commands_off_with_sessions_on_is_refused_naming_the_field():
    with pytest.raises(ConfigError) as error:
        _env("dev", {"run_command": False})
    assert [path for path, _ in error.value.problems] == ["node_access.run_command"]
    assert "ssmmessages" in str(error.value)
