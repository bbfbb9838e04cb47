"""deploy/node_access.py's Run Command bounds, against botocore's Stubber with strict expected
parameters (botocore ssm service-2.json: SendCommand's TimeoutSeconds is 30 to 2592000).

AWS-RunShellScript's ``executionTimeout`` takes 1 to 172800 seconds (48 hours: AWS Systems Manager
User Guide, "Understanding command timeout values"; the document's allowedPattern ends at 172800),
so a longer wait is still one command, whose script may run 48 hours at most; ``timeout`` bounds
the delivery too (TimeoutSeconds). ``tick`` sleeps one poll, or less when the deadline is nearer,
and gives up only once the deadline has passed."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from k3s_infra.deploy import DeployError, node_access

NODE = "i-0123456789abcdef0"
COMMAND_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
TWO_DAYS = 172800  # AWS-RunShellScript executionTimeout's maximum (48 hours)
DELIVERY_MAX = 2592000  # SendCommand TimeoutSeconds' maximum (service-2.json)


class _Aws:
    def __init__(self):
        self.ssm = boto3.client("ssm", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x",
                                endpoint_url="https://ssm.invalid")


@pytest.mark.parametrize("timeout, delivery, execution", [
    (10, 30, "10"),                    # SendCommand takes no TimeoutSeconds under 30
    (900, 900, "900"),
    (TWO_DAYS, TWO_DAYS, str(TWO_DAYS)),
    (TWO_DAYS + 1, TWO_DAYS + 1, str(TWO_DAYS)),  # the script's 48 hours; delivery may take longer
    (DELIVERY_MAX, DELIVERY_MAX, str(TWO_DAYS)),
])
def test_the_timeout_bounds_delivery_and_script_within_what_run_command_accepts(timeout, delivery, execution):
    aws = _Aws()
    with Stubber(aws.ssm) as stub:
        stub.add_response("send_command", {"Command": {"CommandId": COMMAND_ID, "DocumentName": "AWS-RunShellScript",
                                                       "InstanceIds": [NODE], "Status": "Pending"}},
                          {"InstanceIds": [NODE], "DocumentName": "AWS-RunShellScript", "Comment": "k3s-infra",
                           "TimeoutSeconds": delivery,
                           "Parameters": {"commands": ["true"], "executionTimeout": [execution]}})
        assert node_access.send_shell(aws, NODE, ["true"], timeout=timeout, comment="k3s-infra") == COMMAND_ID
        stub.assert_no_pending_responses()


class _Clock:
    def __init__(self, now):
        self.now, self.slept = now, []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize("left, slept", [(30.0, 5.0), (5.0, 5.0), (0.5, 0.5), (0.001, 0.001)])
def test_tick_sleeps_a_poll_or_what_is_left_before_the_deadline(monkeypatch, left, slept):
    clock = _Clock(1000.0)
    monkeypatch.setattr(node_access.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(node_access.time, "sleep", clock.sleep)
    node_access.tick((1000.0 + left, 5.0, 60.0), "the command")
    assert clock.slept == [pytest.approx(slept)]


@pytest.mark.parametrize("late", [0.0, 0.5, 60.0])
def test_tick_gives_up_once_the_deadline_has_passed(monkeypatch, late):
    clock = _Clock(1000.0 + late)
    monkeypatch.setattr(node_access.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(node_access.time, "sleep", clock.sleep)
    with pytest.raises(DeployError, match="gave up after 60s waiting for the command"):
        node_access.tick((1000.0, 5.0, 60.0), "the command")
    assert clock.slept == []
