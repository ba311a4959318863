"""Background work: the default rulebook at start, re-scoring after an activation, and the
decay scheduler.

Work is kept in the database (a re-scoring job and its cursor; each lead's next check time),
so a restart resumes where the last committed page ended. Each page of leads is one
transaction: the new scores and the events of the grades that changed commit together.
"""

from __future__ import annotations

import asyncio
import contextlib

from services.scoring import repository, rulebook_store
from services.scoring.clock import clock_of
from services.scoring.rescoring import rescore
from services.scoring.settings import ScoringSettings
from shared.observability.logs import get_logger
from shared.service import ServiceRuntime
from shared.stopping import sleep_or_stop, wake_or_stop

log = get_logger(__name__)


class Wakeup:
    """Wakes a worker at once when a request on this replica gave it work (thread-safe)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def bind(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def notify(self) -> None:
        loop, event = self._loop, self._event
        if loop is None or event is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under us at shutdown
            loop.call_soon_threadsafe(event.set)

    async def wait(self, stopping: asyncio.Event, timeout: float) -> None:
        assert self._event is not None
        await wake_or_stop(self._event, stopping, timeout)
        self._event.clear()


def rescore_wakeup(runtime: ServiceRuntime) -> Wakeup:
    wakeup: Wakeup = runtime.state.setdefault("rescore_wakeup", Wakeup())
    return wakeup


def settings_of(runtime: ServiceRuntime) -> ScoringSettings:
    settings = runtime.settings
    assert isinstance(settings, ScoringSettings)
    return settings


async def install_default_rulebook(runtime: ServiceRuntime, stopping: asyncio.Event) -> None:
    """Store the shipped default as version 1 when there is no rulebook yet."""

    def install() -> None:
        with runtime.db.transaction() as session:
            rulebook_store.ensure_active(session=session, now=clock_of(runtime)())

    await asyncio.to_thread(install)


async def rescore_worker(runtime: ServiceRuntime, stopping: asyncio.Event) -> None:
    """Re-score every open lead after an activation, a page per transaction."""
    settings = settings_of(runtime)
    wakeup = rescore_wakeup(runtime)
    wakeup.bind()
    while not stopping.is_set():
        if await asyncio.to_thread(rescore_page, runtime):
            runtime.relay.notify()
            continue
        await wakeup.wait(stopping, settings.rescore_poll_interval_ms / 1000)


def rescore_page(runtime: ServiceRuntime) -> bool:
    """One page of the job in progress; False when there is nothing to do."""
    settings = settings_of(runtime)
    now = clock_of(runtime)()
    with runtime.db.transaction() as session:
        job = repository.current_rescore_job(session=session)
        if job is None:
            return False
        active = repository.active_rulebook(session=session)
        if active is None or active.version != job.rulebook_version:
            job.status, job.finished_at = "superseded", now
            session.add(job)
            return True
        lead_ids = repository.open_lead_ids_after(
            session=session, after=job.cursor, limit=settings.rescore_batch_size
        )
        if not lead_ids:
            job.status, job.finished_at = "done", now
            session.add(job)
            log.info(
                "re-scoring done",
                rulebook_version=job.rulebook_version,
                leads_rescored=job.leads_rescored,
                grades_changed=job.grades_changed,
            )
            return True
        counts = rescore(
            session=session,
            outbox=runtime.outbox,
            rulebook=rulebook_store.compiled(active),
            lead_ids=lead_ids,
            now=now,
            trigger="rulebook_activated",
            publish="changed",
        )
        job.status = "running"
        job.cursor = lead_ids[-1]
        job.leads_rescored += counts.rescored
        job.grades_changed += counts.published
        session.add(job)
    return True


async def decay_worker(runtime: ServiceRuntime, stopping: asyncio.Event) -> None:
    """Re-score leads whose grade decay may have moved; publish those whose grade did."""
    settings = settings_of(runtime)
    while not stopping.is_set():
        taken = await asyncio.to_thread(decay_page, runtime)
        if taken:
            runtime.relay.notify()
        if taken >= settings.decay_batch_size:
            continue  # more may be due
        await sleep_or_stop(stopping, settings.decay_poll_interval_ms / 1000)


def decay_page(runtime: ServiceRuntime) -> int:
    """One page of due leads, re-scored at the clock's now; answers how many were due."""
    settings = settings_of(runtime)
    now = clock_of(runtime)()
    with runtime.db.transaction() as session:
        # The rulebook lock (shared) before the leads', as the consumer takes them: an
        # activation in progress is waited for, and the page is scored with its version.
        rulebook = rulebook_store.for_scoring(session=session, now=now)
        lead_ids = repository.due_lead_ids(
            session=session, now=now, limit=settings.decay_batch_size
        )
        if not lead_ids:
            return 0
        counts = rescore(
            session=session,
            outbox=runtime.outbox,
            rulebook=rulebook,
            lead_ids=lead_ids,
            now=now,
            trigger="decay",
            publish="changed",
        )
        for lead_id in counts.unknown:
            repository.clear_next_check(session=session, lead_id=lead_id)
    return len(lead_ids)
