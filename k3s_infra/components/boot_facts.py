"""A fact a stack makes for the nodes' boot (an API's DNS name, the OIDC issuer's URL), as an
SSM parameter the boot reads (boot.sh bind_facts) instead of a node-stack parameter: the node
stacks then need not wait for the slow resource behind it (stacks/root.py). CloudFormation
writes it once the resource exists, rewrites it when the value changes, deletes it with the stack."""

from __future__ import annotations

from troposphere import AWSHelperFn
from troposphere.ssm import Parameter

from k3s_infra.components.template import StackTemplate
from k3s_infra.config import Environment
from k3s_infra.model import naming


def publish(t: StackTemplate, env: Environment, fact: str, value: AWSHelperFn) -> None:
    t.add(Parameter(naming.logical_id(fact, "Fact"), Name=naming.fact_parameter(env, fact), Type="String",
                    Value=value, Description="Read by the nodes at boot (k3s-infra boot.sh bind_facts)"))
