"""What keeps a protected environment's stack from being deleted by accident: termination
protection on the root stack and deletion protection on its API load balancers.

Both are set by ``deploy`` once the stack is up (``apply``; lifted while an update runs:
``lifted_during_update``), never in the templates: change
sets cannot set termination protection, and a load balancer created with deletion protection
could not be deleted by the rollback of a failed first create (``DeleteLoadBalancer``: "You
can't delete a load balancer if deletion protection is enabled",
https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DeleteLoadBalancer.html),
leaving the stack ROLLBACK_FAILED. The templates leave the attribute out, so no stack update
turns it back off. ``destroy --allow-protected`` lifts both (``lift``).

Functions return data; they never print."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from k3s_infra.deploy import groups
from k3s_infra.model import naming
from k3s_infra.model import outputs as o

LOAD_BALANCER_TYPE = "AWS::ElasticLoadBalancingV2::LoadBalancer"
DELETION_PROTECTION = "deletion_protection.enabled"
_UNREADABLE = (ClientError, ResponseParserError)  # as destroy: go on with a stack that does not list


def load_balancer_name(arn: str) -> str:
    """arn:...:loadbalancer/net/<name>/<id> -> <name>."""
    parts = arn.split("/")
    return parts[-2] if len(parts) >= 4 else arn


def api_load_balancers(aws, root_id: str) -> tuple[str, ...]:
    """ARNs of the API load balancers (the ApiEndpoint nested stack's), found by the stack's
    resources and outputs; () when that stack does not exist (yet)."""
    cfn = aws.cloudformation
    stack = groups.nested_stack(cfn, root_id, naming.STACK_API_ENDPOINT)
    if stack is None:  # no such nested stack (a stack that never got that far)
        return ()
    found = groups.outputs(stack)
    arns = {found[name] for name in (o.API_LOAD_BALANCER, o.PUBLIC_API_LOAD_BALANCER) if name in found}
    try:
        arns |= {r["PhysicalResourceId"] for page in cfn.get_paginator("list_stack_resources").paginate(
                     StackName=stack["StackId"]) for r in page["StackResourceSummaries"]
                 if r.get("ResourceType") == LOAD_BALANCER_TYPE and r.get("PhysicalResourceId")}
    except _UNREADABLE:
        pass  # its outputs named them
    return tuple(sorted(a for a in arns if a.startswith("arn:")))


def _protected(aws, arn: str) -> bool | None:
    """Whether deletion protection is on (None: the load balancer is gone)."""
    try:
        attributes = aws.elbv2.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "LoadBalancerNotFound":
            return None
        raise
    return any(a["Key"] == DELETION_PROTECTION and a.get("Value") == "true" for a in attributes)


def protected_load_balancers(aws, root_id: str) -> tuple[str, ...]:
    """The API load balancers whose deletion protection is on."""
    return tuple(arn for arn in api_load_balancers(aws, root_id) if _protected(aws, arn))


def _set(aws, arns: tuple[str, ...], on: bool) -> None:
    for arn in arns:
        aws.elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=arn, Attributes=[{"Key": DELETION_PROTECTION, "Value": str(on).lower()}])


def lift(aws, arns: tuple[str, ...]) -> None:
    """Deletion protection off on these load balancers, so their stack can delete them."""
    _set(aws, arns, False)


def apply(aws, root_id: str, protected: bool) -> tuple[str, ...]:
    """After a deploy: termination protection of the root and deletion protection of the API
    load balancers as the file says (``protected``), changed only where they differ. Returns
    the names of the load balancers changed."""
    cfn = aws.cloudformation
    current = cfn.describe_stacks(StackName=root_id)["Stacks"][0]
    if bool(current.get("EnableTerminationProtection")) != protected:
        cfn.update_termination_protection(StackName=root_id, EnableTerminationProtection=protected)
    changed = tuple(arn for arn in api_load_balancers(aws, root_id) if _protected(aws, arn) not in (None, protected))
    _set(aws, changed, protected)
    return tuple(map(load_balancer_name, changed))


@contextmanager
def lifted_during_update(aws, root: dict | None, protected: bool) -> Iterator[None]:
    """While an update of an existing stack runs, its API load balancers have no deletion
    protection, so a change that removes or replaces one (api.scheme public to internal) can
    delete it rather than leave it behind, failed and forgotten, outside every stack. After the
    update, however it ended, ``apply`` sets the protection the file asks for."""
    guarded = protected_load_balancers(aws, root["StackId"]) if root is not None else ()
    lift(aws, guarded)
    try:
        yield
    finally:
        if root is not None:
            apply(aws, root["StackId"], protected)
