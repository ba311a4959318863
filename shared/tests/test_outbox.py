"""The outbox inside a transaction: written at once, or buffered and written together."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from shared.db import Database
from shared.outbox import Outbox
from shared.testing import factories
from shared.testing.probe.models import TABLES


def rows(session: Session) -> list[str]:
    outbox = TABLES.outbox
    return list(session.execute(select(outbox.c.event_id).order_by(outbox.c.id)).scalars())


def test_events_are_written_at_once_by_default(database: Database) -> None:
    outbox = Outbox(TABLES, source="/test")
    with database.transaction() as session:
        event = outbox.add(session, factories.lead_scored())
        assert rows(session) == [event.id]


def test_buffered_events_are_written_together_in_order_when_the_block_ends(
    database: Database,
) -> None:
    outbox = Outbox(TABLES, source="/test")
    with database.transaction() as session:
        with outbox.buffered(session):
            first = outbox.add(session, factories.lead_scored())
            second = outbox.add(session, factories.lead_routed())
            assert rows(session) == []  # not yet: one insert at the end
        assert rows(session) == [first.id, second.id]
    with database.read() as session:
        count = session.execute(select(func.count()).select_from(TABLES.outbox)).scalar_one()
    assert count == 2


def test_a_buffered_block_that_raises_writes_nothing(database: Database) -> None:
    outbox = Outbox(TABLES, source="/test")

    def emit_then_fail(session: Session) -> None:
        with outbox.buffered(session):
            outbox.add(session, factories.lead_scored())
            raise RuntimeError("handler failed")

    with database.transaction() as session:
        with pytest.raises(RuntimeError, match="handler failed"):
            emit_then_fail(session)
        kept = outbox.add(session, factories.lead_sla())  # unbuffered again after the block
        assert rows(session) == [kept.id]
