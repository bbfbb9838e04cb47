"""Shims for CloudFormation features moto 5.2.5 lacks, applied only inside the emulator's
process (``k3s-infra emulator``, and the tests' moto server). Each one mirrors what real AWS
does; none changes the product's templates or code paths. Seen with moto 5.2.5."""

from __future__ import annotations

from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.elbv2 import models as elbv2_models
from moto.kms import models as kms_models
from moto.ssm import models as ssm_models

from k3s_infra.emulator import shims_elb, shims_identity, shims_kms, shims_secrets
from k3s_infra.emulator.cfn_events import record as _event
from k3s_infra.emulator.shims_secrets import generated_secret_string  # noqa: F401 (tests use it from here)

MOTO_VERSION = "5.2.5"
_applied = False


def shim_nested_stack_outputs() -> None:
    """moto 5.2.5: ``Fn::GetAtt Child.Outputs.X`` raises "'Stack' object has no attribute
    'get_cfn_attribute'". Real CloudFormation resolves it to the nested stack's Output X."""

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name.startswith("Outputs."):
            key = attribute_name.split(".", 1)[1]
            for output in self.outputs or []:
                if output["OutputKey"] == key:
                    return output["OutputValue"]
        raise parsing.UnformattedGetAttTemplateException()

    cfn_models.Stack.get_cfn_attribute = get_cfn_attribute


def shim_network_load_balancer() -> None:
    """moto 5.2.5: an ``AWS::ElasticLoadBalancingV2::LoadBalancer`` made through
    CloudFormation ignores ``Type: network`` (becomes an ALB) and then refuses a TCP
    listener. Real CloudFormation creates a network load balancer."""

    @classmethod
    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        backend = elbv2_models.elbv2_backends[account_id][region_name]
        return backend.create_load_balancer(
            props.get("Name", resource_name), props.get("SecurityGroups", []), props.get("Subnets"),
            scheme=props.get("Scheme", "internet-facing"), loadbalancer_type=props.get("Type", "application"))

    elbv2_models.FakeLoadBalancer.create_from_cloudformation_json = create


def shim_kms_key_tags() -> None:
    """moto 5.2.5: ``AWS::KMS::Key`` with CloudFormation-style ``Tags`` ({Key, Value}) fails
    with KeyError 'TagKey' (the KMS API spells them TagKey/TagValue). Real CloudFormation
    tags the key."""
    original = kms_models.Key.create_from_cloudformation_json.__func__

    @classmethod
    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        props["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in props.get("Tags", [])]
        return original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    kms_models.Key.create_from_cloudformation_json = create


def shim_ssm_parameter_tags() -> None:
    """moto 5.2.5: ``AWS::SSM::Parameter`` Tags are a JSON map in CloudFormation (unlike most
    resources); moto passes the map to PutParameter, which wants [{Key, Value}], and fails with
    "string indices must be integers". Real CloudFormation tags the parameter."""
    original = ssm_models.Parameter.create_from_cloudformation_json.__func__

    @classmethod
    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        props = cloudformation_json["Properties"]
        if isinstance(props.get("Tags"), dict):
            props["Tags"] = [{"Key": k, "Value": v} for k, v in props["Tags"].items()]
        return original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    ssm_models.Parameter.create_from_cloudformation_json = create


class _ResourceFailed(Exception):
    def __init__(self, logical_id: str, reason: str, stuck: tuple[str, ...] = ()):
        super().__init__(reason)
        self.logical_id, self.reason, self.stuck = logical_id, reason, stuck


def _owner(resources_map) -> Any:
    backend = cfn_models.cloudformation_backends[resources_map._account_id][resources_map._region_name]
    return backend.stacks.get(resources_map.stack_id)


def _roll_back(stack, failed: list[str], stuck: tuple[str, ...] = ()) -> None:
    """Delete what the failed create made. As in CloudFormation's stack status reference
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html#cfn-console-view-stack-data-resources-status-codes):
    a resource that cannot be deleted is ``DELETE_FAILED`` and the stack ends ``ROLLBACK_FAILED``
    ("The following resource(s) failed to delete: [...]"), else ``ROLLBACK_COMPLETE``.
    ``stuck`` names resources already known undeletable (a nested stack whose rollback failed)."""
    _event(stack, stack.name, "AWS::CloudFormation::Stack", "ROLLBACK_IN_PROGRESS",
           f"The following resource(s) failed to create: [{', '.join(failed)}]. Rollback requested by user.",
           stack.stack_id)
    resources = stack.resource_map
    undeleted = list(stuck)
    try:
        resources.delete()
    except Exception as exc:  # noqa: BLE001 - moto raises the last delete error after its retry passes
        reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        for logical_id, resource in resources._parsed_resources.items():
            if isinstance(resource, str) or resource is None or \
                    resources._resource_json_map.get(logical_id, {}).get("DeletionPolicy") == "Retain":
                continue
            undeleted.append(logical_id)
            _event(stack, logical_id, resources._resource_json_map[logical_id].get("Type", ""), "DELETE_FAILED",
                   reason)
    if undeleted:
        stack.status = "ROLLBACK_FAILED"
        _event(stack, stack.name, "AWS::CloudFormation::Stack", "ROLLBACK_FAILED",
               f"The following resource(s) failed to delete: [{', '.join(sorted(undeleted))}].", stack.stack_id)
        return
    resources._resource_json_map = {}  # nothing left to list (or lazily re-create)
    stack.status = "ROLLBACK_COMPLETE"
    _event(stack, stack.name, "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", None, stack.stack_id)


def shim_failure_and_rollback() -> None:
    """moto 5.2.5: a resource that fails to create raises straight out of ExecuteChangeSet
    (an HTTP error) and leaves the stack CREATE_IN_PROGRESS, with stack-level events only.
    Real CloudFormation accepts the execution, records ``<LogicalId> CREATE_FAILED <reason>``,
    fails a parent's nested-stack resource with "Embedded stack ... was not successfully
    created", deletes what it created and ends in ROLLBACK_COMPLETE."""
    original_create = parsing.parse_and_create_resource
    original_execute = cfn_models.CloudFormationBackend.execute_change_set
    original_nested = cfn_models.Stack.create_from_cloudformation_json.__func__

    def parse_and_create_resource(logical_id, resource_json, resources_map, account_id, region_name):
        try:
            return original_create(logical_id, resource_json, resources_map, account_id, region_name)
        except _ResourceFailed as exc:  # a nested stack failed: its parent resource fails too
            reason, stuck = exc.reason, exc.stuck
        except Exception as exc:  # noqa: BLE001 - any error is a failed resource
            reason, stuck = getattr(exc, "message", None) or str(exc) or type(exc).__name__, ()
        stack = _owner(resources_map)
        if stack is not None:
            _event(stack, logical_id, resource_json.get("Type", ""), "CREATE_FAILED", reason)
        raise _ResourceFailed(logical_id, reason, stuck)

    @classmethod
    def create_nested(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        try:
            return original_nested(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        except _ResourceFailed as exc:
            backend = cfn_models.cloudformation_backends[account_id][region_name]
            child = next((s for s in backend.stacks.values() if s.name == resource_name), None)
            stuck: tuple[str, ...] = ()
            if child is not None:  # the parent's rollback then deletes the failed nested stack
                _roll_back(child, [exc.logical_id], exc.stuck)
                if child.status == "ROLLBACK_FAILED":
                    stuck = (resource_name,)  # the parent cannot delete it either
                else:
                    backend.delete_stack(child.stack_id)
            raise _ResourceFailed(resource_name, f"Embedded stack {child.stack_id if child else resource_name} "
                                                 f"was not successfully created: The following resource(s) "
                                                 f"failed to create: [{exc.logical_id}].", stuck)

    def execute_change_set(self, change_set_name, stack_name=None):
        try:
            return original_execute(self, change_set_name, stack_name)
        except _ResourceFailed as exc:
            change_set = self.describe_change_set(change_set_name)
            change_set.execution_status = "EXECUTE_FAILED"
            _roll_back(self.stacks[change_set.stack_id], [exc.logical_id], exc.stuck)

    parsing.parse_and_create_resource = parse_and_create_resource
    cfn_models.Stack.create_from_cloudformation_json = create_nested
    cfn_models.CloudFormationBackend.execute_change_set = execute_change_set


def shim_change_set_outputs() -> None:
    """moto 5.2.5: a stack created through a change set never gets Outputs (its output map is
    built from the empty template the change set starts with). Real CloudFormation shows the
    template's Outputs once the execution completes."""
    original = cfn_models.CloudFormationBackend.execute_change_set

    def execute_change_set(self, change_set_name, stack_name=None):
        result = original(self, change_set_name, stack_name)
        stack = self.stacks.get(self.describe_change_set(change_set_name).stack_id)
        if stack is not None and stack.status.endswith("_COMPLETE") and "ROLLBACK" not in stack.status:
            stack._parse_template()
            stack.output_map = stack._create_output_map()
        return result

    cfn_models.CloudFormationBackend.execute_change_set = execute_change_set


def shim_deleted_stack_resources() -> None:
    """moto 5.2.5: ListStackResources on a deleted stack walks its lazy resource map and so
    re-creates the deleted resources (or fails on their deleted dependencies). Real
    CloudFormation creates nothing; a deleted stack's resources are simply gone."""
    original = cfn_models.Stack.delete

    def delete(self):
        # moto 5.2.5 keeps only DeletionPolicy "Retain" on DeleteStack. Real CloudFormation also
        # keeps "RetainExceptOnCreate" then (a failed create's rollback, _roll_back above,
        # deletes it: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html).
        for resource in self.resource_map._resource_json_map.values():
            if resource.get("DeletionPolicy") == "RetainExceptOnCreate":
                resource["DeletionPolicy"] = "Retain"
        original(self)
        self.resource_map._resource_json_map = {}

    cfn_models.Stack.delete = delete


def shim_termination_protection() -> None:
    """moto 5.2.5: UpdateTerminationProtection is not implemented (HTTP 500) and DeleteStack
    ignores the flag. Real CloudFormation sets it (change sets cannot, hence the separate
    call) and refuses to delete a protected stack with a ValidationError."""
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import ActionResult

    def update_termination_protection(self):
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        stack.enable_termination_protection = str(self._get_param("EnableTerminationProtection")).lower() == "true"
        return ActionResult({"StackId": stack.stack_id})

    original_delete = cfn_models.CloudFormationBackend.delete_stack

    def delete_stack(self, name_or_stack_id):
        stack = next((s for s in self.stacks.values() if name_or_stack_id in (s.name, s.stack_id)), None)
        if stack is not None and stack.enable_termination_protection:
            raise ValidationError(message=f"Stack [{stack.name}] cannot be deleted while TerminationProtection "
                                          f"is enabled")
        return original_delete(self, name_or_stack_id)

    CloudFormationResponse.update_termination_protection = update_termination_protection
    cfn_models.CloudFormationBackend.delete_stack = delete_stack


def shim_unsupported_resources_in_listing() -> None:
    """moto 5.2.5: a resource type its CloudFormation does not model (here AWS::S3::BucketPolicy,
    AWS::EC2::SecurityGroupEgress) is skipped, yet DescribeStackResources lists it as an entry
    with no LogicalResourceId, type or physical ID. Real CloudFormation creates it and lists it
    fully; leaving the skipped ones out keeps every listed entry well-formed."""
    original = cfn_models.CloudFormationBackend.describe_stack_resources

    def describe_stack_resources(self, stack_name, logical_resource_id):
        stack, resources = original(self, stack_name, logical_resource_id)
        return stack, [r for r in resources if getattr(r, "logical_resource_id", None)]

    cfn_models.CloudFormationBackend.describe_stack_resources = describe_stack_resources


def shim_unchanged_change_set() -> None:
    """moto 5.2.5: CreateChangeSet with Parameters identical to the stack's (and the same
    template) raises "No updates are to be performed" as UpdateStack does. Real CloudFormation
    creates the change set, which ends FAILED with "The submitted information didn't contain
    changes" (moto's own backend already models that; only the early check is skipped)."""
    from moto.cloudformation.responses import CloudFormationResponse

    original = CloudFormationResponse._validate_different_update

    def validate_different_update(self, incoming_params, stack_body, old_stack):
        if self._get_action() == "CreateChangeSet":
            return None
        return original(self, incoming_params, stack_body, old_stack)

    CloudFormationResponse._validate_different_update = validate_different_update


def shim_bucket_versioning() -> None:
    """moto 5.2.5: an ``AWS::S3::Bucket`` made through CloudFormation ignores
    ``VersioningConfiguration``. Real CloudFormation creates the bucket versioned."""
    from moto.s3 import models as s3_models

    original = s3_models.FakeBucket.create_from_cloudformation_json.__func__

    @classmethod
    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        bucket = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        status = cloudformation_json.get("Properties", {}).get("VersioningConfiguration", {}).get("Status")
        if status:
            bucket.versioning_status = status
        return bucket

    s3_models.FakeBucket.create_from_cloudformation_json = create


def shim_ssm_parameter_values() -> None:
    """moto 5.2.5: DescribeStacks reports an ``AWS::SSM::Parameter::Value<...>`` parameter's
    resolved value (an AMI ID) as ParameterValue. Real CloudFormation reports the SSM
    parameter name as ParameterValue and the value in ResolvedValue ("returned only for
    SSM parameter types": https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_Parameter.html)."""
    resolved = cfn_models.Stack.parameter_list.fget

    def parameter_list(self) -> list[dict[str, Any]]:
        slots = (self.template_dict or {}).get("Parameters", {})
        result = []
        for item in resolved(self):
            slot = slots.get(item["ParameterKey"], {})
            if str(slot.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
                name = (self.parameters or {}).get(item["ParameterKey"], slot.get("Default"))
                item = {**item, "ParameterValue": name, "ResolvedValue": item["ParameterValue"]}
            result.append(item)
        return result

    cfn_models.Stack.parameter_list = property(parameter_list)


def shim_network_deletion() -> None:
    """moto 5.2.5: a stack delete leaves ``AWS::EC2::RouteTable``, ``AWS::EC2::NatGateway`` and
    ``AWS::EC2::VPCEndpoint`` behind (no ``delete_from_cloudformation_json``), and the leftover
    route tables then block the VPC's delete (DependencyViolation). Real CloudFormation deletes
    them with the stack (the Network stack of ``network.create``)."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.nat_gateways import NatGateway
    from moto.ec2.models.route_tables import RouteTable
    from moto.ec2.models.vpcs import VPCEndPoint

    deletes = {RouteTable: lambda ec2, rid: ec2.delete_route_table(rid),
               NatGateway: lambda ec2, rid: ec2.delete_nat_gateway(rid),
               VPCEndPoint: lambda ec2, rid: ec2.delete_vpc_endpoints([rid])}
    for model, delete in deletes.items():
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,
                                            _delete=delete):
            _delete(ec2_backends[account_id][region_name], resource_name)

        model.delete_from_cloudformation_json = classmethod(delete_from_cloudformation_json)


def apply() -> None:
    global _applied
    if _applied:
        return
    import moto

    assert moto.__version__.startswith("5.2."), f"shims written for moto {MOTO_VERSION}, found {moto.__version__}"
    shim_nested_stack_outputs()
    shim_network_load_balancer()
    shim_kms_key_tags()
    shims_kms.shim_kms_key_policy()  # these two wrap the create above
    shims_kms.shim_kms_key_deletion()
    shim_ssm_parameter_tags()
    shims_secrets.shim_secrets_manager_secret()
    shim_failure_and_rollback()
    shim_change_set_outputs()
    shim_deleted_stack_resources()
    shim_termination_protection()
    shim_unsupported_resources_in_listing()
    shim_unchanged_change_set()
    shim_bucket_versioning()
    shim_ssm_parameter_values()
    shim_network_deletion()
    shims_identity.apply()  # the Identity stack's resources
    shims_elb.apply()  # refusals while load balancers and security groups are in use
    _applied = True
