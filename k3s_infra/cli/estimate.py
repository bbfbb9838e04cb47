"""k3s-infra estimate: how long a create (``--roll``: a rolling update of every node group)
of an environment should take, from its rendered templates and model/durations.py; no AWS
call. ``plan`` prints the same estimate for its change set and ``deploy`` the measured time
per wave (docs/performance.md "How long it takes")."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from typing import Any

import yaml

from k3s_infra.cli import load
from k3s_infra.cli.output import aligned, document, print_json, say, wants_json
from k3s_infra.config import Environment
from k3s_infra.model import cost, naming, prices, timing
from k3s_infra.model import durations as d
from k3s_infra.render import Rendering, render

LAUNCH_TEMPLATE = "AWS::EC2::LaunchTemplate"
HEAD = "a model, not a measurement: docs/performance.md \"How long it takes\"; 'estimate --sources' lists its numbers"


def run(args: argparse.Namespace) -> int:
    env = load(args)
    rendering = render(env)
    estimates = [timing.estimate_create(templates_of(rendering, creating=True))]
    if args.roll:
        estimates.append(timing.estimate_roll(templates_of(rendering)))
    bill = None
    if args.cost or args.prices:
        bill = cost_of(env, rendering, price_book(env, args.prices or "offline"))
    if wants_json(args):
        extra = {"cost": cost_json(bill)} if bill else {}
        print_json(document("estimate", environment=env.name, stack_name=env.stack_name,
                            estimates=[as_json(e) for e in estimates], assumptions=assumptions(), **extra))
        return 0
    for estimate in estimates:
        for line in lines(estimate, env.stack_name):
            say(line)
    if args.sources:
        say("where the numbers come from (estimate: not stated by a primary source):")
        for line in aligned([(what, f"{value:g} {unit}", "estimate" if guess else "stated", source)
                             for what, value, unit, guess, source in _assumptions()]):
            say(line)
    if bill:
        for line in cost_lines(bill, env.stack_name):
            say(line)
    return 0


def price_book(env: Environment, where: str) -> prices.PriceBook:
    """``--prices offline`` (the default: no AWS call) or ``online`` (the Price List API,
    falling back to the table)."""
    if where == "online":
        from k3s_infra.deploy import pricing  # boto3 only when asked for
        return pricing.price_book(env)
    return prices.offline(env.region)


def cost_of(env: Environment, rendering: Rendering, book: prices.PriceBook) -> cost.Bill:
    """The bill of a rendered environment (``plan`` calls it with its rendering)."""
    return cost.for_environment(env, templates_of(rendering), book)


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


# --- cost ---------------------------------------------------------------------------------

def _money(usd: float) -> str:
    return f"${usd:,.2f}"


def _plural(count: float, unit: str) -> str:
    if count == 1 or unit in ("GB", "NLCU"):
        return unit
    return unit + ("es" if unit.endswith("s") else "s")


def _unit_price(price: prices.Price) -> str:
    usd = f"${price.usd:,.2f}" if round(price.usd, 2) == price.usd else f"${price.usd:,.6g}"
    return f"{usd} per {price.per:,} {_plural(price.per, price.unit)}" if price.per > 1 else f"{usd} per {price.unit}"


def _count(item: cost.Item) -> str:
    text = f"{item.count:,g} {_plural(item.count, item.unit)}"
    if item.count_min is not None and (item.count_min, item.count_max) != (item.count, item.count):
        text += f" ({item.count_min:,g}-{item.count_max:,g})"
    return text


def cost_lines(bill: cost.Bill, stack_name: str) -> list[str]:
    """The bill as people read it: a head line, one aligned row per item, the total, then what
    it assumes and what it leaves out."""
    missing = f" and {len(bill.unpriced)} lines without a price" if bill.unpriced else ""
    result = ["", f"monthly cost of {stack_name} in {bill.region}: about {_money(bill.total())}{missing} at the pools' "
              f"desired sizes ({prices.HOURS_PER_MONTH} hours a month; prices: {bill.price_source})"]
    if bill.note:
        result.append(f"  note: {bill.note}")
    rows = [("ITEM", "COUNT", "UNIT PRICE", "MONTHLY")]
    for item in bill.items:
        price = _unit_price(item.price) if item.price else "-"
        monthly = item.monthly()
        rows.append((f"{item.group}: {item.what}" if item.group else item.what, _count(item), price,
                     "no price" if monthly is None else _money(monthly)))
    rows.append(("total", "", "", _money(bill.total())))
    result += aligned(rows)
    result.append(f"at min_size {_money(bill.total('min'))}, at max_size {_money(bill.total('max'))} "
                  "(counts in parentheses: min-max)")
    if bill.unpriced:
        result.append("no price (not in the offline table; try --prices online): "
                      + ", ".join(f"{i.group + ': ' if i.group else ''}{i.what}" for i in bill.unpriced))
    result.append("assumed:")
    result += [f"  {a.value:,g} {a.unit}: {a.why}" for _, a in bill.assumptions]
    result.append("not counted:")
    result += [f"  {what}" for what in bill.not_counted]
    return result


def cost_summary(bill: cost.Bill, stack_name: str) -> str:
    """One line for ``plan``: the total and its range; ``estimate --cost`` itemises it."""
    missing = f", {len(bill.unpriced)} lines without a price" if bill.unpriced else ""
    return (f"monthly cost of {stack_name}: about {_money(bill.total())} at the pools' desired sizes "
            f"({_money(bill.total('min'))} at min_size, {_money(bill.total('max'))} at max_size{missing}; "
            f"prices: {bill.price_source}); 'k3s-infra estimate --cost' itemises it")


def cost_json(bill: cost.Bill) -> dict[str, Any]:
    def item(i: cost.Item) -> dict[str, Any]:
        monthly = i.monthly()
        fields = {"what": i.what, "group": i.group, "count": i.count, "unit": i.unit,
                  "unit_price_usd": i.price.usd if i.price else None,
                  "price_unit": (f"{i.price.per:,} {i.price.unit}s" if i.price.per > 1 else i.price.unit)
                  if i.price else None,
                  "monthly_usd": None if monthly is None else round(monthly, 2),
                  "source": i.price.source if i.price else None}
        if i.count_min is not None:
            fields |= {"count_min": i.count_min, "count_max": i.count_max}
        return fields

    return {"region": bill.region, "hours_per_month": prices.HOURS_PER_MONTH, "price_source": bill.price_source,
            "price_note": bill.note, "items": [item(i) for i in bill.items],
            "total_monthly_usd": round(bill.total(), 2),
            "total_monthly_usd_at_min_size": round(bill.total("min"), 2),
            "total_monthly_usd_at_max_size": round(bill.total("max"), 2),
            "unpriced": [i.what for i in bill.unpriced],
            "assumptions": [{"name": name, "value": a.value, "unit": a.unit, "why": a.why}
                            for name, a in bill.assumptions],
            "not_counted": list(bill.not_counted)}
