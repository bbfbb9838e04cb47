"""Refusals real AWS makes while load balancers and security groups are in use, which moto 5.2.5
does not make, and what CloudFormation does when a delete meets one. Without them a destroy that
skipped its cleanup of the cloud controller's load balancers (deploy/leftovers.py), or the lift
of the API load balancers' deletion protection, would pass here and fail on AWS.
Applied by shims.apply(). Seen with moto 5.2.5."""

from __future__ import annotations

from typing import Any

from moto.cloudformation import models as cfn_models
from moto.ec2.exceptions import DependencyViolationError
from moto.ec2.models import security_groups as ec2_security_groups
from moto.ec2.models import subnets as ec2_subnets
from moto.ec2.models import vpcs as ec2_vpcs
from moto.elb import models as elb_models
from moto.elbv2 import models as elbv2_models
from moto.elbv2.exceptions import ELBClientError

from k3s_infra.emulator.cfn_events import record as _event

MOTO_VERSION = "5.2.5"


def _load_balancers(account_id: str, region: str) -> list[Any]:
    """Every load balancer of the account and region: elbv2 (ALB, NLB) and classic."""
    return [*elbv2_models.elbv2_backends[account_id][region].load_balancers.values(),
            *elb_models.elb_backends[account_id][region].load_balancers.values()]


def _subnet_ids(balancer: Any) -> set[str]:
    # elbv2 keeps Subnet objects, classic ELB subnet IDs
    return {getattr(subnet, "id", subnet) for subnet in balancer.subnets or []}


def shim_load_balancer_deletion_protection() -> None:
    """moto 5.2.5: DeleteLoadBalancer (elbv2) ignores ``deletion_protection.enabled``. Real ELB
    refuses with OperationNotPermitted ("You can't delete a load balancer if deletion protection
    is enabled": https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DeleteLoadBalancer.html),
    and so does a CloudFormation delete of its stack."""
    original = elbv2_models.ELBv2Backend.delete_load_balancer

    def delete_load_balancer(self, arn: str) -> None:
        balancer = self.load_balancers.get(arn)
        if balancer is not None and str(balancer.attrs.get("deletion_protection.enabled")).lower() == "true":
            raise ELBClientError("OperationNotPermitted",
                                 f"Load balancer '{arn}' cannot be deleted because deletion protection is enabled")
        return original(self, arn)

    elbv2_models.ELBv2Backend.delete_load_balancer = delete_load_balancer


def shim_load_balancer_attributes() -> None:
    """moto 5.2.5: an ``AWS::ElasticLoadBalancingV2::LoadBalancer`` made through CloudFormation
    ignores ``LoadBalancerAttributes`` (``deletion_protection.enabled`` among them). Real
    CloudFormation sets them. Wraps shims.shim_network_load_balancer's create (applied first)."""
    original = elbv2_models.FakeLoadBalancer.create_from_cloudformation_json.__func__

    @classmethod
    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        balancer = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        attributes = {a["Key"]: str(a["Value"]).lower() if isinstance(a["Value"], bool) else str(a["Value"])
                      for a in cloudformation_json["Properties"].get("LoadBalancerAttributes", [])}
        if attributes:
            elbv2_models.elbv2_backends[account_id][region_name].modify_load_balancer_attributes(
                balancer.arn, attributes)
        return balancer

    elbv2_models.FakeLoadBalancer.create_from_cloudformation_json = create


def shim_subnet_dependencies() -> None:
    """moto 5.2.5: DeleteSubnet deletes a subnet a load balancer still uses. Real EC2 refuses
    with DependencyViolation ("The subnet '...' has dependencies and cannot be deleted"): the
    load balancer's network interfaces live in it (API_DeleteSubnet: "You must terminate all
    running instances in the subnet before you can delete the subnet";
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html DependencyViolation)."""
    original = ec2_subnets.SubnetBackend.delete_subnet

    def delete_subnet(self, subnet_id: str):
        if any(subnet_id in _subnet_ids(b) for b in _load_balancers(self.account_id, self.region_name)):
            raise DependencyViolationError(f"The subnet '{subnet_id}' has dependencies and cannot be deleted.")
        return original(self, subnet_id)

    ec2_subnets.SubnetBackend.delete_subnet = delete_subnet


def shim_security_group_dependencies() -> None:
    """moto 5.2.5: DeleteSecurityGroup deletes a group that another group's rule references or
    that a load balancer uses; DeleteVpc deletes a VPC that still holds security groups. Real EC2
    refuses both with DependencyViolation: "If you attempt to delete a security group that is
    associated with an instance or network interface, is referenced by another security group in
    the same VPC, or has a VPC association, the operation fails with DependencyViolation"
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteSecurityGroup.html), and
    DeleteVpc needs "all security groups associated with the VPC (except the default one)" deleted
    first (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteVpc.html)."""
    original_group = ec2_security_groups.SecurityGroupBackend.delete_security_group
    original_vpc = ec2_vpcs.VPCBackend.delete_vpc

    def referenced(self, group) -> list[str]:
        others = [g for g in self.groups.get(group.vpc_id, {}).values() if g.id != group.id]
        return [g.id for g in others for rule in g.ingress_rules + g.egress_rules
                if (rule.source_group or {}).get("GroupId") == group.id]

    def delete_security_group(self, name: str | None = None, group_id: str | None = None):
        group = self.get_security_group_from_id(group_id) if group_id else None
        if group is not None:
            users = referenced(self, group) + [
                b.name for b in _load_balancers(self.account_id, self.region_name)
                if group.id in (b.security_groups or [])]
            if users:
                raise DependencyViolationError(f"resource {group.id} has a dependent object")
        return original_group(self, name=name, group_id=group_id)

    def delete_vpc(self, vpc_id: str):
        if any(g.name != "default" for g in self.groups.get(vpc_id, {}).values()):
            raise DependencyViolationError(f"The vpc '{vpc_id}' has dependencies and cannot be deleted.")
        return original_vpc(self, vpc_id)

    ec2_security_groups.SecurityGroupBackend.delete_security_group = delete_security_group
    ec2_vpcs.VPCBackend.delete_vpc = delete_vpc


def shim_security_group_ingress_deletion() -> None:
    """moto 5.2.5: deleting an ``AWS::EC2::SecurityGroupIngress`` resource leaves its rule in the
    group. Real CloudFormation revokes it (the rule is the resource:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ec2-securitygroupingress.html),
    which is what lets it delete groups whose rules name each other."""
    from moto.ec2.models import ec2_backends

    model = ec2_security_groups.SecurityGroupIngress
    original = model.create_from_cloudformation_json.__func__

    @classmethod
    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        group = ec2_backends[account_id][region_name].get_security_group_from_id(
            cloudformation_json["Properties"].get("GroupId", ""))
        before = {rule.id for rule in group.ingress_rules} if group is not None else set()
        resource = original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        resource.rule_ids = {rule.id for rule in resource.security_group.ingress_rules} - before
        return resource

    def delete(self, account_id: str, region_name: str) -> None:
        group = self.security_group
        group.ingress_rules = [rule for rule in group.ingress_rules if rule.id not in getattr(self, "rule_ids", ())]

    model.create_from_cloudformation_json = create
    model.delete = delete


def shim_vpc_endpoint_without_route_table() -> None:
    """moto 5.2.5: DeleteVpcEndpoints of a gateway endpoint fails (InvalidRouteTableID.NotFound)
    once one of its route tables is deleted, as moto's unordered stack delete may do first. Real
    EC2 drops an endpoint's association with a route table when the table is deleted, and the
    endpoint still deletes. (Before shim_stack_delete_failure that error was lost with the nested
    stack, and the endpoint with it.)"""
    original = ec2_vpcs.VPCBackend.delete_vpc_endpoints

    def delete_vpc_endpoints(self, vpce_ids: list[str] | None = None) -> None:
        for vpce_id in vpce_ids or []:
            endpoint = self.vpc_end_points.get(vpce_id)
            if endpoint is not None and endpoint.route_table_ids:
                endpoint.route_table_ids = [t for t in endpoint.route_table_ids if t in self.route_tables]
        return original(self, vpce_ids)

    ec2_vpcs.VPCBackend.delete_vpc_endpoints = delete_vpc_endpoints


def _failed_resources(stack) -> list[str]:
    resources = stack.resource_map
    return sorted(logical for logical, resource in resources._parsed_resources.items()
                  if logical in resources._resource_json_map and resource is not None and not isinstance(resource, str)
                  and resources._resource_json_map[logical].get("DeletionPolicy") != "Retain")


def _record_delete_failure(stack) -> None:
    """The events CloudFormation records when a delete fails: each resource it could not delete
    (a nested stack: "Embedded stack ... was not successfully deleted"), then the stack. moto
    raises only the last error of its last pass, so every resource of one stack shows that one."""
    failed = getattr(stack, "failed_resources", [])
    for logical in failed:
        resource = stack.resource_map._parsed_resources.get(logical)
        kind = stack.resource_map._resource_json_map.get(logical, {}).get("Type", "")
        if isinstance(resource, cfn_models.Stack) and resource.status == "DELETE_FAILED":
            _record_delete_failure(resource)
            reason = (f"Embedded stack {resource.stack_id} was not successfully deleted: The following "
                      f"resource(s) failed to delete: [{', '.join(getattr(resource, 'failed_resources', []))}].")
        else:
            reason = getattr(stack, "delete_error", "")
        _event(stack, logical, kind, "DELETE_FAILED", reason)
    _event(stack, stack.name, "AWS::CloudFormation::Stack", "DELETE_FAILED",
           f"The following resource(s) failed to delete: [{', '.join(failed)}].", stack.stack_id)


def shim_stack_delete_failure() -> None:
    """moto 5.2.5: when a resource refuses to be deleted, DeleteStack itself fails (the resource's
    error as the HTTP answer) and the half-deleted stack drops out of DescribeStacks; a parent's
    next pass over a nested stack lost that way "deletes" it by doing nothing. Real CloudFormation
    accepts DeleteStack, marks what it could not delete DELETE_FAILED and the stack DELETE_FAILED
    ("The following resource(s) failed to delete: [...]"), keeps the stack with only those
    resources, and a later DeleteStack tries them again
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/troubleshooting.html#troubleshooting-errors-delete-stack-fails).
    moto deletes nested stacks in no particular order (retrying in passes where real CloudFormation
    follows the dependencies), so a nested stack may fail a pass and succeed the next: the events
    are recorded only once the whole DeleteStack call failed."""
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.core.responses import EmptyResult

    original = cfn_models.CloudFormationBackend.delete_stack  # shims.shim_termination_protection's

    def delete_stack(self, name_or_stack_id):
        stack = self.stacks.get(name_or_stack_id) or next(
            (s for s in self.stacks.values() if s.name == name_or_stack_id), None)
        if stack is None or stack.enable_termination_protection:
            return original(self, name_or_stack_id)
        try:
            return original(self, stack.stack_id)
        except Exception as exc:
            self.stacks[stack.stack_id] = stack  # CloudFormation keeps what it could not delete
            stack.status = "DELETE_FAILED"
            stack.delete_error = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            stack.failed_resources = _failed_resources(stack)
            resources = stack.resource_map  # listing must not lazily re-create the deleted ones
            resources._resource_json_map = {logical: body for logical, body in resources._resource_json_map.items()
                                            if logical in stack.failed_resources}
            raise

    original_response = CloudFormationResponse.delete_stack

    def delete_stack_response(self):
        try:
            return original_response(self)
        except Exception:
            name = self._get_param("StackName")
            stack = next((s for s in self.cloudformation_backend.stacks.values()
                          if name in (s.name, s.stack_id)), None)
            if stack is None or stack.status != "DELETE_FAILED":
                raise
            _record_delete_failure(stack)
            return EmptyResult()

    cfn_models.CloudFormationBackend.delete_stack = delete_stack
    CloudFormationResponse.delete_stack = delete_stack_response


def apply() -> None:
    """After shims.py's own (this wraps its load balancer create and termination protection)."""
    import moto

    assert moto.__version__ == MOTO_VERSION, f"shims written for moto {MOTO_VERSION}, found {moto.__version__}"
    shim_load_balancer_deletion_protection()
    shim_load_balancer_attributes()
    shim_subnet_dependencies()
    shim_security_group_dependencies()
    shim_security_group_ingress_deletion()
    shim_vpc_endpoint_without_route_table()
    shim_stack_delete_failure()
