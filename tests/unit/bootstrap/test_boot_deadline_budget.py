"""One deadline bounds every wait of a node's boot (issue 21, item 8): it ends, with the
FAILURE signal's own allowance, before CloudFormation stops waiting for the signal, so a node
that gives up is always heard. CreationPolicy and UpdatePolicy PauseTime are ISO 8601
durations (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-creationpolicy.html:
"Timeout ... in ISO8601 duration format, in the format: PT#H#M#S")."""

from __future__ import annotations

import re

from k3s_infra.config import defaults
from tests.support.boot_sandbox import boot_env, expand
from tests.support.oracle_helpers import node_stack_ids

# cloud-init starts the script some time after the instance launched: a generous bound.
CLOUD_INIT_START = 60


def _seconds(duration: str) -> int:
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", duration)
    assert match, duration
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def test_the_boot_deadline_and_its_signal_end_before_cloudformation_stops_waiting(rendered):
    for name in ("dev", "prod", "staging"):
        templates = rendered[name].templates
        for stack_id in node_stack_ids(templates):
            template = templates[stack_id]
            (group,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"]
            # A group created empty has no CreationPolicy (components/auto_scaling_group.py).
            timeouts = {_seconds(group["UpdatePolicy"]["AutoScalingRollingUpdate"]["PauseTime"])} | (
                {_seconds(group["CreationPolicy"]["ResourceSignal"]["Timeout"])} if "CreationPolicy" in group else set())
            settings = boot_env(expand(template))
            deadline, allowance = int(settings["BOOT_DEADLINE"]), int(settings["SIGNAL_ALLOWANCE"])
            assert CLOUD_INIT_START + deadline + allowance < min(timeouts), (name, stack_id)
            # ...and the first start of K3s alone fits inside it many times over.
            assert int(settings["START_TIMEOUT"]) < deadline


def test_a_joiner_waits_longer_than_the_first_server_may_take(rendered):
    """A first create starts every node group together (stacks/root.py): a joining server or an
    agent waits at boot for the first server's API and token, so it may not give up while the
    first server can still signal (review of issue 25: else every joiner fails a slow create)."""
    for name in ("dev", "prod"):
        templates = rendered[name].templates
        first = [r for r in templates["ServerInit"]["Resources"].values()
                 if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"][0]
        first_signal = _seconds(first["CreationPolicy"]["ResourceSignal"]["Timeout"])
        for stack_id in node_stack_ids(templates):
            if stack_id == "ServerInit":
                continue
            deadline = int(boot_env(expand(templates[stack_id]))["BOOT_DEADLINE"])
            assert deadline > first_signal + int(defaults.BOOT_WAITS["RETRY_MAX"]), (name, stack_id)
