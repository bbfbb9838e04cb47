"""Node images pinned by the deployer: a public SSM path is resolved ONCE (first deploy)
and the deployed root's value is reused afterwards, so a newly published image never
replaces nodes on an unrelated deploy. ``--update-image`` re-resolves; ``nodes.ami_id``
in the config pins an explicit AMI. One image per architecture in use (root parameters
``outputs.IMAGE_IDS``), each pinned on its own."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from k3s_infra.config import architectures
from k3s_infra.deploy import stack_states
from k3s_infra.model import outputs as o


@dataclass(frozen=True)
class ImageChoice:
    parameter: str          # root parameter name
    source: str             # SSM path, or "nodes.ami_id.<arch>"
    deployed: str | None    # the root's current value (None: first deploy)
    chosen: str             # what this change set passes
    latest: str | None      # what the SSM path says now (None: not looked up or unreadable)


def deployed_parameters(root: dict | None) -> dict[str, str]:
    """Parameter values of a deployed root (an empty REVIEW_IN_PROGRESS stack has none)."""
    if stack_states.creates(root):
        return {}
    return {p["ParameterKey"]: p["ParameterValue"] for p in root.get("Parameters", [])
            if "ParameterValue" in p}


def _resolve(ssm, path: str) -> str:
    return ssm.get_parameter(Name=path)["Parameter"]["Value"]


def choose(aws, root: dict | None, *, update_image: bool = False) -> list[ImageChoice]:
    env = aws.env
    deployed = deployed_parameters(root)
    result = []
    for arch in architectures.in_use(env):
        name, path = o.IMAGE_IDS[arch], getattr(env.nodes.ami_parameter, arch)
        current, explicit = deployed.get(name), getattr(env.nodes.ami_id, arch)
        if explicit:
            result.append(ImageChoice(name, f"nodes.ami_id.{arch}", current, explicit, None))
        elif current is None or update_image:
            latest = _resolve(aws.ssm, path)
            result.append(ImageChoice(name, path, current, latest, latest))
        else:
            try:  # only to tell the user; the pinned value is used either way
                latest = _resolve(aws.ssm, path)
            except ClientError:
                latest = None
            result.append(ImageChoice(name, path, current, current, latest))
    return result


def stack_parameters(choices: list[ImageChoice]) -> list[dict[str, str]]:
    return [{"ParameterKey": c.parameter, "ParameterValue": c.chosen} for c in choices]
