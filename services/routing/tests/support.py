"""Test support: a clock the test moves, configuration rows, scored leads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from services.routing import assigning
from services.routing.models import (
    AssignmentRow,
    NamedAccountRow,
    NurtureProgramRow,
    RepAbsenceRow,
    RepRow,
    TeamRow,
    TerritoryRow,
)
from shared.contracts import CompanySnapshot, EventPayload, LeadFeedbackV1, LeadScoredV1
from shared.db import Database
from shared.testing import factories

# A Tuesday, 10:00 UTC: inside 09:00-17:00 UTC working hours.
START = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment


def team(team_id: str, **values: Any) -> TeamRow:
    values.setdefault("created_at", START)
    values.setdefault("updated_at", START)
    return TeamRow(team_id=team_id, **values)


def territory(territory_id: str, country: str, **values: Any) -> TerritoryRow:
    values.setdefault("created_at", START)
    values.setdefault("updated_at", START)
    return TerritoryRow(territory_id=territory_id, country=country, **values)


def rep(rep_id: str, team_id: str, **values: Any) -> RepRow:
    values.setdefault("created_at", START)
    values.setdefault("updated_at", START)
    values.setdefault("crm_user_id", f"crm-{rep_id}")
    values.setdefault(
        "working_hours", {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    )
    return RepRow(rep_id=rep_id, team_id=team_id, **values)


def account(domain: str, rep_id: str) -> NamedAccountRow:
    return NamedAccountRow(domain=domain, rep_id=rep_id, created_at=START, updated_at=START)


def program(
    program_id: str, grades: list[str], verticals: list[str] | None = None
) -> NurtureProgramRow:
    return NurtureProgramRow(
        program_id=program_id,
        grades=grades,
        verticals=verticals or [],
        created_at=START,
        updated_at=START,
    )


def absence(rep_id: str, starts_at: datetime, ends_at: datetime | None = None) -> RepAbsenceRow:
    return RepAbsenceRow(rep_id=rep_id, starts_at=starts_at, ends_at=ends_at, created_at=START)


def seed(database: Database, *rows: Any) -> None:
    with database.transaction() as session:
        for row in rows:
            session.add(row)


def standard_team(database: Database, *reps: RepRow) -> None:
    """Team "dach" covers Germany, software; nurture programs for C and D."""
    seed(
        database,
        territory("de", "DE"),
        team("dach", territory_ids=["de"], verticals=[]),
        program("nurture-c", ["C"]),
        program("nurture-d", ["D"]),
        *(reps or (rep("ana", "dach"), rep("ben", "dach"))),
    )


def scored(grade: str = "A", **overrides: Any) -> LeadScoredV1:
    lead_overrides = overrides.pop("lead", {})
    company = CompanySnapshot(
        name="Beispiel GmbH",
        domain=lead_overrides.pop("domain", "beispiel.de"),
        vertical=lead_overrides.pop("vertical", "software"),
    )
    snapshot = factories.lead_snapshot(
        country=lead_overrides.pop("country", "DE"),
        region=lead_overrides.pop("region", "DE-BY"),
        postal_code=lead_overrides.pop("postal_code", "80331"),
        company=company,
        **lead_overrides,
    )
    overrides.setdefault("scored_at", START)
    return factories.lead_scored(grade=grade, lead=snapshot, **overrides)


class Recorder:
    """Collects what a call emits (instead of the outbox), for tests without a broker."""

    def __init__(self) -> None:
        self.events: list[EventPayload] = []

    def __call__(self, event: EventPayload) -> None:
        self.events.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


@contextmanager
def transaction(database: Database) -> Iterator[Session]:
    with database.transaction() as session:
        yield session


def route(
    database: Database, payload: LeadScoredV1, now: datetime, emit: Recorder | None = None
) -> AssignmentRow | None:
    with database.transaction() as session:
        return assigning.on_lead_scored(
            session, payload=payload, now=now, emit=emit if emit is not None else Recorder()
        )


def feedback(
    database: Database,
    payload: LeadFeedbackV1,
    now: datetime,
    emit: Recorder | None = None,
) -> None:
    with database.transaction() as session:
        assigning.on_feedback(
            session,
            payload=payload,
            event_id=str(uuid.uuid4()),
            now=now,
            emit=emit if emit is not None else Recorder(),
        )


def assignments(database: Database, lead_id: uuid.UUID) -> list[AssignmentRow]:
    from services.routing import repository

    with database.read() as session:
        return repository.lead_assignments(session, lead_id=lead_id)


def outbox_events(database: Database) -> list[EventPayload]:
    """Every event a transaction added to the outbox, in order."""
    import json

    from sqlalchemy import select

    from services.routing.models import TABLES
    from shared.contracts import parse_payload

    outbox = TABLES.outbox
    with database.read() as session:
        rows = session.execute(select(outbox.c.headers, outbox.c.payload).order_by(outbox.c.id))
        events = []
        for headers, payload in rows:
            kind = dict(json.loads(headers))["ce_type"]
            events.append(parse_payload(kind, payload))
    return events
