"""Issuer access stack: the first server's right to publish the OIDC issuer's documents.

Apart from the node roles' stack and from the Identity stack: the policy needs the role and
the issuer's bucket, and neither the roles (which every node stack waits for) nor the first
server may wait for the Identity stack's CloudFront distribution. The first server publishes
only after K3s started, which waits for the issuer's URL, so the policy is in place by then
(and publish_issuer retries, bounded, while IAM propagates it)."""

from __future__ import annotations

from k3s_infra.components import iam
from k3s_infra.components.template import StackTemplate
from k3s_infra.config import Environment
from k3s_infra.model import naming
from k3s_infra.model import outputs as o
from k3s_infra.stacks.parameters import declare_all


def build(env: Environment) -> StackTemplate:
    t = StackTemplate(f"k3s-infra {env.name}: the first server's access to the OIDC issuer's bucket",
                      naming.cluster_tags(env))
    p = declare_all(t, o.FIRST_SERVER_ROLE_NAME, o.ISSUER_BUCKET)
    iam.issuer_publisher(t, p[o.FIRST_SERVER_ROLE_NAME], p[o.ISSUER_BUCKET])
    return t
