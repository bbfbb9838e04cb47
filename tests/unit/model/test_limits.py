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


# --- each limit at its boundary: the largest input that passes, the smallest refused ---------------
QUOTAS = "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html"

# (row, template body, refused?): the quota counts bytes ("Template body size in an Amazon S3 object: 1 MB").
BODIES = [
    ("1,000,000 bytes", "x" * limits.MAX_TEMPLATE_BYTES, False),
    ("1,000,001 bytes", "x" * (limits.MAX_TEMPLATE_BYTES + 1), True),
    ("500,000 two-byte characters", "é" * (limits.MAX_TEMPLATE_BYTES // 2), False),
    ("500,000 two-byte characters and one more byte", "é" * (limits.MAX_TEMPLATE_BYTES // 2) + "x", True),
]


@pytest.mark.parametrize("row, body, refused", BODIES, ids=[b[0] for b in BODIES])
def test_a_template_body_is_measured_in_bytes_up_to_the_quota(row, body, refused):
    if refused:
        with pytest.raises(limits.LimitError, match="CloudFormation allows at most 1,000,000"):
            limits.check_body("big", "child.yaml", body)
    else:
        limits.check_body("big", "child.yaml", body)  # QUOTAS


def test_the_200th_parameter_passes_and_the_201st_is_refused():
    from k3s_infra.components.template import StackTemplate

    stack = StackTemplate("k3s-infra big: test", {})
    for i in range(limits.MAX_PARAMETERS):
        stack.parameter(f"P{i}", "String", "p")
    assert len(stack.template.parameters) == 200  # QUOTAS: 200 parameters
    with pytest.raises(limits.LimitError, match="more than 200 parameters"):
        stack.parameter("OneTooMany", "String", "p")


def _group_tags(env) -> dict[str, str]:
    """The general pool's group tags as rendered (the independent count: what AWS receives)."""
    from k3s_infra.render import build_templates

    template = build_templates(env)["AgentPoolGeneral"].to_dict()
    (group,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
    return {tag["Key"]: tag["Value"] for tag in group["Properties"]["Tags"]}


def _with_labels(env_document, labels: dict[str, str]):
    document = env_document("dev")
    document["agent_pools"][0]["labels"] = labels
    return validate(document, "dev.yaml")


def test_an_autoscaler_tag_key_of_128_characters_passes_and_129_is_refused(env_document):
    # label/<key> node-template tags: a 128-character key from a label key of 128 - len(prefix).
    room = 128 - len("k8s.io/cluster-autoscaler/node-template/label/")
    fits = "p" * (room - 64) + "/" + "n" * 63  # a DNS prefix and a 63-character name
    env = _with_labels(env_document, {fits: "x"})
    assert max(len(k) for k in _group_tags(env)) == 128
    limits.check_environment(env)
    too_long = "p" * (room - 63) + "/" + "n" * 63
    with pytest.raises(ConfigError, match="longer than the 128 characters"):
        limits.check_environment(_with_labels(env_document, {too_long: "x"}))


def test_fifty_group_tags_pass_and_fifty_one_are_refused(env_document):
    base = len(_group_tags(_with_labels(env_document, {})))
    fifty = _with_labels(env_document, {f"l{i}": "x" for i in range(50 - base)})
    assert len(_group_tags(fifty)) == 50
    limits.check_environment(fifty)
    with pytest.raises(ConfigError, match=r"would carry 51 tags \(AWS allows 50\)"):
        limits.check_environment(_with_labels(env_document, {f"l{i}": "x" for i in range(51 - base)}))
