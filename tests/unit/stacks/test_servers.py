"""The server stacks (stacks/servers.py): the first server's group of exactly one, the other
servers sized by parameter (growing from one to three servers changes a value, not the shape
of the root; dev's group sized zero still renders, its signal count that parameter), servers
registered with the API target groups and agents not, and server groups never discovered by
the cluster autoscaler.
"""

from __future__ import annotations

import pytest
import yaml

from k3s_infra.model import naming

from tests.support.autoscaler import PREFIX, groups
from tests.support.rendered import node_stacks, public_door


NODE_STACKS = ("ServerInit", "Servers")


def test_servers_register_with_the_api_target_group_and_agents_do_not(r):
    for stack in node_stacks(r):
        (group,) = r.resources(stack, "AWS::AutoScaling::AutoScalingGroup").values()
        both = [{"Ref": "ApiTargetGroupArn"}, *([{"Ref": "PublicApiTargetGroupArn"}] if public_door(r) else [])]
        expected = both if stack in NODE_STACKS else None
        assert group["Properties"].get("TargetGroupARNs") == expected


def test_shape_of_root_does_not_depend_on_server_count(rendered):
    from k3s_infra.config import validate
    from k3s_infra.render import render

    env = rendered["dev"].env
    document = env.model_dump(mode="json")
    document["servers"]["count"] = 3
    # three servers need a third zone (no zone may hold a majority: k3s_infra/model/placement.py)
    document["network"]["subnets"].append({"id": "subnet-0a1b2c3d4e5f60703", "az": "eu-west-1c"})
    grown = render(validate(document, "test"))
    assert [c.file for c in grown.children] == [c.file for c in rendered["dev"].rendering.children]
    same = {c.stack_id: yaml.safe_load(c.body) for c in grown.children}
    before = {c.stack_id: yaml.safe_load(c.body) for c in rendered["dev"].rendering.children}
    # The empty Servers group of one server waits for no signal; two joining servers do
    # (tests/unit/components/test_auto_scaling_group.py). Nothing else differs but the root.
    assert "CreationPolicy" not in before["Servers"]["Resources"][naming.SERVER_GROUP]
    assert same["Servers"]["Resources"][naming.SERVER_GROUP].pop("CreationPolicy")["ResourceSignal"]["Count"] \
        == {"Ref": "DesiredCapacity"}
    assert same == before
    assert grown.root.body != rendered["dev"].rendering.root.body


def test_dev_groups_sized_zero_render_a_zero_parameter(rendered):
    # dev has one server: the Servers group is sized 0 by parameter.
    root = rendered["dev"].root
    values = root["Resources"]["Servers"]["Properties"]["Parameters"]
    assert values["DesiredCapacity"] == "0"


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_server_groups_are_never_discovered(rendered, name):
    for stack_id in ("ServerInit", "Servers"):
        for group in groups(rendered[name].templates[stack_id]):
            assert not [t for t in group["Tags"] if t["Key"].startswith(PREFIX)], stack_id
