"""The SSM parameter that carries a server's bundle (bootstrap/bundle.py): the rest of its
boot, pinned by SHA-256 in its user data. Intelligent-Tiering: Standard while the value
fits 4 KB, Advanced (8 KB) beyond
(https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ssm-parameter.html, Tier)."""

from __future__ import annotations

from troposphere.ssm import Parameter

from k3s_infra.components.template import StackTemplate
from k3s_infra.model import naming


def build(t: StackTemplate, names: list[str], values: list[str]) -> tuple[str, ...]:
    """One parameter per part of the bundle; their logical IDs (the launch template depends on them)."""
    ids = []
    for index, (name, value) in enumerate(zip(names, values, strict=True)):
        parameter = t.add(Parameter(
            naming.logical_id("NodeBundle", *([index + 1] if index else [])), Name=name, Type="String",
            Tier="Intelligent-Tiering", DataType="text", Value=value,
            Description=f"k3s-infra: the rest of a server's boot (scripts, manifests), part {index + 1} of "
                        f"{len(names)}; no secret values"))
        ids.append(parameter.title)
    return tuple(ids)
