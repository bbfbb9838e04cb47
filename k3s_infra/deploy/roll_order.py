"""After a stack's first create: the roll order, recorded.

A first create uses the root without roll order (stacks/root.py: the node stacks start
together); the stack must then hold the ordered root that ``render`` writes and every update
sends, so that ``plan`` and ``diff`` right after a create show nothing to do. The two roots
differ only in ``DependsOn``: this update changes no resource. CloudFormation honours
``DependsOn`` when it creates, updates and deletes resources
(https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-attribute-dependson.html),
so every later update rolls servers before agents, one server group at a time."""

from __future__ import annotations

from botocore.exceptions import ClientError

from k3s_infra.deploy import DeployError, changeset, stack_states
from k3s_infra.deploy.events import Watcher
from k3s_infra.deploy.package import Package
from k3s_infra.deploy.progress import Progress, RollOrderRecorded
from k3s_infra.model import naming


def record(aws, pkg: Package, parameters: list[dict[str, str]], stack_arn: str, on_progress: Progress,
           poll: float) -> str | None:
    """Update the new stack to the ordered root (it changes no resource: CloudFormation reports
    the nested stacks as modified all the same). The final status, or None when CloudFormation
    found nothing to change. Never fatal: the cluster is up; a failure is reported (the next
    update sends the ordered root anyway, but would roll back unordered if it failed)."""
    current = changeset.stack_state(aws.cloudformation, stack_arn)
    try:
        cs = changeset.create(aws, pkg, parameters=parameters, current=current)
    except (DeployError, ClientError) as exc:
        on_progress(RollOrderRecorded(changed=False, problem=str(exc)))
        return None
    if cs.empty:
        changeset.discard(aws, cs)
        on_progress(RollOrderRecorded(changed=False))
        return None
    # Only the nested stacks, as CloudFormation always lists them: anything else is not this.
    unexpected = [c for c in cs.changes if (c.stack, c.action, c.resource_type) !=
                  (naming.ROOT, "Modify", "AWS::CloudFormation::Stack")]
    if unexpected:
        changeset.discard(aws, cs)
        on_progress(RollOrderRecorded(changed=False, problem=f"{unexpected[0].action} {unexpected[0].logical_id} "
                                                             "would change: not executed"))
        return None
    watcher = Watcher(aws.cloudformation, stack_arn, aws.env.stack_name, on_progress=on_progress)
    watcher.prime()
    try:
        changeset.execute(aws, cs)
        status = watcher.wait(poll=poll)
    except (DeployError, ClientError, TimeoutError) as exc:
        on_progress(RollOrderRecorded(changed=False, problem=str(exc)))
        return None
    on_progress(RollOrderRecorded(changed=True) if stack_states.succeeded(status)
                else RollOrderRecorded(changed=False, problem=f"the update ended {status}"))
    return status
