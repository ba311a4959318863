"""Driving the scoring service in tests: handle an event in a real transaction, read back
what was published through the outbox, and a clock tests can move."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jsonschema
from sqlalchemy import select
from sqlmodel import col

from services.scoring.handlers import handlers
from services.scoring.models import TABLES
from shared import schema_files
from shared.cloudevents import Event
from shared.contracts import EventPayload, LeadScoredV1, parse_payload
from shared.db import Database
from shared.kafka.consumer import HandlerContext
from shared.outbox import Outbox
from shared.testing.kafka_tools import consumed, in_process_consumer

OUTBOX = Outbox(TABLES, source="/leadflow/scoring")


def handle(database: Database, payload: EventPayload, *, time: datetime) -> Event[EventPayload]:
    """Run the service's handler for ``payload`` as the consumer would, in one transaction."""
    event = Event(data=payload, source="/test", time=time)
    handler = handlers.get(type(payload))
    assert handler is not None
    with database.transaction() as session:
        handler(HandlerContext(session, event, OUTBOX, "test", 0, 0), payload)
    return event


def consume(database: Database, events: Sequence[tuple[EventPayload, datetime]]) -> None:
    """Hand ``events`` (payload, event time) to the service's consumer as one batch of one
    partition, in process: the runtime's transaction, batch handlers and all."""
    consumer = in_process_consumer(
        "scoring", handlers=handlers, database=database, tables=TABLES, outbox=OUTBOX
    )
    records = consumed([Event(data=payload, source="/test", time=time) for payload, time in events])
    outcome = consumer._apply_batch(records)
    assert outcome.failure is None, outcome.failure
    assert outcome.done == len(records)


def published(database: Database) -> list[LeadScoredV1]:
    """Every leads.scored event in the outbox, oldest first, each checked against its
    JSON Schema."""
    outbox = TABLES.outbox
    with database.read() as session:
        rows = session.execute(
            select(outbox.c.topic, outbox.c.payload).order_by(col(outbox.c.id))
        ).all()
    schema = schema_files.load("leadflow.lead.scored.v1")
    events = []
    for topic, payload in rows:
        assert topic == "leads.scored"
        jsonschema.validate(json.loads(payload), schema)
        event = parse_payload("leadflow.lead.scored.v1", payload)
        assert isinstance(event, LeadScoredV1)
        events.append(event)
    return events


def rows(database: Database, model: Any, **where: Any) -> list[Any]:
    with database.read() as session:
        statement = select(model)
        for name, value in where.items():
            statement = statement.where(getattr(model, name) == value)
        return list(session.execute(statement).scalars())


@dataclass
class Clock:
    """A clock tests move by hand."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def new_id() -> uuid.UUID:
    return uuid.uuid4()
