"""Node IAM stack: a role and instance profile per kind of node (first server, joining servers,
agents). No pod reaches them (IMDS hop limit 1): pods that call AWS have roles of their own
(stacks/identity.py)."""

from __future__ import annotations

import dataclasses

from k3s_infra.bootstrap import bundle
from k3s_infra.components import iam
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import Environment
from k3s_infra.model import addons, naming, roles
from k3s_infra.model import outputs as o
from k3s_infra.stacks.parameters import declare_all


def build(env: Environment) -> StackTemplate:
    t = StackTemplate(f"k3s-infra {env.name}: IAM roles of K3s servers and agents", naming.cluster_tags(env))
    p = declare_all(t, o.TOKEN_SECRET, o.AGENT_TOKEN_SECRET, o.KUBECONFIG_SECRET,
                    o.CLUSTER_STATE_PARAMETER, o.RESTORE_REQUEST_PARAMETER, o.ROOT_STACK_NAME, o.SNAPSHOT_BUCKET,
                    o.CLUSTER_KEY, *(spec.output for spec in addons.secret_specs(env)))
    access = iam.NodeAccess(
        token_secret=p[o.TOKEN_SECRET], agent_token_secret=p[o.AGENT_TOKEN_SECRET],
        kubeconfig_secret=p[o.KUBECONFIG_SECRET], cluster_state_parameter=p[o.CLUSTER_STATE_PARAMETER],
        restore_request_parameter=p[o.RESTORE_REQUEST_PARAMETER], root_stack_name=p[o.ROOT_STACK_NAME],
        snapshot_bucket=p[o.SNAPSHOT_BUCKET], cluster_key=p[o.CLUSTER_KEY], snapshot_folder=naming.snapshot_folder(env),
        cluster=naming.cluster_name(env),
        addon_secrets=tuple(p[spec.output] for spec in addons.secret_specs(env))
        + tuple(value.arn for value in addons.user_secrets(env)),
        k3s_artifacts=f"{env.artifact_bucket}/{naming.k3s_artifacts_prefix(env)}",
        session_manager=env.node_access.session_manager, run_command=env.node_access.run_command)
    if bundle.addons_object(env):
        access = dataclasses.replace(access, addons_objects=f"{env.artifact_bucket}/{naming.addons_prefix(env)}")
    first = iam.build(t, roles.SERVER_INIT.identity, iam.first_server_statements(
        _own_bundle(env, access, roles.SERVER_INIT), roles.SERVER_INIT), cloud_controller=True)
    server = iam.build(t, roles.SERVER.identity, iam.server_statements(
        _own_bundle(env, access, roles.SERVER), roles.SERVER), cloud_controller=True)
    agent = iam.build(t, roles.AGENT.identity, iam.agent_statements(_facts(env, access, roles.AGENT)))
    t.output(o.FIRST_SERVER_INSTANCE_PROFILE, first.instance_profile_arn, "Instance profile of the first server")
    t.output(o.SERVER_INSTANCE_PROFILE, server.instance_profile_arn, "Instance profile of the joining servers")
    t.output(o.AGENT_INSTANCE_PROFILE, agent.instance_profile_arn, "Instance profile of K3s agents")
    t.output(o.FIRST_SERVER_ROLE, first.role_arn, "Role of the first server")
    t.output(o.FIRST_SERVER_ROLE_NAME, first.role_name, "Name of the first server's role")
    t.output(o.SERVER_ROLE, server.role_arn, "Role of the joining servers")
    t.output(o.AGENT_ROLE, agent.role_arn, "Role of K3s agents")
    return t


def _own_bundle(env: Environment, access: iam.NodeAccess, role: roles.Role) -> iam.NodeAccess:
    """Each server role reads only its own node stack's bundle (and its own facts)."""
    return dataclasses.replace(_facts(env, access, role), node_bundles=tuple(bundle.parameter_names(env, role)))


def _facts(env: Environment, access: iam.NodeAccess, role: roles.Role) -> iam.NodeAccess:
    return dataclasses.replace(access, facts=tuple(naming.fact_parameter(env, fact) for fact in role.facts(env)))
