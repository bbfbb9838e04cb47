"""A stand-in for the nodes' boot on the moto server: moto 5.2.5 launches an auto scaling
group's instances but runs nothing on them, so none would ever tag itself ready and every
deploy would wait for nodes (k3s_infra/deploy/readiness.py) until it gives up. Here each
instance a group launches tags itself ``k3s-infra:ready=true`` at once, as the last step of
boot.sh does on AWS; ``silent()`` launches nodes whose boot never gets there, and
``finish_boot`` is that boot finishing later. The product is unchanged."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

MOTO_VERSION = "5.2.5"
# The contract with boot.sh (its last step): the key and value a node tags its instance with.
READY = {"k3s-infra:ready": "true"}

_state = {"booting": True}
_lock = threading.Lock()


def apply() -> None:
    """Wrap moto's launch of group instances (FakeAutoScalingGroup.replace_autoscaling_group_instances)."""
    from moto.autoscaling.models import FakeAutoScalingGroup

    launch = FakeAutoScalingGroup.replace_autoscaling_group_instances
    if getattr(launch, "node_boot_stand_in", False):
        return

    def replace_autoscaling_group_instances(self, count_needed, propagated_tags):
        before = {state.instance.id for state in self.instance_states}
        launch(self, count_needed, propagated_tags)
        new = [state.instance.id for state in self.instance_states if state.instance.id not in before]
        with _lock:
            booting = _state["booting"]
        if new and booting:
            self.autoscaling_backend.ec2_backend.create_tags(new, dict(READY))

    replace_autoscaling_group_instances.node_boot_stand_in = True
    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_autoscaling_group_instances


@contextlib.contextmanager
def silent() -> Iterator[None]:
    """Nodes launched meanwhile never report ready (their boot does not finish)."""
    with _lock:
        _state["booting"] = False
    try:
        yield
    finally:
        with _lock:
            _state["booting"] = True


def finish_boot(ec2, instance_ids: list[str]) -> None:
    """What boot.sh's last step asks EC2 for (through the test's own client)."""
    ec2.create_tags(Resources=instance_ids, Tags=[{"Key": k, "Value": v} for k, v in READY.items()])
