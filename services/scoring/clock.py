"""The time the service's requests and workers go by, replaceable in tests.

Handlers take the time from the event they handle; requests and workers ask
:func:`clock_of` the runtime, which answers the system clock unless a test put a clock of
its own in ``runtime.state["clock"]``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from shared.service import ServiceRuntime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def clock_of(runtime: ServiceRuntime) -> Clock:
    clock: Clock = runtime.state.get("clock", system_clock)
    return clock
