"""The circuit breaker of a subscription: a receiver that keeps failing is paused.

Every failed attempt that is the receiver's fault (5xx, no answer, a refusal) adds one to the
subscription's run of consecutive failures; a delivered message ends the run; a 429 is
throttling, not failure, and changes nothing. When the run reaches the threshold, the
subscription is paused: its messages wait (new ones are still queued) until someone resumes
it, and resuming drains them in order. A 410 Gone disables the subscription at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.delivery.domain.retry import Classification

Transition = Literal["none", "pause", "disable"]


@dataclass(frozen=True)
class BreakerStep:
    consecutive_failures: int
    transition: Transition


@dataclass(frozen=True)
class CircuitBreaker:
    threshold: int = 10

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError("the threshold is at least one failure")

    def after(self, consecutive_failures: int, outcome: Classification) -> BreakerStep:
        if outcome.verdict == "gone":
            return BreakerStep(consecutive_failures, "disable")
        if outcome.verdict == "delivered":
            return BreakerStep(0, "none")
        if not outcome.counts_as_failure:
            return BreakerStep(consecutive_failures, "none")
        failures = consecutive_failures + 1
        return BreakerStep(failures, "pause" if failures >= self.threshold else "none")
