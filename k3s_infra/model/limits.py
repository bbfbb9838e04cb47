"""CloudFormation service quotas, checked at render time so a too-large cluster
description fails with a clear message instead of a failed deploy."""

from __future__ import annotations

from k3s_infra.config import ConfigError, Environment
from k3s_infra.model import naming, roles

MAX_RESOURCES = 500
MAX_PARAMETERS = 200
MAX_OUTPUTS = 200
MAX_TEMPLATE_BYTES = 1_000_000  # body uploaded to S3 (TemplateURL)
# EC2 counts the user data in raw form, after Fn::Sub expansion and before base64:
# "User data is limited to 16 KB, in raw form, before it is base64-encoded"
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html);
# CreateLaunchTemplateVersion checks the base64-decoded length (InvalidUserData.Malformed,
# hashicorp/terraform-provider-aws#49234).
MAX_USER_DATA_BYTES = 16 * 1024


class LimitError(ConfigError):
    """The environment renders a template beyond a CloudFormation or EC2 limit."""


def check_body(environment: str, file_name: str, body: str) -> None:
    """Counts of resources, parameters and outputs are guarded by StackTemplate as they are added."""
    size = len(body.encode())
    if size > MAX_TEMPLATE_BYTES:
        raise LimitError(f"environment {environment}", [
            ("", f"{file_name} is {size:,} bytes; CloudFormation allows at most {MAX_TEMPLATE_BYTES:,}")])


def check_environment(env: Environment, source: str | None = None) -> None:
    """AWS limits of the tags an environment puts on its node groups: with the cluster
    autoscaler on, one node-template tag per pool label and taint (naming.autoscaler_tags)."""
    if not env.autoscaling:
        return
    problems = []
    for pool in env.agent_pools:
        where = f"agent_pools[{pool.name}]"
        scaling = naming.autoscaler_tags(env, pool)
        long_keys = [key for key in scaling if len(key) > naming.TAG_KEY_MAX]
        for key in long_keys:
            problems.append((where, f"the autoscaler tag {key!r} is longer than the {naming.TAG_KEY_MAX} "
                                    "characters AWS allows in a tag key; shorten the label/taint key (or the stack name)"))
        count = len({**roles.AGENT.tags(env, pool), "Name": "", **scaling})
        if count > naming.GROUP_TAGS_MAX:
            problems.append((where, f"its auto scaling group would carry {count} tags (AWS allows "
                                    f"{naming.GROUP_TAGS_MAX}); the autoscaler adds one per label and taint: "
                                    "use fewer labels, taints or deploy.tags"))
    if problems:
        raise LimitError(source or f"environment {env.name}", problems)
