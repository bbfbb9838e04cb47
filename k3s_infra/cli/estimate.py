"""k3s-infra estimate: how long a create (``--roll``: a rolling update of every node group)
of an environment should take, from its rendered templates and model/durations.py; no AWS
call. ``plan`` prints the same estimate for its change set and ``deploy`` the measured time
per wave (README "How long it takes")."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from typing import Any

import yaml

from k3s_infra.cli import load
from k3s_infra.cli.output import aligned, document, print_json, say, wants_json
from k3s_infra.model import durations as d
from k3s_infra.model import naming, timing
from k3s_infra.render import Rendering, render

LAUNCH_TEMPLATE = "AWS::EC2::LaunchTemplate"
HEAD = "a model, not a measurement: README \"How long it takes\"; 'estimate --sources' lists its numbers"


def run(args: argparse.Namespace) -> int:
    env = load(args)
    rendering = render(env)
    estimates = [timing.estimate_create(templates_of(rendering, creating=True))]
    if args.roll:
        estimates.append(timing.estimate_roll(templates_of(rendering)))
    if wants_json(args):
        print_json(document("estimate", environment=env.name, stack_name=env.stack_name,
                            estimates=[as_json(e) for e in estimates], assumptions=assumptions()))
        return 0
    for estimate in estimates:
        for line in lines(estimate, env.stack_name):
            say(line)
    if args.sources:
        say("where the numbers come from (estimate: not stated by a primary source):")
        for line in aligned([(what, f"{value:g} {unit}", "estimate" if guess else "stated", source)
                             for what, value, unit, guess, source in _assumptions()]):
            say(line)
    return 0


def templates_of(rendering: Rendering, *, creating: bool = False) -> dict[str, dict]:
    """Stack ID -> template as a dict, parsed back from the rendered bodies; the root under
    naming.ROOT is the one an update gets, or with ``creating`` the one of a first create
    (where the rendering has one of its own: its node stacks start together)."""
    def parse(stack) -> dict:
        if rendering.fmt == "json":
            return json.loads(stack.body)
        return yaml.load(stack.body, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml's: faster

    root = rendering.create_root if creating and rendering.create_root is not None else rendering.root
    return {naming.ROOT: parse(root), **{s.stack_id: parse(s) for s in rendering.children}}


def for_change_set(change_set, rendering: Rendering) -> timing.Estimate | None:
    """A create's estimate for a CREATE change set; for an UPDATE, the roll of the node groups
    whose launch template changes (None: no node is replaced)."""
    if change_set.empty:
        return None
    if change_set.change_set_type == "CREATE":
        return timing.estimate_create(templates_of(rendering, creating=True))
    rolling = {c.stack for c in change_set.changes if c.resource_type == LAUNCH_TEMPLATE and c.action != "Remove"}
    return timing.estimate_roll(templates_of(rendering), rolling) if rolling else None


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    return f"{whole // 60}m{whole % 60:02d}s"


def lines(estimate: timing.Estimate, stack_name: str) -> list[str]:
    """The estimate as people read it: a head line, one aligned row per wave, the path."""
    what = "create" if estimate.kind == "create" else "rolling update"
    result = [f"{what} of {stack_name}: about {clock(estimate.total)} ({HEAD})"]
    if not estimate.waves:
        return result + ["  no node group rolls"]
    rows = [("", "STACK", "START", "END", "TAKES", "WHY")]
    rows += [("*" if w.critical else "", w.stack, clock(w.start), clock(w.end), clock(w.seconds), w.reason)
             for w in estimate.waves]
    result += aligned(rows)
    result.append(f"critical path (*): {' -> '.join(estimate.critical_path)}")
    for wave in estimate.waves:
        if wave.critical and wave.phases:
            result.append(f"  {wave.stack} boot: " + ", ".join(f"{p.name} {clock(p.end - p.start)}"
                                                              for p in wave.phases))
    if estimate.kind == "create" and estimate.api_ready is not None:
        result.append(f"the API answers through its load balancer after about {clock(estimate.api_ready)}")
    elif estimate.kind == "roll":
        result.append(f"the API is down until about {clock(estimate.api_ready)} (one server: its replacement "
                      f"restores a snapshot)" if estimate.api_ready is not None
                      else "the API stays up (the other servers answer)")
    return result


def _seconds(value: float | None) -> int | None:
    return None if value is None else round(value)


def as_json(estimate: timing.Estimate) -> dict[str, Any]:
    return {"kind": estimate.kind, "total_seconds": _seconds(estimate.total),
            "critical_path": list(estimate.critical_path), "api_ready_seconds": _seconds(estimate.api_ready),
            "waves": [{"stack": w.stack, "start_seconds": _seconds(w.start), "end_seconds": _seconds(w.end),
                       "seconds": _seconds(w.seconds), "critical": w.critical, "reason": w.reason,
                       "ready_seconds": _seconds(w.ready),
                       "phases": [{"name": p.name, "start_seconds": _seconds(p.start),
                                   "end_seconds": _seconds(p.end)} for p in w.phases]}
                      for w in estimate.waves]}


def _assumptions() -> Iterable[tuple[str, float, str, bool, str]]:
    """(what, value, unit, whether an estimate, source) of every number the model uses."""
    table = [("nested stack", d.NESTED_STACK, "s"),
             *((kind, value, "s") for kind, value in sorted(d.RESOURCES.items())),
             ("(any other resource)", d.UNLISTED, "s"),
             *((f"boot: {phase}", value, "s") for phase, value in d.BOOT.items()),
             ("boot: artifacts", d.ARTIFACT_MEGABYTES, "MB"),
             ("boot: download", d.DOWNLOAD_MEGABYTES_PER_SECOND, "MB/s"),
             ("load balancer target registration", d.NLB_TARGET_REGISTRATION, "s")]
    for what, value, unit in table:
        yield what, value.seconds, unit, value.estimate, value.source


def assumptions() -> list[dict[str, Any]]:
    return [{"what": what, "value": value, "unit": unit, "estimate": guess, "source": source}
            for what, value, unit, guess, source in _assumptions()]
