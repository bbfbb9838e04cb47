"""The agent pool stacks (stacks/agent_pool.py): the cluster autoscaler's tags go on the pool's
group only, never on its launch template (they would tag the instances and volumes too).
"""

from __future__ import annotations

import yaml

from tests.support.autoscaler import PREFIX


def test_launch_templates_carry_no_autoscaler_tags(rendered):
    for stack_id, template in rendered["prod"].templates.items():
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::EC2::LaunchTemplate":
                text = yaml.safe_dump(resource)
                assert PREFIX not in text, stack_id
