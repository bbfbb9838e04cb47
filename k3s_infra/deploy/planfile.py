"""``plan --out PLANFILE``: the reviewed change set, kept, and what ``deploy PLANFILE`` checks
before it executes exactly that change set (no packaging, no new change set).

A plan file is a JSON document (``kind`` k3s-infra-plan): the environment (how it was named,
the sha256 of the file read and of the configuration loaded from it, parents and --region
included), the stack as it was once the change set existed (StackId, StackStatus,
LastUpdatedTime), the change set (ARN, name, type, parameters, the changes reviewed), the
templates uploaded (URL, sha256) and the root's template arguments (the update that records
the roll order after a first create sends them). ``deploy PLANFILE`` refuses (PlanStale,
nothing changed, the file kept) when the environment file, the templates k3s-infra renders,
the stack or the change set moved on: CloudFormation marks a change set OBSOLETE once
another operation ran on its stack, and deletes it after executing it or another one
(https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html,
API_ExecuteChangeSet.html)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from k3s_infra import __version__
from k3s_infra.deploy import DeployError
from k3s_infra.model import naming

KIND = "k3s-infra-plan"
VERSION = 1
MAX_BYTES = 4 * 1024 * 1024  # a plan of hundreds of changes is well below


class PlanFileError(Exception):
    """Not a plan file this release reads (a usage error: exit 2)."""


class PlanStale(DeployError):
    """What the plan reviewed is no longer what would run (exit 1)."""


@dataclass(frozen=True)
class PlanFile:
    env: str | None              # --env as given to plan, or
    config: str | None           # --config as given
    region_override: str | None  # --region as given
    environment: str             # the environment's name
    source_sha256: str           # of the environment file's bytes
    config_sha256: str           # of the configuration loaded (parents and --region included)
    account_id: str
    region: str
    stack_name: str
    stack_id: str | None         # None: no stack (and nothing kept)
    stack_status: str | None
    stack_updated: str | None    # LastUpdatedTime, ISO 8601 (None: never updated)
    change_set_id: str | None    # None: nothing to change, no change set kept
    change_set_name: str | None
    change_set_type: str         # CREATE | UPDATE
    parameters: list[dict[str, str]]
    templates: list[dict[str, str]]         # file, url, sha256 of each child template
    roots: dict[str, dict[str, str]]        # the root's TemplateBody or TemplateURL by change set type
    changes: list[dict[str, str]]
    created: str
    k3s_infra: str = __version__

    def to_json(self) -> str:
        return json.dumps({"kind": KIND, "version": VERSION, **dataclasses.asdict(self)}, indent=2, sort_keys=True) \
            + "\n"

    @classmethod
    def from_json(cls, text: str, shown: str) -> PlanFile:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise PlanFileError(f"{shown}: not JSON; give the file 'k3s-infra plan --out' wrote") from None
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise PlanFileError(f"{shown}: not a plan file ('kind' is not {KIND!r}); give the file "
                                f"'k3s-infra plan --out' wrote")
        if data.get("version") != VERSION:
            raise PlanFileError(f"{shown}: plan file version {data.get('version')!r}; this k3s-infra reads "
                                f"version {VERSION}: plan again")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(f.name for f in dataclasses.fields(cls) if f.name not in data and f.default is
                         dataclasses.MISSING)
        if missing:
            raise PlanFileError(f"{shown}: not a complete plan file (no {', '.join(missing)}); plan again")
        return cls(**{k: v for k, v in data.items() if k in names})


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def environment_digests(source: str | Path, env) -> tuple[str, str]:
    """(sha256 of the environment file, sha256 of the configuration loaded from it)."""
    return _sha256(Path(source).read_bytes()), _sha256(env.model_dump_json().encode())


def _iso(value: Any) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else value


def of(planned, *, env_name: str | None, config: str | None, region_override: str | None,
       source: str | Path) -> PlanFile:
    """The plan file of ``planned`` (lifecycle.PlanResult, its change set kept or empty)."""
    change_set, rendering, stack = planned.change_set, planned.package.rendering, planned.stack
    env = rendering.env
    file_sha, config_sha = environment_digests(source, env)
    kept = not change_set.empty
    return PlanFile(
        env_name, config, region_override, env.name, file_sha, config_sha, env.account_id, env.region,
        change_set.stack_name, stack["StackId"] if stack else None, stack["StackStatus"] if stack else None,
        _iso(stack.get("LastUpdatedTime")) if stack else None, change_set.change_set_id if kept else None,
        change_set.name if kept else None, change_set.change_set_type, planned.parameters,
        [{"file": c.file, "url": naming.template_url(env, c.key), "sha256": c.sha256} for c in rendering.children],
        planned.package.roots, [dataclasses.asdict(c) for c in change_set.changes],
        datetime.now(timezone.utc).isoformat())


def check_environment(plan: PlanFile, source: str | Path, env) -> None:
    """The environment file and the configuration loaded from it are the plan's."""
    if (plan.account_id, plan.region, plan.stack_name) != (env.account_id, env.region, env.stack_name):
        raise PlanStale(f"the plan is for stack {plan.stack_name} in {plan.account_id}/{plan.region}, not "
                        f"{env.stack_name} in {env.account_id}/{env.region}")
    file_sha, config_sha = environment_digests(source, env)
    if file_sha != plan.source_sha256:
        raise PlanStale(f"{source} changed since the plan; plan again")
    if config_sha != plan.config_sha256:
        raise PlanStale(f"the configuration loaded from {source} changed since the plan (a parent file it "
                        f"extends, or --region); plan again")


def check_templates(plan: PlanFile, rendering) -> None:
    """The templates rendered now are those the plan uploaded (another k3s-infra release renders others)."""
    now = [(c.file, c.sha256) for c in rendering.children]
    if now != [(t["file"], t["sha256"]) for t in plan.templates]:
        raise PlanStale(f"the templates k3s-infra {__version__} renders differ from those the plan uploaded "
                        f"(k3s-infra {plan.k3s_infra}); plan again")


def check_stack(plan: PlanFile, root: dict | None) -> None:
    """The stack is as it was when the plan was made: same StackId, status and LastUpdatedTime."""
    if plan.stack_id is None:
        if root is not None:
            raise PlanStale(f"stack {plan.stack_name} was created since the plan ({root['StackStatus']}); plan again")
        return
    if root is None or root["StackId"] != plan.stack_id:
        raise PlanStale(f"stack {plan.stack_name} is gone or was replaced since the plan; plan again")
    now = (root["StackStatus"], _iso(root.get("LastUpdatedTime")))
    if now != (plan.stack_status, plan.stack_updated):
        raise PlanStale(f"stack {plan.stack_name} changed since the plan ({plan.stack_status}, last updated "
                        f"{plan.stack_updated or 'never'} -> {now[0]}, last updated {now[1] or 'never'}); plan again")


def check_change_set(plan: PlanFile, described: dict) -> None:
    """The planned change set can still run (Status CREATE_COMPLETE, ExecutionStatus AVAILABLE:
    not executed, not OBSOLETE)."""
    state = (described.get("Status"), described.get("ExecutionStatus"))
    if state != ("CREATE_COMPLETE", "AVAILABLE"):
        raise PlanStale(f"the planned change set {plan.change_set_name} is {state[0]}/{state[1]}, not "
                        f"CREATE_COMPLETE/AVAILABLE: it cannot run any more; plan again")
