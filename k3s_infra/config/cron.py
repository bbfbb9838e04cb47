"""Cron schedules as K3s reads them (``etcd-snapshot-schedule-cron``).

K3s schedules snapshots with robfig/cron v3's standard parser and drops the error when a
schedule does not parse (k3s-io/k3s pkg/etcd/etcd.go, setSnapshotFunction: the result of
``e.cron.AddFunc`` is ignored), so a schedule it refuses means no snapshot is ever taken,
silently. These rules are robfig/cron v3.0.1's (parser.go ``Parse``, ``getRange``,
``parseDescriptor``; spec.go ``bounds``):

- an optional ``CRON_TZ=<zone> `` or ``TZ=<zone> `` prefix, the zone an IANA name
  (Go ``time.LoadLocation``);
- five fields (minute 0-59, hour 0-23, day of month 1-31, month 1-12 or jan-dec, day of
  week 0-6 or sun-sat: **7 is not Sunday** there), each a list of ``*``, ``N``, ``N-M``
  with an optional ``/step``; ``?`` stands for ``*`` in the day fields;
- or a descriptor: ``@yearly``, ``@annually``, ``@monthly``, ``@weekly``, ``@daily``,
  ``@midnight``, ``@hourly``, or ``@every <Go duration>`` (``6h``, ``1h30m``).

Stricter than robfig, on purpose: digits are ASCII only (Python's ``int`` also reads
Arabic-Indic or fullwidth digits, Go's ``strconv.Atoi`` does not), a step is at most the
field's maximum, and ``@every`` is at least a minute (robfig rounds anything under a second
up to one second: a snapshot every second).
"""

from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache

_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                            "nov", "dec"))}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (name, lowest, highest, names) of the five fields: robfig/cron v3 spec.go bounds.
FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
          ("month", 1, 12, _MONTHS), ("day of week", 0, 6, _DAYS))
DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
EVERY_MINIMUM_SECONDS = 60
# Go time.ParseDuration units (src/time/format.go unitMap), in nanoseconds.
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10 ** 9, "m": 60 * 10 ** 9,
          "h": 3600 * 10 ** 9}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|h|m|s)")
_MAX_NANOSECONDS = 2 ** 63 - 1  # a Go Duration is an int64 of nanoseconds


def cron(value: str) -> str:
    """``value`` when K3s's cron parser takes it, else ValueError saying what is wrong."""
    foreign = next((c for c in value if not c.isascii()), None)
    if foreign is not None:
        raise ValueError(f"{foreign!r} (U+{ord(foreign):04X}) is not ASCII: a cron schedule is written with "
                         "ASCII digits, names and * , - / ?")
    spec = value
    if spec.startswith(("TZ=", "CRON_TZ=")):
        zone, space, rest = spec.partition(" ")
        _zone(zone.partition("=")[2])
        if not space or not rest.strip():
            raise ValueError(f"{zone[:60]!r} must be followed by a space and the schedule")
        spec = rest.strip()
    if spec.startswith("@"):
        return _descriptor(spec, value)
    fields = spec.split()
    if len(fields) != 5:
        raise ValueError(f"{value[:80]!r}: a cron schedule has 5 fields (minute hour day month weekday), "
                         f"got {len(fields)}")
    parsed = []
    for text, (name, low, high, names) in zip(fields, FIELDS):
        items = [_item(item, name, low, high, names) for item in text.split(",")]
        parsed.append((set().union(*(found for found, _ in items)), any(star for _, star in items)))
    _fires(parsed)
    return value


# Days of each month in a leap year: February 29 comes every four years, and robfig looks five
# years ahead for the next time (spec.go Next: "yearLimit := t.Year() + 5").
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                "October", "November", "December")


def _fires(parsed: list[tuple[set[int], bool]]) -> None:
    """Refuse a schedule whose days never come. robfig/cron v3 spec.go ``dayMatches``: when day
    of month or day of week is a star (``*`` or ``?``, not ``*/2``: parser.go getRange clears the
    star bit for a step above 1), a day must match both; else either. So '0 0 31 2 *' never fires,
    while '0 0 31 2 1' fires on February's Mondays."""
    (days, day_star), (months, _), (_, weekday_star) = parsed[2], parsed[3], parsed[4]
    if not (day_star or weekday_star):
        return
    if any(day <= MONTH_DAYS[month - 1] for month in months for day in days):
        return
    shown_days = ", ".join(map(str, sorted(days)[:8])) + (", ..." if len(days) > 8 else "")
    shown_months = ", ".join(_MONTH_NAMES[m - 1] for m in sorted(months))
    raise ValueError(f"day of month {shown_days} never occurs in {shown_months}: no such date, so K3s would "
                     "never take a snapshot")


def _descriptor(spec: str, value: str) -> str:
    if spec in DESCRIPTORS:
        return value
    if spec.startswith("@every "):
        seconds = go_duration(spec[len("@every "):]) / 10 ** 9
        if seconds < EVERY_MINIMUM_SECONDS:
            raise ValueError(f"@every {spec[7:27]!r} is under a minute: etcd snapshots that often would only "
                             "load the datastore")
        return value
    known = ", ".join(sorted(DESCRIPTORS))
    raise ValueError(f"{spec[:30]!r} is not a descriptor K3s knows ({known} or @every <duration> like 6h)")


def go_duration(text: str) -> int:
    """Nanoseconds of a Go duration string (time.ParseDuration): '1h30m', '1.5h', '0'."""
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text.removeprefix("+"))
    if body == "0":
        return 0
    position, total = 0, 0.0
    while position < len(body):
        part = _DURATION_PART.match(body, position)
        if not part or not re.search(r"[0-9]", part[1]):
            raise ValueError(f"{text[:20]!r} is not a Go duration (a number and a unit: 45m, 6h, 1h30m)")
        total += float(part[1]) * _UNITS[part[2]]
        position = part.end()
    if not body or total > _MAX_NANOSECONDS:
        raise ValueError(f"{text[:20]!r} is not a Go duration (a number and a unit: 45m, 6h, 1h30m)")
    return sign * int(total)


def _zone(name: str) -> None:
    """Go's time.LoadLocation: 'UTC', 'Local' or an IANA zone (the node's tz database)."""
    if name in ("UTC", "Local") or name in _known_zones():
        return
    shaped = re.fullmatch(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*", name)
    if _known_zones() or not shaped:
        raise ValueError(f"time zone {name[:40]!r} is not an IANA zone name like Europe/Berlin or UTC")


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    """IANA zones Python knows (empty without a tz database: then only the shape is checked)."""
    return frozenset(zoneinfo.available_timezones())


def _item(item: str, name: str, low: int, high: int, names: dict[str, int]) -> tuple[set[int], bool]:
    """The values one list item of a field matches, and whether it is a star (robfig parser.go
    getRange: ``*`` or ``?`` with no step above 1; ``N/step`` runs from N to the field's end)."""
    span, _, step = item.partition("/")
    if step and (not re.fullmatch(r"[0-9]+", step) or not 1 <= _bounded(step) <= high):
        raise ValueError(f"the {name} field: step {step[:20]!r} must be a number from 1 to {high}")
    every = _bounded(step) if step else 1
    if span in ("*", "?") and (span == "*" or name.startswith("day")):
        return set(range(low, high + 1, every)), every == 1
    start, _, end = span.partition("-")

    def number(text: str) -> int:
        found = names.get(text.lower()) if names else None
        if found is None and not re.fullmatch(r"[0-9]+", text):
            raise ValueError(f"the {name} field: {item[:20]!r} is not a number{' or name' if names else ''}")
        found = _bounded(text) if found is None else found
        if not low <= found <= high:
            shown = found if found < 10 ** 6 else text[:20]
            hint = " (Sunday is 0)" if name == "day of week" and found == 7 else ""
            raise ValueError(f"the {name} field: {shown} is outside {low}-{high}{hint}")
        return found

    first = number(start)
    last = number(end) if end else high if step else first
    if last < first:
        raise ValueError(f"the {name} field: range {span[:20]!r} runs backwards")
    return set(range(first, last + 1, every)), False


def _bounded(digits: str) -> int:
    """An ASCII digit string as a number, capped (int() of 5,000 digits raises)."""
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 9 else 10 ** 9
