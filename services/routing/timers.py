"""The SLA worker: warnings and breaches come from timers kept in the database.

Every poll it takes the clocks whose warning or deadline has come, oldest first, and moves
each one under its lead's row lock (``SKIP LOCKED`` on PostgreSQL, so several instances
share the work and never move one clock twice). A restart loses nothing: the timers are
rows, and a deadline that passed while no instance was running is handled on the first poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from services.routing import assigning, repository
from services.routing.clock import Clock
from services.routing.settings import RoutingSettings
from shared.contracts import EventPayload
from shared.service import ServiceRuntime
from shared.stopping import sleep_or_stop


def tick(runtime: ServiceRuntime, clock: Clock) -> int:
    """One transaction over the due clocks; answers how many moved."""
    settings = runtime.settings
    limit = settings.sla_batch_size if isinstance(settings, RoutingSettings) else 100
    now = clock()
    moved = 0
    with runtime.db.transaction() as session:

        def emit(event: EventPayload) -> None:
            runtime.outbox.add(session, event, time=now)

        for assignment_id, lead_id in repository.due_timers(session, now=now, limit=limit):
            if assigning.on_timer(
                session, assignment_id=assignment_id, lead_id=lead_id, now=now, emit=emit
            ):
                moved += 1
    return moved


def sla_worker(
    clock: Clock,
) -> Callable[[ServiceRuntime, asyncio.Event], Coroutine[Any, Any, None]]:
    async def sla_timers(runtime: ServiceRuntime, stopping: asyncio.Event) -> None:
        settings = runtime.settings
        interval = (
            settings.sla_poll_interval_ms / 1000 if isinstance(settings, RoutingSettings) else 1.0
        )
        while not stopping.is_set():
            moved = await asyncio.to_thread(tick, runtime, clock)
            if moved:
                runtime.relay.notify()
            else:
                await sleep_or_stop(stopping, interval)

    return sla_timers
