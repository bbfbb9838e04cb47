"""Identity stack: the cluster's OIDC issuer and the IAM role of every service account that
calls AWS (the add-ons' controllers and the environment's ``workload_roles``).

Its CloudFront distribution takes minutes to deploy, so no node stack waits for this one: the
first server reads the issuer's URL and bucket at boot from the SSM parameters it writes
(roles.Role.late), and its right to publish there is the IssuerAccess stack's."""

from __future__ import annotations

from k3s_infra.components import boot_facts, oidc_issuer, workload_iam
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import Environment, defaults, rules
from k3s_infra.model import naming, workload_identity
from k3s_infra.model import outputs as o
from k3s_infra.stacks.parameters import declare_all


def build(env: Environment) -> StackTemplate:
    t = StackTemplate(f"k3s-infra {env.name}: OIDC issuer and IAM roles for service accounts",
                      naming.cluster_tags(env))
    p = declare_all(t, *((o.DRAIN_QUEUE_ARN,) if env.draining else ()))
    issuer = oidc_issuer.build(t, naming.issuer_access_control_name(env),
                               rules.partition_of(env.region)[0] in defaults.CLOUDFRONT_PARTITIONS)
    controllers = {
        "node_termination_handler": lambda: workload_iam.termination_handler_statements(
            naming.cluster_name(env), p[o.DRAIN_QUEUE_ARN]),
        "cluster_autoscaler": lambda: workload_iam.autoscaler_statements(naming.autoscaler_cluster_tag(env)),
    }
    for identity in workload_identity.identities(env):
        statements = (controllers[identity.addon]() if identity.addon
                      else [statement.document() for statement in identity.statements])
        workload_iam.build(t, identity.logical_id, naming.workload_role_name(env, identity.service_account),
                           identity.subject, issuer.provider_arn, issuer.host, statements, identity.policy_arns)
    boot_facts.publish(t, env, "issuer_url", issuer.url)
    boot_facts.publish(t, env, "issuer_bucket", issuer.bucket)
    t.output(o.ISSUER_URL, issuer.url, "OIDC issuer of the cluster's service account tokens")
    t.output(o.ISSUER_BUCKET, issuer.bucket, "Bucket the first server publishes the issuer's documents to")
    t.output(o.OIDC_PROVIDER, issuer.provider_arn, "IAM OIDC provider trusted by the service account roles")
    return t
