"""The SSM parameter that carries a server's bundle (bootstrap/bundle.py): the rest of its
boot, pinned by SHA-256 in its user data. Intelligent-Tiering: Standard while the value
fits 4 KB, Advanced (8 KB) beyond
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ssm-parameter.html, Tier)."""

from __future__ import annotations

from troposphere.ssm import Parameter

from k3s_infra.components.template import StackTemplate
from k3s_infra.model import naming


def build(t: StackTemplate, name: str, value: str) -> str:
    """The parameter's logical ID (its launch template depends on it)."""
    parameter = t.add(Parameter(
        naming.logical_id("NodeBundle"), Name=name, Type="String", Tier="Intelligent-Tiering", DataType="text",
        Value=value, Description="k3s-infra: the rest of a server's boot (scripts, manifests); no secret values"))
    return parameter.title
