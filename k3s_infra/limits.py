"""CloudFormation service quotas, checked at render time so a too-large cluster
description fails with a clear message instead of a failed deploy."""

from __future__ import annotations

from k3s_infra.config import ConfigError

MAX_RESOURCES = 500
MAX_PARAMETERS = 200
MAX_OUTPUTS = 200
MAX_TEMPLATE_BYTES = 1_000_000  # body uploaded to S3 (TemplateURL)
MAX_USER_DATA_BYTES = 16 * 1024  # EC2, counted after Fn::Sub expansion


class LimitError(ConfigError):
    """The environment renders a template beyond a CloudFormation or EC2 limit."""


def check_body(environment: str, file_name: str, body: str) -> None:
    """Counts of resources, parameters and outputs are guarded by StackTemplate as they are added."""
    size = len(body.encode())
    if size > MAX_TEMPLATE_BYTES:
        raise LimitError(f"environment {environment}", [
            ("", f"{file_name} is {size:,} bytes; CloudFormation allows at most {MAX_TEMPLATE_BYTES:,}")])
