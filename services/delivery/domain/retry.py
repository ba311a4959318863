"""When to try a failed delivery again, and what an HTTP answer means.

The schedule follows Standard Webhooks' recommendation: exponential delays with random
jitter, for a window of at least 24 hours measured from the first attempt. The attempt that
would fall after the window's end is moved to its very end, so a receiver that is down for
just under the window still gets its messages; a failure at or after the end gives up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

DEFAULT_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
)


@dataclass(frozen=True)
class RetrySchedule:
    delays: tuple[timedelta, ...] = DEFAULT_DELAYS
    window: timedelta = timedelta(hours=24)
    # Each delay is stretched or shrunk by up to this fraction, so that receivers that failed
    # together are not retried together.
    jitter: float = 0.2
    # A Retry-After longer than this is not waited for in full.
    max_retry_after: timedelta = timedelta(hours=6)

    def __post_init__(self) -> None:
        if not self.delays or any(delay <= timedelta(0) for delay in self.delays):
            raise ValueError("delays must be positive")
        if list(self.delays) != sorted(self.delays):
            raise ValueError("delays must not decrease")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")
        if self.window <= timedelta(0):
            raise ValueError("the window must be positive")

    def delay(self, failures: int, rand: float) -> timedelta:
        """The wait after the ``failures``-th failed attempt; ``rand`` is uniform in [0, 1)."""
        if failures < 1:
            raise ValueError("failures counts failed attempts, from 1")
        base = self.delays[min(failures, len(self.delays)) - 1]
        return base * (1 + self.jitter * (2 * rand - 1))

    def deadline(self, window_started_at: datetime) -> datetime:
        return window_started_at + self.window

    def next_attempt(
        self,
        *,
        failures: int,
        window_started_at: datetime,
        now: datetime,
        rand: float,
        retry_after: timedelta | None = None,
    ) -> datetime | None:
        """When to try again after a failure at ``now``; ``None``: give up."""
        deadline = self.deadline(window_started_at)
        if now >= deadline:
            return None
        wait = self.delay(failures, rand)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return min(now + wait, deadline)


Verdict = Literal["delivered", "retry", "gone"]


@dataclass(frozen=True)
class Classification:
    verdict: Verdict
    # Counts towards the circuit breaker: the receiver is failing, not just throttling.
    counts_as_failure: bool
    # A 4xx other than 408 and 429: retried within the window all the same, but counted, as
    # it usually means the receiver refuses what we send.
    client_error: bool
    # 429 and 503 may say how long to wait.
    honours_retry_after: bool


def classify(status_code: int | None) -> Classification:
    """What one attempt's answer means. ``None``: no answer (refused, reset, timed out)."""
    if status_code is not None and 200 <= status_code <= 299:
        return Classification("delivered", False, False, False)
    if status_code == 410:
        return Classification("gone", False, True, False)
    if status_code == 429:
        return Classification("retry", False, False, True)
    if status_code == 503:
        return Classification("retry", True, False, True)
    client_error = status_code is not None and 400 <= status_code <= 499 and status_code != 408
    # 3xx are failures too: redirects are not followed, the subscription's URL should change.
    return Classification("retry", True, client_error, False)


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header (delay-seconds or an HTTP-date) as a wait from ``now``."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(timedelta(0), moment - now)
