"""Snapshot schedules as K3s's cron library reads them (k3s_infra/config/cron.py).

K3s schedules etcd snapshots with robfig/cron v3 and ignores the error when a schedule does not
parse (k3s-io/k3s pkg/etcd/etcd.go setSnapshotFunction drops AddFunc's error): a schedule
robfig refuses means snapshots silently never run. Expected values from robfig/cron v3.0.1:
- spec.go bounds: minute 0-59, hour 0-23, dom 1-31, month 1-12, **dow 0-6** (names sun-sat);
- parser.go Parse: an optional "TZ=<zone> " or "CRON_TZ=<zone> " prefix (time.LoadLocation);
  descriptors @yearly @annually @monthly @weekly @daily @midnight @hourly and
  "@every <duration>" (time.ParseDuration: "1h30m", "1.5h", units ns us µs ms s m h);
- mustParseInt is strconv.Atoi: ASCII digits only, where Python's int() also reads
  Arabic-Indic (٣) and fullwidth (３) digits and str.isdigit() also passes superscripts (²).
"""

from __future__ import annotations

import pytest

from k3s_infra.config import ConfigError, validate
from k3s_infra.config.cron import cron, go_duration


def schedule(document: dict, value: str) -> dict:
    document.setdefault("k3s", {})["etcd_snapshots"] = {"schedule": value}
    return document


def problem(document: dict, value: str) -> tuple[str, str]:
    with pytest.raises(ConfigError) as caught:
        validate(schedule(document, value), "dev.yaml")
    ((path, message),) = caught.value.problems
    return path, message


ACCEPTED = [
    "0 */6 * * *", "30 2 * * 0", "0 3 * * sun", "0 3 * * MON-FRI", "0 0 1 jan,jul ?", "*/15 * * * 1-5",
    "@daily", "@midnight", "@every 6h", "@every 1h30m", "@every 90m", "@every 1.5h",
    "CRON_TZ=Europe/Berlin 0 3 * * *", "TZ=America/New_York 0 3 * * *", "CRON_TZ=UTC @daily",
    "CRON_TZ=Asia/Kolkata @every 12h", "0 3 * * 6",
]


@pytest.mark.parametrize("value", ACCEPTED)
def test_schedules_k3s_runs_are_accepted(dev, value):
    assert validate(schedule(dev, value), "dev.yaml").k3s.etcd_snapshots.schedule == value


REFUSED = {
    # value: words the message must hold
    "0 3 * * 7": "outside 0-6",                       # 7 is not Sunday in robfig/cron v3
    "0 3 * * 5-7": "outside 0-6",
    "0 3 * * 8": "outside 0-6",
    "0 ٣ * * *": "not ASCII",                          # Arabic-Indic three
    "０ 3 * * *": "not ASCII",                         # fullwidth zero
    "0 3 * * ²": "not ASCII",                          # superscript two: isdigit() yet int() fails
    "0 3\u00a0* * *": "not ASCII",                     # a no-break space between fields
    "@every 6": "not a Go duration",                   # a unit is required
    "@every 1d": "not a Go duration",                  # Go has no day unit
    "@every h": "not a Go duration",
    "@every 30s": "under a minute",                    # robfig rounds < 1s to 1s; we ask for >= 1m
    "@every -1h": "under a minute",
    "@every 6h ": "is not valid",                      # robfig does not trim after @every
    "@fortnightly": "not a descriptor",
    "CRON_TZ=Mars/Olympus 0 3 * * *": "not an IANA zone",
    "CRON_TZ= 0 3 * * *": "not an IANA zone",
    "TZ=../../etc/passwd 0 3 * * *": "not an IANA zone",
    "0 24 * * *": "outside 0-23",
    "0 0 0 * *": "outside 1-31",
    "0 0 * 13 *": "outside 1-12",
    "0 0 L * *": "not a number",
    "0 0 * * 1#2": "not a number",
    "+5 * * * *": "not a number",
}


@pytest.mark.parametrize("value", sorted(REFUSED))
def test_schedules_k3s_would_silently_drop_are_refused(dev, value):
    path, message = problem(dev, value)
    assert path == "k3s.etcd_snapshots.schedule"
    assert REFUSED[value] in message, message


@pytest.mark.parametrize("value", ["0 ٣ * * *", "0 3 * * ²", "0 0 ４ * *", f"{'7' * 5000} * * * *",
                                   f"*/{'9' * 5000} * * * *"])
def test_a_bad_digit_never_shows_pythons_int_errors(dev, value):
    _, message = problem(dev, value)
    assert "invalid literal" not in message and "Exceeds the limit" not in message and "int()" not in message
    assert len(message) < 300


def test_sunday_as_7_says_sunday_is_0(dev):
    _, message = problem(dev, "0 3 * * 7")
    assert message == "the day of week field: 7 is outside 0-6 (Sunday is 0)"


@pytest.mark.parametrize("text, nanoseconds", [
    ("6h", 6 * 3600 * 10 ** 9), ("1h30m", 5400 * 10 ** 9), ("1.5h", 5400 * 10 ** 9), ("90s", 90 * 10 ** 9),
    ("300ms", 300 * 10 ** 6), ("2h45m30s", (2 * 3600 + 45 * 60 + 30) * 10 ** 9), ("0", 0), (".5h", 1800 * 10 ** 9),
])
def test_go_durations_read_as_time_parse_duration_does(text, nanoseconds):
    assert go_duration(text) == nanoseconds


@pytest.mark.parametrize("text", ["", "h", "1", "1d", "1 h", "1h 30m", "9999999999h", "1.2.3h"])
def test_strings_go_refuses_as_durations_are_refused(text):
    with pytest.raises(ValueError, match="not a Go duration"):
        go_duration(text)


def test_the_tz_prefix_needs_the_schedule_after_it():
    with pytest.raises(ValueError, match="followed by a space and the schedule"):
        cron("CRON_TZ=UTC")
