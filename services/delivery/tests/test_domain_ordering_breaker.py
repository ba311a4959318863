"""Per-lead ordering and the circuit breaker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.delivery.domain.breaker import CircuitBreaker
from services.delivery.domain.ordering import Unsettled, dispatchable
from services.delivery.domain.retry import classify

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=1)
EARLIER = NOW - timedelta(minutes=1)


def test_only_the_head_of_a_stream_goes_even_when_later_ones_are_due() -> None:
    messages = [
        Unsettled(id=1, stream="a", due_at=LATER),
        Unsettled(id=2, stream="a", due_at=EARLIER),
        Unsettled(id=3, stream="b", due_at=EARLIER),
        Unsettled(id=4, stream="b", due_at=EARLIER),
    ]
    assert [m.id for m in dispatchable(messages, NOW)] == [3]


def test_a_leased_or_held_head_blocks_its_stream() -> None:
    messages = [
        Unsettled(id=1, stream="a", due_at=EARLIER, leased_until=LATER),
        Unsettled(id=2, stream="a", due_at=EARLIER),
        Unsettled(id=3, stream="b", due_at=EARLIER, held=True),
        Unsettled(id=4, stream="b", due_at=EARLIER),
        Unsettled(id=5, stream="c", due_at=EARLIER, leased_until=NOW),  # lease ran out
    ]
    assert [m.id for m in dispatchable(messages, NOW)] == [5]


@given(
    st.lists(
        st.tuples(st.sampled_from("abc"), st.integers(min_value=-5, max_value=5)),
        max_size=30,
    )
)
def test_at_most_one_message_per_stream_and_never_a_later_one(
    items: list[tuple[str, int]],
) -> None:
    messages = [
        Unsettled(id=index, stream=stream, due_at=NOW + timedelta(minutes=offset))
        for index, (stream, offset) in enumerate(items)
    ]
    chosen = dispatchable(messages, NOW)
    assert len({m.stream for m in chosen}) == len(chosen)
    for message in chosen:
        assert message.due_at <= NOW
        assert all(other.id >= message.id for other in messages if other.stream == message.stream)


def test_the_breaker_opens_after_a_run_of_failures() -> None:
    breaker = CircuitBreaker(threshold=3)
    failures = 0
    transitions = []
    for status in (500, None, 503):
        step = breaker.after(failures, classify(status))
        failures = step.consecutive_failures
        transitions.append(step.transition)
    assert transitions == ["none", "none", "pause"]
    assert failures == 3


def test_a_delivery_ends_the_run_and_throttling_does_not_count() -> None:
    breaker = CircuitBreaker(threshold=3)
    assert breaker.after(2, classify(200)).consecutive_failures == 0
    step = breaker.after(2, classify(429))
    assert (step.consecutive_failures, step.transition) == (2, "none")
    assert breaker.after(2, classify(404)).transition == "pause"  # refusals count


def test_gone_disables_at_once() -> None:
    assert CircuitBreaker(threshold=5).after(0, classify(410)).transition == "disable"


def test_a_breaker_needs_a_positive_threshold() -> None:
    with pytest.raises(ValueError, match="at least one"):
        CircuitBreaker(threshold=0)
