"""The root template goes inline (TemplateBody) up to CloudFormation's 51,200 bytes and through
S3 (TemplateURL) beyond (deploy/package.py MAX_INLINE_BODY; AWS CloudFormation quotas,
"Template body size in a request: 51,200 bytes":
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html).
The quota counts bytes: a body of multi-byte characters reaches it with fewer characters."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError

from k3s_infra.config import load_environment
from k3s_infra.deploy import package

ENV = load_environment("dev")


class _Bucket:
    """An existing artifact bucket holding nothing yet; records what is put."""

    def __init__(self):
        self.keys: list[str] = []

    def head_bucket(self, **_):
        return {}

    def head_object(self, **_):
        raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")

    def put_object(self, Key, **_):  # boto3's argument name
        self.keys.append(Key)


# (row, root template body, goes inline?)
BODIES = [
    ("51,200 bytes", "x" * 51_200, True),
    ("51,201 bytes", "x" * 51_201, False),
    ("25,600 two-byte characters", "é" * 25_600, True),
    ("25,600 two-byte characters and one more byte", "é" * 25_600 + "x", False),
]


@pytest.mark.parametrize("row, body, inline", BODIES, ids=[b[0] for b in BODIES])
def test_the_root_goes_inline_up_to_51200_bytes(row, body, inline):
    root = SimpleNamespace(file="root.yaml", body=body, sha256=hashlib.sha256(body.encode()).hexdigest())
    rendering = SimpleNamespace(env=ENV, children=[], fmt="yaml", root=root, create_root=None)
    bucket = _Bucket()
    result = package.package(SimpleNamespace(s3=bucket), rendering)
    args = result.template_args()
    if inline:
        assert args == {"TemplateBody": body}
        assert not any(key.endswith("root.yaml") for key in bucket.keys)
    else:
        assert list(args) == ["TemplateURL"] and any("root.yaml" in key for key in bucket.keys)
