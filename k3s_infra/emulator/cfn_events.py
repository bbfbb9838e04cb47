"""A resource or stack event as real CloudFormation records it (moto 5.2.5 records stack-level
events only), for the shims that report failures and rollbacks (shims.py, shims_elb.py)."""

from __future__ import annotations

from moto.cloudformation import models as cfn_models


def record(stack, logical_id: str, resource_type: str, status: str, reason: str | None, physical: str = "") -> None:
    stack.events.append(cfn_models.Event(
        stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
        physical_resource_id=physical, resource_type=resource_type, resource_status=status,
        resource_status_reason=reason, resource_properties=None))
