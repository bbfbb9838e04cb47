"""CloudFormation and AWS limits checked at render (k3s_infra/model/limits.py): a template or a
stack beyond a quota is a LimitError naming it, and pools whose tags AWS Auto Scaling would
refuse (one taint per key in the autoscaler's node-template tags, keys of at most 128
characters, at most 50 tags: https://docs.aws.amazon.com/autoscaling/ec2/userguide/autoscaling-tagging.html)
are refused by every render.
"""

from __future__ import annotations

import pytest

from k3s_infra.config import ConfigError, validate
from k3s_infra.model import limits
from k3s_infra.render import render


def test_a_template_beyond_a_quota_is_a_limit_error():
    from troposphere.ssm import Parameter

    from k3s_infra.components.template import StackTemplate

    with pytest.raises(limits.LimitError) as caught:
        limits.check_body("big", "child.yaml", "x" * 1_000_001)
    assert str(caught.value) == \
        "environment big: child.yaml is 1,000,001 bytes; CloudFormation allows at most 1,000,000"

    stack = StackTemplate("k3s-infra big: test", {})
    for i in range(limits.MAX_RESOURCES):
        stack.add(Parameter(f"P{i}", Type="String", Value="v"))
    with pytest.raises(limits.LimitError, match="more than 500 resources"):
        stack.add(Parameter("OneTooMany", Type="String", Value="v"))
    for i in range(limits.MAX_OUTPUTS):
        stack.output(f"O{i}", "v", "output")
    with pytest.raises(limits.LimitError, match="more than 200 outputs"):
        stack.output("OneTooMany", "v", "output")


@pytest.mark.parametrize("change, fragment", [
    ({"taints": ["dedicated=a:NoSchedule", "dedicated=a:NoExecute"]}, "agent_pools[general].taints: dedicated"),
    ({"labels": {"a" * 60 + ".example.com/" + "b" * 40: "x"}}, "longer than the 128 characters"),
    ({"labels": {f"l{i}": "x" for i in range(45)}}, "tags (AWS allows 50)"),
])
def test_pools_whose_tags_aws_would_refuse_are_refused(env_document, change, fragment):
    # Tag limits are checked where the tags are made (model.limits, run by every render).
    document = env_document("dev")
    document["agent_pools"][0].update(change)
    with pytest.raises(ConfigError) as error:
        limits.check_environment(validate(document, "dev.yaml"))
    assert fragment in str(error.value)
    with pytest.raises(ConfigError):
        render(validate(document, "dev.yaml"))
    document["addons"] = {"cluster_autoscaler": {"enabled": False}}
    limits.check_environment(validate(document, "dev.yaml"))  # only the autoscaler's tags need this
