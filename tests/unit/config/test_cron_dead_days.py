"""A snapshot schedule whose day never comes is refused (k3s_infra/config/cron.py ``_fires``):
robfig/cron v3 parses '0 0 31 2 *' and K3s schedules it, but February 31 never comes, so no
snapshot is ever taken, silently.

When a schedule fires, from robfig/cron v3.0.1:
- spec.go ``dayMatches``: "if s.Dom&starBit > 0 || s.Dow&starBit > 0 { return domMatch &&
  dowMatch }; return domMatch || dowMatch": with a star in either day field both must match;
  with both restricted, either does ('0 0 31 2 1' runs on February's Mondays).
- parser.go ``getRange``: ``*`` and ``?`` set the star bit, and a step above 1 clears it
  ('*/2' is restricted, '*/1' a star); 'N/step' runs from N to the field's end.
- spec.go ``Next`` looks five years ahead, so February 29 (leap years) comes: '0 0 29 2 *' runs.
Days per month: the Gregorian calendar (30 in April, June, September, November).
"""

from __future__ import annotations

import pytest

from k3s_infra.config import ConfigError, validate
from k3s_infra.config.cron import cron


@pytest.mark.parametrize("spec, days, months", [
    ("0 0 31 2 *", "31", "February"),
    ("0 0 31 4 *", "31", "April"),
    ("30 2 30 2 *", "30", "February"),
    ("0 0 31 4,6,9,11 ?", "31", "April, June, September, November"),
    ("0 0 30-31 feb *", "30, 31", "February"),
    ("0 0 30/1 2 *", "30, 31", "February"),       # N/step runs to the field's end
    ("0 0 31 2 */1", "31", "February"),           # a step of 1 keeps the weekday a star
    ("CRON_TZ=UTC 15 3 31 jun *", "31", "June"),
    ("0 0 31 2 ?", "31", "February"),
])
def test_a_day_that_never_comes_is_refused(spec, days, months):
    with pytest.raises(ValueError) as caught:
        cron(spec)
    assert str(caught.value) == (f"day of month {days} never occurs in {months}: no such date, so K3s would never "
                                 "take a snapshot")


@pytest.mark.parametrize("spec", [
    "0 0 29 2 *",          # February 29 of leap years
    "0 0 31 2 1",          # both restricted: February's Mondays (OR)
    "0 0 31 2 */2",        # */2 is restricted: Sundays, Tuesdays, ... of February
    "0 0 31 2 mon-fri",
    "0 0 30,31 2,4 *",     # April 30
    "0 0 31 */2 *",        # January, March, ... have 31 days
    "0 0 31 2,3 *",        # March 31
    "0 0 */15 2 *",        # 1, 16 (and 31, never in February)
    "0 0 * 2 *",
    "0 */6 * * *",
    "@monthly",
])
def test_a_schedule_that_comes_is_accepted(spec):
    assert cron(spec) == spec


def test_the_field_is_named_in_an_environment(dev):
    dev.setdefault("k3s", {})["etcd_snapshots"] = {"schedule": "0 0 31 2 *"}
    with pytest.raises(ConfigError) as caught:
        validate(dev, "dev.yaml")
    ((path, message),) = caught.value.problems
    assert path == "k3s.etcd_snapshots.schedule" and "never occurs in February" in message
