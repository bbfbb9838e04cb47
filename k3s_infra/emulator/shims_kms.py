"""moto 5.2.5 gaps of ``AWS::KMS::Key`` made by CloudFormation (split from shims.py,
which applies them after its tags shim): each wraps the create before it."""

from __future__ import annotations

import json

from moto.kms import models as kms_models


def _wrap_create(after) -> None:
    create = kms_models.Key.create_from_cloudformation_json.__func__

    @classmethod
    def created(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        key = create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        after(key, cloudformation_json.get("Properties", {}))
        return key

    kms_models.Key.create_from_cloudformation_json = created


def shim_kms_key_policy() -> None:
    """moto 5.2.5 keeps the template's ``KeyPolicy`` object as it is, and DescribeKey then
    fails (json.loads of a dict). Real CloudFormation passes it to CreateKey as the JSON
    policy document (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html, Policy)."""

    def as_document(key, properties: dict) -> None:
        if isinstance(key.policy, dict):
            key.policy = json.dumps(key.policy)

    _wrap_create(as_document)


def shim_kms_key_deletion() -> None:
    """moto 5.2.5: a stack that deletes its ``AWS::KMS::Key`` removes the key at once. Real
    CloudFormation schedules the deletion after ``PendingWindowInDays`` (7-30, default 30:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-kms-key.html):
    the key is still described, KeyState PendingDeletion
    (https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html)."""

    def window(key, properties: dict) -> None:
        key.pending_window_in_days = int(properties.get("PendingWindowInDays", 30))

    def delete(self, account_id: str, region_name: str) -> None:
        kms_models.kms_backends[account_id][region_name].schedule_key_deletion(
            self.id, getattr(self, "pending_window_in_days", 30))

    _wrap_create(window)
    kms_models.Key.delete = delete
