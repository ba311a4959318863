"""The tables the event runtime needs in every service's database.

Each service owns its database, so each service's metadata gets its own copy of these
tables (and its first migration creates them with :mod:`shared.db.migration_ops`):

* ``processed_events``: one row per (consumer, event id) handled; makes consumers idempotent.
* ``outbox``: events written in the same transaction as the state that caused them, and
  published to Kafka by the relay after the commit, so a crash in between loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

from shared.db.types import UtcDateTime

BigId = BigInteger().with_variant(Integer, "sqlite")


def processed_events_table(metadata: MetaData) -> Table:
    return Table(
        "processed_events",
        metadata,
        Column("consumer", String(200), nullable=False),
        Column("event_id", String(200), nullable=False),
        Column("topic", String(255), nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        # processed | dead_lettered
        Column("outcome", String(20), nullable=False),
        Column("processed_at", UtcDateTime, nullable=False),
        PrimaryKeyConstraint("consumer", "event_id", name="pk_processed_events"),
    )


def outbox_table(metadata: MetaData) -> Table:
    table = Table(
        "outbox",
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("event_id", String(200), nullable=False, unique=True),
        Column("topic", String(255), nullable=False),
        Column("key", String(255), nullable=False),
        Column("headers", Text, nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("published_at", UtcDateTime, nullable=True),
    )
    # The relay only ever looks for what is still to be sent, oldest first.
    Index(
        "ix_outbox_pending",
        table.c.id,
        sqlite_where=text("published_at IS NULL"),
        postgresql_where=text("published_at IS NULL"),
    )
    Index("ix_outbox_published_at", table.c.published_at)
    return table


@dataclass(frozen=True)
class RuntimeTables:
    processed_events: Table
    outbox: Table

    @classmethod
    def define(cls, metadata: MetaData) -> RuntimeTables:
        return cls(processed_events=processed_events_table(metadata), outbox=outbox_table(metadata))
