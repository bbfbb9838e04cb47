"""StackTemplate: the one door through which resources, parameters and outputs
enter a template. It checks logical IDs, refuses duplicates and applies every
tag (the stack's, a component's extra ones, the Name), so components never tag
or name things by hand.
"""

from __future__ import annotations

from typing import TypeVar

from troposphere import AWSObject, Output, Parameter, Sub, Tags, Template, autoscaling

from k3s_infra.model import limits, naming

R = TypeVar("R", bound=AWSObject)


class StackTemplate:
    def __init__(self, description: str, tags: dict[str, str]):
        self.template = Template(Description=description)
        self.tags = tags

    def add(self, resource: R, *, name_tag: bool = True, tags: dict[str, str] | None = None) -> R:
        """Add a resource with the stack's tags, ``tags`` over them, and its Name tag."""
        naming.check_logical_id(resource.title)
        if resource.title in self.template.resources:
            raise ValueError(f"duplicate logical ID {resource.title}")
        self._guard("resources", self.template.resources, limits.MAX_RESOURCES)
        if "Tags" in resource.props:
            if "Tags" in resource.properties:
                raise ValueError(f"{resource.title}: tags are applied by StackTemplate.add (tags=...)")
            if resource.props["Tags"][0] is dict:  # e.g. SSM parameters take a plain mapping
                resource.Tags = self.tags_for(tags)
            else:
                named = {"Name": Sub(naming.name_tag(resource.title))} if name_tag else {}
                # Auto Scaling tags carry PropagateAtLaunch (true: instances get them too).
                kind = autoscaling.Tags if isinstance(resource, autoscaling.AutoScalingGroup) else Tags
                resource.Tags = kind(**self.tags_for(tags), **named)
        elif tags is not None:
            raise ValueError(f"{resource.title}: {resource.resource_type} takes no tags")
        return self.template.add_resource(resource)

    def tags_for(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The stack's tags with ``extra`` over them (launch templates pass these on to
        the instances and volumes they start)."""
        return {**self.tags, **(extra or {})}

    def _guard(self, what: str, present: dict, limit: int) -> None:
        # troposphere stops at the same quotas, but with a bare ValueError.
        if len(present) >= limit:
            raise limits.LimitError(self.template.description, [
                ("", f"more than {limit} {what}; CloudFormation allows at most {limit}")])

    def parameter(self, name: str, type_: str, description: str, **kwargs) -> Parameter:
        self._guard("parameters", self.template.parameters, limits.MAX_PARAMETERS)
        return self.template.add_parameter(Parameter(
            naming.check_logical_id(name), Type=type_, Description=description, **kwargs))

    def output(self, name: str, value, description: str) -> Output:
        self._guard("outputs", self.template.outputs, limits.MAX_OUTPUTS)
        return self.template.add_output(Output(naming.check_logical_id(name), Value=value,
                                               Description=description))

    @staticmethod
    def skip_check(resource: AWSObject, check_id: str, reason: str) -> None:
        """Record a checkov check that does not apply to this resource, with the reason."""
        metadata = dict(getattr(resource, "Metadata", None) or {})
        skips = list(metadata.get("checkov", {}).get("skip", []))
        skips.append({"id": check_id, "comment": reason})
        metadata["checkov"] = {"skip": skips}
        resource.Metadata = metadata

    @staticmethod
    def set_retention(resource: AWSObject, retain: bool) -> None:
        """Data that must survive a stack delete or replacement in protected environments.
        RetainExceptOnCreate keeps it on delete but not when a failed first create rolls back
        (Retain would keep it then too, and the retry fails on the fixed names); it is valid
        for DeletionPolicy only, so replacement keeps the old one with Retain
        (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html,
        .../aws-attribute-updatereplacepolicy.html)."""
        resource.DeletionPolicy = "RetainExceptOnCreate" if retain else "Delete"
        resource.UpdateReplacePolicy = "Retain" if retain else "Delete"
