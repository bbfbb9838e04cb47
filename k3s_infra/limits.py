"""CloudFormation service quotas, checked at render time so a too-large cluster
description fails with a clear message instead of a failed deploy."""

from __future__ import annotations

from k3s_infra.config import ConfigError

MAX_RESOURCES = 500
MAX_PARAMETERS = 200
MAX_OUTPUTS = 200
MAX_TEMPLATE_BYTES = 1_000_000  # body uploaded to S3 (TemplateURL)
# EC2 counts the user data in raw form, after Fn::Sub expansion and before base64:
# "User data is limited to 16 KB, in raw form, before it is base64-encoded"
# (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html);
# CreateLaunchTemplateVersion checks the base64-decoded length (InvalidUserData.Malformed,
# hashicorp/terraform-provider-aws#49234).
MAX_USER_DATA_BYTES = 16 * 1024


class LimitError(ConfigError):
    """The environment renders a template beyond a CloudFormation or EC2 limit."""


def check_body(environment: str, file_name: str, body: str) -> None:
    """Counts of resources, parameters and outputs are guarded by StackTemplate as they are added."""
    size = len(body.encode())
    if size > MAX_TEMPLATE_BYTES:
        raise LimitError(f"environment {environment}", [
            ("", f"{file_name} is {size:,} bytes; CloudFormation allows at most {MAX_TEMPLATE_BYTES:,}")])
