"""Where the dispatchers get the time: the system clock, or a test's."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Randomness(Protocol):
    def random(self) -> float: ...


SYSTEM_CLOCK = SystemClock()
SYSTEM_RANDOM: Randomness = random.SystemRandom()
