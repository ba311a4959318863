"""Erasure (GDPR Art. 17, CCPA 1798.105) as every service takes part in it.

Ingest publishes ``leads.erased`` when a person asks to be erased; each service then removes
or anonymises what it holds of the lead, in its own tables, in the transaction of the
handler. What this module gives each of them is the same three things:

* ``erased_leads``, a table in the service's own database (created by its own migration):
  the ids of the erased leads. Events of other topics are not ordered with ``leads.erased``,
  and a service may replay the topics from the start, so an event about an erased lead can
  arrive after the erasure; a handler asks the ledger first and never writes the person
  back.
* a turn per lead. On PostgreSQL, replicas of a service read different partitions at once,
  and ``leads.erased`` is not on the partition of the lead's other events: a handler that
  writes something of a lead first calls :meth:`ErasureLedger.hold`, which takes the lead's
  advisory lock until its transaction ends and then says whether the lead is erased, so an
  erasure and an event of the same lead never interleave (SQLite runs one writer at a time).
* the outbox purge. A service's published outbox rows are kept for a retention period, with
  their whole payloads (a lead snapshot, a note). They are deleted for an erased lead in the
  erasure's transaction; rows still waiting to be published at that moment go out first
  (their consumers erase them in turn), and :func:`outbox_purger`, a worker, deletes them
  once they are published.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
import zlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, Select, Table, Uuid, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from shared.db.clauses import among_parameter, dialect_of
from shared.db.runtime_tables import RuntimeTables
from shared.db.types import UtcDateTime
from shared.observability.logs import get_logger
from shared.outbox import buffered_keys
from shared.stopping import sleep_or_stop

if TYPE_CHECKING:
    from shared.service import ServiceRuntime, Worker

log = get_logger(__name__)

# The first key of the per-lead advisory locks (the second is the lead's): apart from the
# single-key locks of the outbox relay.
LOCK_NAMESPACE = zlib.crc32(b"leadflow-erasure") - 2**31


def erased_leads_table(metadata: MetaData) -> Table:
    return Table(
        "erased_leads",
        metadata,
        Column("lead_id", Uuid, primary_key=True),
        Column("erased_at", UtcDateTime, nullable=False),
        # When the lead's published outbox rows were deleted; NULL while some of its events
        # may still be waiting in the outbox to be published.
        Column("outbox_purged_at", UtcDateTime, nullable=True, index=True),
    )


# The statements of :meth:`ErasureLedger.hold_many`, which every batch of every consumer
# runs: built once (shared.db.clauses.among_parameter says why).
_HOLD_LEADS = text(
    "SELECT pg_advisory_xact_lock(CAST(:namespace AS integer), k)"
    " FROM unnest(CAST(:keys AS integer[])) AS k ORDER BY k"
)


@functools.cache
def _erased_among(erased: Table, dialect: str) -> Select[tuple[uuid.UUID]]:
    return select(erased.c.lead_id).where(among_parameter(dialect, erased.c.lead_id, "lead_ids"))


@dataclass(frozen=True)
class ErasureLedger:
    """The erased leads of one service, and the purge of their rows from its outbox."""

    erased: Table
    runtime_tables: RuntimeTables

    @classmethod
    def define(cls, metadata: MetaData, runtime_tables: RuntimeTables) -> ErasureLedger:
        return cls(erased_leads_table(metadata), runtime_tables)

    def remember(self, session: Session, *, lead_id: uuid.UUID, erased_at: datetime) -> bool:
        """Record the lead as erased; False when it was already."""
        if self.is_erased(session, lead_id):
            return False
        dialect = dialect_of(session)
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            insert(self.erased)
            .values(lead_id=lead_id, erased_at=erased_at, outbox_purged_at=None)
            .on_conflict_do_nothing()
        )
        return True

    def hold(self, session: Session, lead_id: uuid.UUID) -> bool:
        """Take the lead's turn for the rest of the transaction, then say whether it is erased.

        Call it before writing anything of a lead, and in the erasure's handler before
        erasing: the two then never interleave, whichever replica runs which."""
        if dialect_of(session) == "postgresql":
            session.execute(
                text("SELECT pg_advisory_xact_lock(:namespace, :lead)"),
                {"namespace": LOCK_NAMESPACE, "lead": zlib.crc32(lead_id.bytes) - 2**31},
            )
        return self.is_erased(session, lead_id)

    def hold_many(self, session: Session, lead_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """:meth:`hold` for the leads of a batch: their turns taken in one statement and in
        key order (two batches with leads in common wait, never deadlock), then the erased
        among them."""
        ids = set(lead_ids)
        if not ids:
            return set()
        dialect = dialect_of(session)
        if dialect == "postgresql":
            keys = sorted({zlib.crc32(lead_id.bytes) - 2**31 for lead_id in ids})
            session.execute(_HOLD_LEADS, {"namespace": LOCK_NAMESPACE, "keys": keys})
        found = session.execute(_erased_among(self.erased, dialect), {"lead_ids": list(ids)})
        return set(found.scalars())

    def is_erased(self, session: Session, lead_id: uuid.UUID) -> bool:
        found = session.execute(
            select(self.erased.c.lead_id).where(self.erased.c.lead_id == lead_id)
        ).first()
        return found is not None

    def purge_outbox(
        self, session: Session, *, lead_ids: Iterable[uuid.UUID], now: datetime | None = None
    ) -> set[uuid.UUID]:
        """Delete the published outbox rows of these leads (keyed by lead id) and mark the
        leads whose rows are all gone; answer the leads with rows still to be published."""
        ids = set(lead_ids)
        if not ids:
            return set()
        outbox = self.runtime_tables.outbox
        keys = {str(lead_id) for lead_id in ids}
        session.execute(
            delete(outbox).where(outbox.c.key.in_(keys), outbox.c.published_at.is_not(None))
        )
        waiting = {
            uuid.UUID(key)
            for key in session.execute(
                select(outbox.c.key)
                .where(outbox.c.key.in_(keys), outbox.c.published_at.is_(None))
                .distinct()
            ).scalars()
        }
        # Emitted earlier in this very transaction (a consumer's batch writes them at its end).
        waiting |= {uuid.UUID(key) for key in buffered_keys(session) & keys}
        purged = ids - waiting
        if purged:
            session.execute(
                update(self.erased)
                .where(self.erased.c.lead_id.in_(purged))
                .values(outbox_purged_at=now or datetime.now(UTC))
            )
        return waiting

    def unpurged(self, session: Session, *, limit: int = 500) -> list[uuid.UUID]:
        return list(
            session.execute(
                select(self.erased.c.lead_id)
                .where(self.erased.c.outbox_purged_at.is_(None))
                .limit(limit)
            ).scalars()
        )


def outbox_purger(ledger: ErasureLedger) -> Worker:
    """A worker that deletes the outbox rows of erased leads once they are published. It
    looks (a read, no write lock) at the relay's pace and writes only when there is work."""

    async def purge_erased_from_outbox(runtime: ServiceRuntime, stopping: asyncio.Event) -> None:
        interval = max(runtime.settings.outbox_poll_interval_ms / 1000, 0.1)

        def sweep() -> int:
            with runtime.db.read() as session:
                if not ledger.unpurged(session, limit=1):
                    return 0
            with runtime.db.transaction() as session:
                lead_ids = ledger.unpurged(session)
                waiting = ledger.purge_outbox(session, lead_ids=lead_ids)
                return len(lead_ids) - len(waiting)

        while not stopping.is_set():
            purged = await asyncio.to_thread(sweep)
            if purged:
                log.info("outbox purged of erased leads", leads=purged)
            await sleep_or_stop(stopping, interval)

    return purge_erased_from_outbox
