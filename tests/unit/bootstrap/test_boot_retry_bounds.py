"""The node script's retry helpers at their boundaries (boot_lib.sh retry, backoff, bounded),
run for real, one bash process per table (tests/support/boot_functions.py); the clock (now),
sleep and timeout are stubbed so a row costs microseconds and time is exact.

What the rows hold the helpers to (boot_lib.sh; config/defaults.py BOOT_WAITS: RETRY_BASE 5,
RETRY_MAX 30 seconds): ``retry N`` runs its command at most N times and stops at the first
success; ``-u PATTERN`` gives up at once on an error matching it; ``backoff`` sleeps
exponentially from RETRY_BASE, never beyond RETRY_MAX, jittered into [delay/2, delay] (AWS
Architecture Blog, "Exponential Backoff And Jitter", equal jitter); no sleep that would reach
the boot's deadline starts, and ``bounded`` cuts every timeout to what is left of it
(CloudFormation fails a group whose signal misses the CreationPolicy timeout:
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-creationpolicy.html)."""

from __future__ import annotations

import pytest

from tests.support.boot_functions import bash, function

HELPERS = function("log", "remaining", "bounded", "backoff", "retry")
# A clock that only sleeping moves, a sleep that only records, a timeout that says its bound.
STUBS = """
NOW=1000000
now() { echo "$NOW"; }
sleep() { slept+=("$1"); NOW=$((NOW + $1)); }
timeout() { echo "timeout $1"; }
errors=$(mktemp)
"""
SAMPLES = 100  # seeded (RANDOM=<n>): the same jitter every run


def _deadline(left: int | None) -> str:
    return "deadline=" if left is None else f"deadline=$((NOW + {left}))"


def _jittered(delay: int) -> tuple[int, int]:
    """backoff's range for a delay: delay/2 + RANDOM % (delay/2 + 1), none below 2."""
    return (delay, delay) if delay <= 1 else (delay // 2, 2 * (delay // 2))


# (row, RETRY_BASE, RETRY_MAX, attempt just failed, seconds left or None, the delay before jitter)
BACKOFF = [
    ("first retry", 5, 30, 1, None, 5),
    ("second", 5, 30, 2, None, 10),
    ("third", 5, 30, 3, None, 20),
    ("fourth: 40 capped at 30", 5, 30, 4, None, 30),
    ("attempt 1000: capped, no overflow", 5, 30, 1000, None, 30),
    ("reaching the cap exactly", 15, 30, 2, None, 30),
    ("one below the cap", 7, 30, 3, None, 28),
    ("one doubling past it", 7, 30, 4, None, 30),
    ("a base above the cap", 60, 30, 1, None, 30),
    ("two seconds: jitter of one", 2, 30, 1, None, 2),
    ("one second: no jitter", 1, 1, 5, None, 1),
]


def test_backoff_grows_exponentially_never_beyond_the_cap_and_jitters_within_half():
    program = HELPERS + STUBS + f"""
while read -r retry_base retry_max step left; do
  if [ "$left" = none ]; then deadline=; else deadline=$((NOW + left)); fi
  low=999999 high=-1
  for seed in $(seq 1 {SAMPLES}); do
    RANDOM=$seed slept=()
    backoff "$step"
    if [ "${{slept[0]}}" -lt "$low" ]; then low=${{slept[0]}}; fi
    if [ "${{slept[0]}}" -gt "$high" ]; then high=${{slept[0]}}; fi
  done
  echo "$low $high"
done <<'ROWS'
{chr(10).join(f"{b} {m} {n} {'none' if left is None else left}" for _, b, m, n, left, _ in BACKOFF)}
ROWS
"""
    ranges = [tuple(map(int, line.split())) for line in bash(program)]
    expected = [_jittered(delay) for *_, delay in BACKOFF]
    # Both ends are reached: the lower (delay/2) and the upper (delay, or delay - 1 when odd).
    assert ranges == expected, [row[0] for row, got, want in zip(BACKOFF, ranges, expected) if got != want]
    assert all(high <= cap for (high, cap) in zip((r[1] for r in ranges), (row[2] for row in BACKOFF)))


# (row, RETRY_BASE = RETRY_MAX, seconds left, slept every time?) with the deadline: a sleep
# that would end at or past it is not started (backoff answers 1, its caller gives up).
DEADLINE = [
    ("no deadline", 1, None, True),
    ("a second to spare", 1, 2, True),
    ("it would end at the deadline", 1, 1, False),
    ("the deadline is now", 1, 0, False),
    ("the deadline has passed", 1, -5, False),
]


@pytest.mark.parametrize("jitter", [False, True])
def test_no_sleep_that_would_reach_the_deadline_is_started(jitter):
    rows = DEADLINE if not jitter else [("jittered 15-30 s, 20 s left", 30, 20, None)]
    samples = SAMPLES if jitter else 1  # without jitter every draw is the same
    program = HELPERS + STUBS + f"""
while read -r delay left; do
  retry_base=$delay retry_max=$delay
  if [ "$left" = none ]; then deadline=; else deadline=$((NOW + left)); fi
  for seed in $(seq 1 {samples}); do
    RANDOM=$seed slept=()
    if backoff 1 2>/dev/null; then echo "slept ${{slept[0]}}"; else echo "refused ${{#slept[@]}}"; fi
    NOW=1000000
  done
done <<'ROWS'
{chr(10).join(f"{d} {'none' if left is None else left}" for _, d, left, _ in rows)}
ROWS
"""
    lines = bash(program)
    for n, (row, delay, left, sleeps) in enumerate(rows):
        outcomes = lines[n * samples:(n + 1) * samples]
        assert "refused 1" not in outcomes, row  # a refused wait never slept
        slept = [int(o.split()[1]) for o in outcomes if o.startswith("slept")]
        assert all(left is None or s < left for s in slept), row
        if sleeps is None:  # jittered: both outcomes occur, by the delay drawn
            assert slept and len(slept) < samples and max(slept) == left - 1, row
        else:
            assert len(slept) == (samples if sleeps else 0), row


# (row, attempts, the attempt that succeeds (0: none), -u pattern, its error, seconds left,
#  runs, status, sleeps). Status: 0 success, 1 attempts (or time) spent, 3 a final error.
RETRY = [
    ("one attempt, failing", 1, 0, "", "", None, 1, 1, 0),
    ("three attempts, all failing", 3, 0, "", "", None, 3, 1, 2),
    ("success on the last attempt", 3, 3, "", "", None, 3, 0, 2),
    ("success one attempt too late", 3, 4, "", "", None, 3, 1, 2),
    ("success at once", 3, 1, "", "", None, 1, 0, 0),
    ("zero attempts still tries once", 0, 0, "", "", None, 1, 1, 0),
    ("twenty attempts, all failing", 20, 0, "", "", None, 20, 1, 19),
    ("a final error stops at once", 5, 0, "(ValidationError)", "An error occurred (ValidationError)", None, 1, 3, 0),
    ("other errors are retried", 4, 0, "(ValidationError)", "An error occurred (Throttling)", None, 4, 1, 3),
    ("a final-error pattern, then success", 4, 2, "(ValidationError)", "An error occurred (Throttling)", None, 2, 0, 1),
    ("no time for a second attempt", 5, 0, "", "", 1, 1, 1, 0),
    ("time for two sleeps of 1 s in 3 s", 5, 0, "", "", 3, 3, 1, 2),
]


def test_retry_runs_its_command_exactly_as_often_as_its_attempts_and_the_deadline_allow():
    program = HELPERS + STUBS + """
retry_base=1 retry_max=1
attempt() {
  runs=$((runs + 1))
  if [ "$succeed_on" -gt 0 ] && [ "$runs" -ge "$succeed_on" ]; then return 0; fi
  if [ -n "$error" ]; then echo "$error" >&2; fi
  return 1
}
while IFS='|' read -r attempts succeed_on pattern error left; do
  runs=0 slept=() NOW=1000000
  if [ "$left" = none ]; then deadline=; else deadline=$((NOW + left)); fi
  if [ -n "$pattern" ]; then
    status=0; retry -u "$pattern" "$attempts" attempt 2>/dev/null || status=$?
  else
    status=0; retry "$attempts" attempt 2>/dev/null || status=$?
  fi
  echo "$runs $status ${#slept[@]}"
done <<'ROWS'
""" + "\n".join(f"{a}|{s}|{p}|{e}|{'none' if left is None else left}" for _, a, s, p, e, left, *_ in RETRY) + "\nROWS\n"
    results = [tuple(map(int, line.split())) for line in bash(program)]
    expected = [tuple(row[-3:]) for row in RETRY]
    assert results == expected, [row[0] for row, got, want in zip(RETRY, results, expected) if got != want]


# (row, the step's own bound, seconds left or None, the timeout it runs under or None: not run)
BOUNDED = [
    ("no deadline", 10, None, 10),
    ("more time left than its bound", 10, 11, 10),
    ("exactly its bound left", 10, 10, 10),
    ("one second less", 10, 9, 9),
    ("one second left", 10, 1, 1),
    ("none left", 10, 0, None),
    ("past the deadline", 10, -3, None),
]


def test_bounded_cuts_every_timeout_to_what_is_left_and_starts_nothing_past_the_deadline():
    program = HELPERS + STUBS + """
while read -r limit left; do
  if [ "$left" = none ]; then deadline=; else deadline=$((NOW + left)); fi
  status=0; ran=$(bounded "$limit" true 2>/dev/null) || status=$?
  echo "${ran:-not run} $status"
done <<'ROWS'
""" + "\n".join(f"{limit} {'none' if left is None else left}" for _, limit, left, _ in BOUNDED) + "\nROWS\n"
    results = bash(program)
    expected = [f"timeout {t} 0" if t is not None else "not run 124" for *_, t in BOUNDED]
    assert results == expected, [row[0] for row, got, want in zip(BOUNDED, results, expected) if got != want]

