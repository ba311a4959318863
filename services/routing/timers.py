"""The SLA worker: warnings and breaches come from timers kept in the database.

Every poll it takes the clocks whose warning or deadline has come, oldest first, and moves
each one under its lead's row lock (``SKIP LOCKED`` on PostgreSQL, so several instances
share the work and never move one clock twice). A restart loses nothing: the timers are
rows, and a deadline that passed while no instance was running is handled on the first poll.

Every ``queue_retry_interval_ms`` it also tries the leads waiting in team queues (nobody
could take them, or no team covered them; not escalations, which are the team's to handle)
and assigns those someone can take now: capacity freed, a rep back, a team added.
"""

from __future__ import annotations

import asyncio
import time
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


def drain(runtime: ServiceRuntime, clock: Clock) -> int:
    """One pass over the team queues: leads someone can take now are assigned."""
    settings = runtime.settings
    limit = settings.sla_batch_size if isinstance(settings, RoutingSettings) else 100
    now = clock()
    taken = 0
    with runtime.db.transaction() as session:

        def emit(event: EventPayload) -> None:
            runtime.outbox.add(session, event, time=now)

        for assignment_id, lead_id in repository.queued_leads(
            session, rules=assigning.DRAINED_RULES, limit=limit
        ):
            if assigning.retry_queued(
                session, assignment_id=assignment_id, lead_id=lead_id, now=now, emit=emit
            ):
                taken += 1
    return taken


def sla_worker(
    clock: Clock,
) -> Callable[[ServiceRuntime, asyncio.Event], Coroutine[Any, Any, None]]:
    async def sla_timers(runtime: ServiceRuntime, stopping: asyncio.Event) -> None:
        settings = runtime.settings
        interval = (
            settings.sla_poll_interval_ms / 1000 if isinstance(settings, RoutingSettings) else 1.0
        )
        drain_every = (
            settings.queue_retry_interval_ms / 1000
            if isinstance(settings, RoutingSettings)
            else 60.0
        )
        drained_at = 0.0
        while not stopping.is_set():
            moved = await asyncio.to_thread(tick, runtime, clock)
            if time.monotonic() - drained_at >= drain_every:
                drained_at = time.monotonic()
                moved += await asyncio.to_thread(drain, runtime, clock)
            if moved:
                runtime.relay.notify()
            else:
                await sleep_or_stop(stopping, interval)

    return sla_timers
