"""Shims for the Identity stack's resources, which moto 5.2.5's CloudFormation does not model:
it warns "Tried to parse AWS::CloudFront::Distribution but it's not supported" (also
AWS::CloudFront::OriginAccessControl and AWS::IAM::OIDCProvider), skips them, and every Ref /
Fn::GetAtt on them then fails. Each shim creates the resource through moto's own backend
(its CloudFront and IAM APIs serve it afterwards) and answers Ref / GetAtt as the
CloudFormation template reference documents them; one more makes a role's inline policies
read back as JSON. None changes the product's templates.
Applied by shims.apply(). Seen with moto 5.2.5."""

from __future__ import annotations

from typing import Any

from moto.cloudformation import parsing
from moto.cloudfront.models import cloudfront_backends
from moto.core.common_models import CloudFormationModel
from moto.iam.models import iam_backends
from moto.utilities.utils import get_partition

MOTO_VERSION = "5.2.5"


class _Shimmed:
    """What the three share (a mixin: moto lists only CloudFormationModel's direct subclasses):
    Ref is ``physical_resource_id``, GetAtt reads ``attributes``, an update keeps the resource
    (no test changes these properties), a delete goes through the backend."""

    TYPE, ATTRIBUTES = "", ()

    def __init__(self, physical_id: str, attributes: dict[str, str], deleter) -> None:
        self.physical_resource_id, self.attributes, self._deleter = physical_id, attributes, deleter

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.attributes:
            raise parsing.UnformattedGetAttTemplateException()
        return self.attributes[attribute_name]

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        return None

    def delete(self, account_id: str, region_name: str) -> None:
        self._deleter()

    def is_created(self) -> bool:
        return True


class _OriginAccessControl(_Shimmed, CloudFormationModel):
    """AWS::CloudFront::OriginAccessControl: Ref and GetAtt Id are the control's ID."""

    TYPE, ATTRIBUTES = "AWS::CloudFront::OriginAccessControl", ("Id",)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        backend = cloudfront_backends[account_id][get_partition(region_name)]
        control = backend.create_origin_access_control(
            dict(cloudformation_json["Properties"]["OriginAccessControlConfig"]))
        return cls(control.id, {"Id": control.id}, lambda: backend.delete_origin_access_control(control.id))


def _api_distribution_config(config: dict, caller_reference: str) -> dict:
    """CloudFormation's DistributionConfig (plain lists) in the CloudFront API's shape
    ({Quantity, Items} lists, IsIPV6Enabled), which moto's backend takes."""
    behavior = dict(config["DefaultCacheBehavior"])
    methods = behavior.pop("AllowedMethods", ["GET", "HEAD"])
    cached = behavior.pop("CachedMethods", ["GET", "HEAD"])
    behavior["AllowedMethods"] = {"Quantity": len(methods), "Items": methods,
                                  "CachedMethods": {"Quantity": len(cached), "Items": cached}}
    api = {k: v for k, v in config.items() if k not in ("Origins", "DefaultCacheBehavior", "IPV6Enabled")}
    return {**api, "CallerReference": caller_reference, "DefaultCacheBehavior": behavior,
            "IsIPV6Enabled": config.get("IPV6Enabled", True),
            "Origins": {"Quantity": len(config["Origins"]), "Items": [dict(o) for o in config["Origins"]]}}


class _Distribution(_Shimmed, CloudFormationModel):
    """AWS::CloudFront::Distribution: Ref and GetAtt Id are the distribution ID, GetAtt
    DomainName its d....cloudfront.net name."""

    TYPE, ATTRIBUTES = "AWS::CloudFront::Distribution", ("Id", "DomainName")

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        backend = cloudfront_backends[account_id][get_partition(region_name)]
        props = cloudformation_json["Properties"]
        reference = f"{kwargs.get('StackId', '')}/{kwargs.get('LogicalId', resource_name)}"
        distribution, _, _ = backend.create_distribution(
            _api_distribution_config(props["DistributionConfig"], reference), props.get("Tags", []))
        identifier = distribution.distribution_id
        return cls(identifier, {"Id": identifier, "DomainName": distribution.domain_name},
                   lambda: backend.delete_distribution(identifier, True))


class _OidcProvider(_Shimmed, CloudFormationModel):
    """AWS::IAM::OIDCProvider: Ref and GetAtt Arn are the provider's ARN
    (arn:aws:iam::<account>:oidc-provider/<url without https://>)."""

    TYPE, ATTRIBUTES = "AWS::IAM::OIDCProvider", ("Arn",)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        backend = iam_backends[account_id][get_partition(region_name)]
        props = cloudformation_json["Properties"]
        provider = backend.create_open_id_connect_provider(
            props["Url"], props.get("ThumbprintList", []), props.get("ClientIdList", []), props.get("Tags", []))
        return cls(provider.arn, {"Arn": provider.arn}, lambda: backend.delete_open_id_connect_provider(provider.arn))


def _register(model: type[CloudFormationModel]) -> None:
    # moto finds models among CloudFormationModel's subclasses and caches the list.
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    assert parsing.get_model_map()[model.cloudformation_type()] is model


def shim_origin_access_control() -> None:
    """moto 5.2.5 skips AWS::CloudFront::OriginAccessControl; real CloudFormation creates it."""
    _register(_OriginAccessControl)


def shim_distribution() -> None:
    """moto 5.2.5 skips AWS::CloudFront::Distribution; real CloudFormation creates it."""
    _register(_Distribution)


def shim_oidc_provider() -> None:
    """moto 5.2.5 skips AWS::IAM::OIDCProvider; real CloudFormation creates it."""
    _register(_OidcProvider)


def shim_role_inline_policy_documents() -> None:
    """moto 5.2.5: an ``AWS::IAM::Role``'s ``Policies`` documents are stored as Python dicts,
    and GetRolePolicy then returns their repr ("{'Version': ...}"), not JSON. Real IAM returns
    the JSON document (URL-encoded; botocore decodes it)."""
    import json

    from moto.iam.models import Role

    original = Role.create_from_cloudformation_json.__func__

    @classmethod
    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        for policy in cloudformation_json.get("Properties", {}).get("Policies", []):
            if not isinstance(policy["PolicyDocument"], str):
                policy["PolicyDocument"] = json.dumps(policy["PolicyDocument"])
        return original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    Role.create_from_cloudformation_json = create


def apply() -> None:
    import moto

    assert moto.__version__ == MOTO_VERSION, f"shims written for moto {MOTO_VERSION}, found {moto.__version__}"
    shim_origin_access_control()
    shim_distribution()
    shim_oidc_provider()
    shim_role_inline_policy_documents()
