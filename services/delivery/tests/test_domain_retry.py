"""The retry schedule (24-hour window, backoff, jitter, Retry-After) and what answers mean."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.delivery.domain.retry import (
    RetrySchedule,
    classify,
    parse_retry_after,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SCHEDULE = RetrySchedule()


def failing_forever(
    schedule: RetrySchedule, rands: list[float], retry_after: timedelta | None = None
) -> list[datetime]:
    """The attempt times of a message whose every attempt fails."""
    attempts = [T0]
    while True:
        index = len(attempts) - 1
        following = schedule.next_attempt(
            failures=len(attempts),
            window_started_at=T0,
            now=attempts[-1],
            rand=rands[index % len(rands)],
            retry_after=retry_after,
        )
        if following is None:
            return attempts
        attempts.append(following)
        assert len(attempts) < 1000


def test_without_jitter_the_schedule_is_exponential_and_ends_at_24_hours() -> None:
    attempts = failing_forever(RetrySchedule(jitter=0), [0.5])
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert gaps[:6] == [
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
    ]
    # 17:35:05 after the first attempt; the next 10 hours would pass the window: the last
    # attempt is at its very end, and its failure gives up.
    assert attempts[-1] == T0 + timedelta(hours=24)
    assert len(attempts) == 8


@given(
    rands=st.lists(st.floats(min_value=0, max_value=1, exclude_max=True), min_size=1),
    jitter=st.floats(min_value=0, max_value=0.9),
    hours=st.integers(min_value=24, max_value=96),
    retry_after=st.none() | st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
)
def test_retries_span_the_whole_window_and_then_stop(
    rands: list[float], jitter: float, hours: int, retry_after: timedelta | None
) -> None:
    schedule = RetrySchedule(jitter=jitter, window=timedelta(hours=hours))
    attempts = failing_forever(schedule, rands, retry_after)
    assert attempts[-1] == T0 + timedelta(hours=hours)  # the last try is at the window's end
    assert attempts == sorted(attempts)
    assert len(set(attempts)) == len(attempts)
    # Never hammered: no two attempts closer than the shortest jittered delay.
    shortest = schedule.delays[0] * (1 - jitter)
    for earlier, later in itertools.pairwise(attempts):
        assert later - earlier >= min(shortest, attempts[-1] - earlier)


@given(
    failures=st.integers(min_value=1, max_value=50),
    rand=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_jitter_stays_within_its_fraction(failures: int, rand: float) -> None:
    base = SCHEDULE.delays[min(failures, len(SCHEDULE.delays)) - 1]
    delay = SCHEDULE.delay(failures, rand)
    assert base * 0.8 <= delay <= base * 1.2


def test_retry_after_is_honoured_up_to_its_cap() -> None:
    now = T0 + timedelta(minutes=1)
    assert SCHEDULE.next_attempt(
        failures=1, window_started_at=T0, now=now, rand=0.5, retry_after=timedelta(minutes=7)
    ) == now + timedelta(minutes=7)
    # A shorter Retry-After does not make us retry sooner than the schedule says.
    assert SCHEDULE.next_attempt(
        failures=3, window_started_at=T0, now=now, rand=0.5, retry_after=timedelta(seconds=1)
    ) == now + timedelta(minutes=30)
    assert SCHEDULE.next_attempt(
        failures=1, window_started_at=T0, now=now, rand=0.5, retry_after=timedelta(days=2)
    ) == now + timedelta(hours=6)


def test_a_failure_at_the_end_of_the_window_gives_up() -> None:
    end = T0 + timedelta(hours=24)
    assert SCHEDULE.next_attempt(failures=9, window_started_at=T0, now=end, rand=0.1) is None
    assert (
        SCHEDULE.next_attempt(
            failures=9, window_started_at=T0, now=end - timedelta(seconds=1), rand=0.1
        )
        == end
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delays": ()},
        {"delays": (timedelta(0),)},
        {"delays": (timedelta(hours=1), timedelta(minutes=1))},
        {"jitter": 1.0},
        {"window": timedelta(0)},
    ],
)
def test_nonsense_schedules_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"must|fraction"):
        RetrySchedule(**kwargs)  # type: ignore[arg-type]


def test_failures_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        SCHEDULE.delay(0, 0.5)


@pytest.mark.parametrize(
    ("status", "verdict", "failure", "client_error", "retry_after"),
    [
        (200, "delivered", False, False, False),
        (204, "delivered", False, False, False),
        (299, "delivered", False, False, False),
        (None, "retry", True, False, False),
        (301, "retry", True, False, False),
        (400, "retry", True, True, False),
        (401, "retry", True, True, False),
        (404, "retry", True, True, False),
        (408, "retry", True, False, False),
        (410, "gone", False, True, False),
        (429, "retry", False, False, True),
        (500, "retry", True, False, False),
        (502, "retry", True, False, False),
        (503, "retry", True, False, True),
    ],
)
def test_what_an_answer_means(
    status: int | None, verdict: str, failure: bool, client_error: bool, retry_after: bool
) -> None:
    outcome = classify(status)
    assert outcome.verdict == verdict
    assert outcome.counts_as_failure is failure
    assert outcome.client_error is client_error
    assert outcome.honours_retry_after is retry_after


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert parse_retry_after("120", T0) == timedelta(seconds=120)
    assert parse_retry_after(" 0 ", T0) == timedelta(0)
    assert parse_retry_after("Mon, 02 Mar 2026 09:10:00 GMT", T0) == timedelta(minutes=10)
    assert parse_retry_after("Mon, 02 Mar 2026 08:00:00 GMT", T0) == timedelta(0)
    assert parse_retry_after(None, T0) is None
    assert parse_retry_after("soon", T0) is None
    assert parse_retry_after("-5", T0) is None
