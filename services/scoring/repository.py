"""The scoring service's queries. Keyword-only arguments; nothing here commits."""

from __future__ import annotations

import functools
import uuid
import zlib
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, bindparam, delete, func, select, update
from sqlmodel import Session, col

from services.scoring.domain.facts import TouchpointFacts
from services.scoring.models import (
    FeedbackRecord,
    LeadRecord,
    RescoreJob,
    RulebookRecord,
    ScoreHistory,
    ScoreRecord,
    TouchpointRecord,
    metadata,
)
from shared.contracts import LeadSnapshot, Touchpoint
from shared.db.bulk import insert_rows, upsert_rows
from shared.db.clauses import among_parameter, dialect_of
from shared.db.locks import hold_transaction_lock

# The tables, for the batch statements of the hot paths (Core: no ORM objects per row).
LEADS = metadata.tables["leads"]
TOUCHPOINTS = metadata.tables["touchpoints"]
SCORES = metadata.tables["scores"]
HISTORY = metadata.tables["score_history"]
FEEDBACK = metadata.tables["feedback"]
RULEBOOKS = metadata.tables["rulebooks"]

# The statements each consumer batch runs, built once per dialect
# (shared.db.clauses.among_parameter says why).
_ACTIVE_RULEBOOK = select(RulebookRecord).where(col(RulebookRecord.active).is_(True))


@functools.cache
def _touchpoints_of(dialect: str) -> Select[Any]:
    t = TOUCHPOINTS.c
    return select(
        t.lead_id,
        t.touchpoint_id,
        t.type,
        t.occurred_at,
        t.door,
        t.source,
        t.campaign,
        t.reference,
        t.utm_source,
        t.utm_medium,
        t.utm_campaign,
        t.utm_term,
        t.utm_content,
    ).where(among_parameter(dialect, t.lead_id, "lead_ids"))


@functools.cache
def _known_touchpoints(dialect: str) -> Select[Any]:
    t = TOUCHPOINTS.c
    return select(t.touchpoint_id).where(among_parameter(dialect, t.touchpoint_id, "ids"))


@functools.cache
def _lead_rows(dialect: str, *, for_update: bool) -> Select[Any]:
    c = LEADS.c
    statement = select(c.lead_id, c.snapshot, c.touchpoint_count, c.closed, c.status).where(
        among_parameter(dialect, c.lead_id, "lead_ids")
    )
    if for_update:
        statement = statement.order_by(c.lead_id).with_for_update()
    return statement


@functools.cache
def _score_grades_for_update(dialect: str) -> Select[Any]:
    c = SCORES.c
    return (
        select(c.lead_id, c.grade, c.categories)
        .where(among_parameter(dialect, c.lead_id, "lead_ids"))
        .order_by(c.lead_id)
        .with_for_update()
    )


@functools.cache
def _latest_statuses(dialect: str) -> Select[Any]:
    c = FEEDBACK.c
    return (
        select(c.lead_id, c.status)
        .where(among_parameter(dialect, c.lead_id, "lead_ids"))
        .order_by(c.occurred_at, c.id)
    )


# ---------------------------------------------------------------------------- rulebooks


# The key of the rulebook lock (PostgreSQL, one bigint key: apart from the two-key lead locks).
RULEBOOK_LOCK = zlib.crc32(b"leadflow-scoring-rulebook")


def share_rulebook_lock(*, session: Session) -> None:
    """Writers of scores hold this (shared) until their transaction ends: the active version
    they read stays the active one until they commit (PostgreSQL; SQLite has one writer)."""
    hold_transaction_lock(session, RULEBOOK_LOCK, shared=True)


def take_rulebook_lock(*, session: Session) -> None:
    """An activation holds this (exclusive) until it commits: it waits for the writers of
    scores in progress, and those after it read the new version."""
    hold_transaction_lock(session, RULEBOOK_LOCK)


def active_rulebook(*, session: Session) -> RulebookRecord | None:
    return session.execute(_ACTIVE_RULEBOOK).scalar_one_or_none()


def rulebook(*, session: Session, version: int) -> RulebookRecord | None:
    return session.get(RulebookRecord, version)


def rulebooks(*, session: Session) -> list[RulebookRecord]:
    return list(
        session.execute(select(RulebookRecord).order_by(col(RulebookRecord.version))).scalars()
    )


def latest_rulebook_version(*, session: Session) -> int:
    return int(session.execute(select(func.max(RulebookRecord.version))).scalar() or 0)


def add_rulebook_unless_taken(*, session: Session, record: RulebookRecord) -> None:
    """Insert ``record`` unless another transaction took its version or, active, the active
    place (waiting for that transaction when it has not committed yet)."""
    upsert_rows(session, RULEBOOKS, [record.model_dump()])


def deactivate_rulebooks(*, session: Session) -> None:
    session.execute(
        update(RulebookRecord).where(col(RulebookRecord.active).is_(True)).values(active=False)
    )
    # The partial unique index sees the row inactive before another becomes active.
    session.flush()


# ---------------------------------------------------------------------------- leads


def lead(*, session: Session, lead_id: uuid.UUID, for_update: bool = False) -> LeadRecord | None:
    statement = select(LeadRecord).where(col(LeadRecord.lead_id) == lead_id)
    if for_update:
        statement = statement.with_for_update()
    return session.execute(statement).scalar_one_or_none()


def leads(
    *, session: Session, lead_ids: Collection[uuid.UUID], for_update: bool = False
) -> dict[uuid.UUID, LeadRecord]:
    """``for_update``: locked until the transaction ends, in lead id order (PostgreSQL), so a
    lead erased meanwhile is either gone already or erased after this transaction."""
    if not lead_ids:
        return {}
    statement = select(LeadRecord).where(col(LeadRecord.lead_id).in_(lead_ids))
    if for_update:
        statement = statement.order_by(col(LeadRecord.lead_id)).with_for_update()
    rows = session.execute(statement)
    return {row.lead_id: row for row in rows.scalars()}


def open_lead_ids_after(
    *, session: Session, after: uuid.UUID | None, limit: int
) -> list[uuid.UUID]:
    """Open leads in lead id order, from after ``after``: the pages of a re-scoring job."""
    statement = select(col(LeadRecord.lead_id)).where(col(LeadRecord.closed).is_(False))
    if after is not None:
        statement = statement.where(col(LeadRecord.lead_id) > after)
    statement = statement.order_by(col(LeadRecord.lead_id)).limit(limit)
    return list(session.execute(statement).scalars())


def lead_ids_after(*, session: Session, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
    """Every lead, open or closed, in lead id order from after ``after``: back-test pages."""
    statement = select(col(LeadRecord.lead_id))
    if after is not None:
        statement = statement.where(col(LeadRecord.lead_id) > after)
    statement = statement.order_by(col(LeadRecord.lead_id)).limit(limit)
    return list(session.execute(statement).scalars())


def company_leads(
    *, session: Session, domain: str | None = None, account_id: uuid.UUID | None = None
) -> list[LeadRecord]:
    """Every lead of a company, by its registrable domain or its CRM account id."""
    statement = select(LeadRecord)
    if account_id is not None:
        statement = statement.where(col(LeadRecord.account_id) == account_id)
    else:
        statement = statement.where(col(LeadRecord.company_domain) == domain)
    return list(session.execute(statement.order_by(col(LeadRecord.lead_id))).scalars())


def erase_lead(*, session: Session, lead_id: uuid.UUID) -> None:
    """Forget what the projection holds of an erased lead: its snapshot, its touchpoints and
    its current score (reasons quote the lead's values). The published grades
    (``score_history``) and the feedback stay: numbers and statuses, nothing personal."""
    for model in (LeadRecord, TouchpointRecord, ScoreRecord):
        session.execute(delete(model).where(col(model.lead_id) == lead_id))


def add_touchpoint(*, session: Session, lead_id: uuid.UUID, touchpoint: Touchpoint) -> bool:
    """Record a touchpoint; False when it is already known (a replay)."""
    if session.get(TouchpointRecord, touchpoint.touchpoint_id) is not None:
        return False
    session.add(
        TouchpointRecord(
            touchpoint_id=touchpoint.touchpoint_id,
            lead_id=lead_id,
            type=touchpoint.type,
            door=touchpoint.door,
            source=touchpoint.source,
            campaign=touchpoint.campaign,
            reference=touchpoint.reference,
            utm_source=touchpoint.utm.source,
            utm_medium=touchpoint.utm.medium,
            utm_campaign=touchpoint.utm.campaign,
            utm_term=touchpoint.utm.term,
            utm_content=touchpoint.utm.content,
            occurred_at=touchpoint.occurred_at,
        )
    )
    return True


def touchpoints_of(
    *, session: Session, lead_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[TouchpointFacts]]:
    found: dict[uuid.UUID, list[TouchpointFacts]] = {lead_id: [] for lead_id in lead_ids}
    if not lead_ids:
        return found
    rows = session.execute(_touchpoints_of(dialect_of(session)), {"lead_ids": list(lead_ids)})
    for lead_id, *fields in rows:
        found[lead_id].append(TouchpointFacts(*fields))
    return found


def touchpoint_row(*, lead_id: uuid.UUID, touchpoint: Touchpoint) -> dict[str, Any]:
    """The ``touchpoints`` row of a touchpoint, for :func:`insert_touchpoints`."""
    return {
        "touchpoint_id": touchpoint.touchpoint_id,
        "lead_id": lead_id,
        "type": touchpoint.type,
        "door": touchpoint.door,
        "source": touchpoint.source,
        "campaign": touchpoint.campaign,
        "reference": touchpoint.reference,
        "utm_source": touchpoint.utm.source,
        "utm_medium": touchpoint.utm.medium,
        "utm_campaign": touchpoint.utm.campaign,
        "utm_term": touchpoint.utm.term,
        "utm_content": touchpoint.utm.content,
        "occurred_at": touchpoint.occurred_at,
    }


def known_touchpoints(*, session: Session, touchpoint_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``touchpoint_ids`` already recorded."""
    if not touchpoint_ids:
        return set()
    found = session.execute(_known_touchpoints(dialect_of(session)), {"ids": list(touchpoint_ids)})
    return set(found.scalars())


def insert_touchpoints(*, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    insert_rows(session, TOUCHPOINTS, rows)


def snapshot_of(record: LeadRecord) -> LeadSnapshot:
    return LeadSnapshot.model_validate(record.snapshot)


# ---------------------------------------------------------------------------- batches
#
# The hot paths (the consumer, decay, re-scoring after an activation) read and write whole
# batches of leads with a few statements each, as rows rather than ORM objects.


def lead_rows(
    *, session: Session, lead_ids: Collection[uuid.UUID], for_update: bool = False
) -> dict[uuid.UUID, Row[Any]]:
    """``lead_id``, ``snapshot`` (JSON), ``touchpoint_count``, ``closed`` and ``status`` of
    the known ones of ``lead_ids``; ``for_update``: locked as :func:`leads` locks them."""
    if not lead_ids:
        return {}
    statement = _lead_rows(dialect_of(session), for_update=for_update)
    return {row.lead_id: row for row in session.execute(statement, {"lead_ids": list(lead_ids)})}


def score_grades_for_update(
    *, session: Session, lead_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, tuple[str, ...]]]:
    """Each current score's grade and its categories' grades, locked as
    :func:`scores_for_update` locks them."""
    if not lead_ids:
        return {}
    rows = session.execute(
        _score_grades_for_update(dialect_of(session)), {"lead_ids": list(lead_ids)}
    )
    return {
        lead_id: (grade, tuple(str(category["grade"]) for category in categories))
        for lead_id, grade, categories in rows
    }


def latest_statuses(*, session: Session, lead_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The latest feedback status of each of ``lead_ids`` that has any (:func:`latest_status`)."""
    if not lead_ids:
        return {}
    rows = session.execute(_latest_statuses(dialect_of(session)), {"lead_ids": list(lead_ids)})
    return {row.lead_id: row.status for row in rows}  # the last one wins


def insert_leads(*, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """New leads (full ``leads`` rows)."""
    insert_rows(session, LEADS, rows)


def update_snapshots(*, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """A known lead's snapshot, its touchpoint count, company and ``updated_at`` (rows of
    those columns and ``lead_id``)."""
    if not rows:
        return
    c = LEADS.c
    names = ("snapshot", "touchpoint_count", "company_domain", "account_id", "updated_at")
    statement = (
        update(LEADS)
        .where(c.lead_id == bindparam("key"))
        .values({name: bindparam(f"new_{name}") for name in names})
    )
    session.execute(
        statement,
        [{"key": row["lead_id"], **{f"new_{name}": row[name] for name in names}} for row in rows],
    )


_SCORE_COLUMNS = [column.name for column in SCORES.columns if column.name != "lead_id"]


def save_scores(*, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert or replace current scores (full ``scores`` rows, one per lead)."""
    upsert_rows(session, SCORES, rows, key=["lead_id"], update=_SCORE_COLUMNS)


def insert_history(*, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    insert_rows(session, HISTORY, rows)


# ---------------------------------------------------------------------------- scores


def scores_for_update(
    *, session: Session, lead_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, ScoreRecord]:
    """Current scores, locked until the transaction ends (PostgreSQL; SQLite has one writer)."""
    if not lead_ids:
        return {}
    rows = session.execute(
        select(ScoreRecord)
        .where(col(ScoreRecord.lead_id).in_(lead_ids))
        .order_by(col(ScoreRecord.lead_id))
        .with_for_update()
    ).scalars()
    return {row.lead_id: row for row in rows}


def score(*, session: Session, lead_id: uuid.UUID) -> ScoreRecord | None:
    return session.get(ScoreRecord, lead_id)


def due_lead_ids(*, session: Session, now: datetime, limit: int) -> list[uuid.UUID]:
    """Leads whose grade decay may have moved by ``now``, oldest due first. On PostgreSQL,
    rows another replica is re-scoring are skipped rather than waited for."""
    statement = (
        select(col(ScoreRecord.lead_id))
        .where(col(ScoreRecord.next_check_at).is_not(None), col(ScoreRecord.next_check_at) <= now)
        .order_by(col(ScoreRecord.next_check_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.execute(statement).scalars())


def clear_next_check(*, session: Session, lead_id: uuid.UUID) -> None:
    session.execute(
        update(ScoreRecord).where(col(ScoreRecord.lead_id) == lead_id).values(next_check_at=None)
    )


def set_next_check(*, session: Session, lead_id: uuid.UUID, at: datetime) -> None:
    session.execute(
        update(ScoreRecord).where(col(ScoreRecord.lead_id) == lead_id).values(next_check_at=at)
    )


def history(*, session: Session, lead_id: uuid.UUID, limit: int) -> list[ScoreHistory]:
    return list(
        session.execute(
            select(ScoreHistory)
            .where(col(ScoreHistory.lead_id) == lead_id)
            .order_by(col(ScoreHistory.id).desc())
            .limit(limit)
        ).scalars()
    )


# ---------------------------------------------------------------------------- feedback


def add_feedback(
    *,
    session: Session,
    lead_id: uuid.UUID,
    status: str,
    rejection_reason: str | None,
    occurred_at: datetime,
) -> None:
    session.add(
        FeedbackRecord(
            lead_id=lead_id,
            status=status,
            rejection_reason=rejection_reason,
            occurred_at=occurred_at,
        )
    )


def feedback_of(
    *, session: Session, lead_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[FeedbackRecord]]:
    found: dict[uuid.UUID, list[FeedbackRecord]] = {lead_id: [] for lead_id in lead_ids}
    if not lead_ids:
        return found
    rows = session.execute(
        select(FeedbackRecord)
        .where(col(FeedbackRecord.lead_id).in_(lead_ids))
        .order_by(col(FeedbackRecord.occurred_at), col(FeedbackRecord.id))
    ).scalars()
    for row in rows:
        found[row.lead_id].append(row)
    return found


def latest_status(*, session: Session, lead_id: uuid.UUID) -> str | None:
    return session.execute(
        select(col(FeedbackRecord.status))
        .where(col(FeedbackRecord.lead_id) == lead_id)
        .order_by(col(FeedbackRecord.occurred_at).desc(), col(FeedbackRecord.id).desc())
        .limit(1)
    ).scalar_one_or_none()


# ---------------------------------------------------------------------------- re-scoring jobs


def add_rescore_job(*, session: Session, rulebook_version: int, now: datetime) -> RescoreJob:
    """A new job for ``rulebook_version``; any job still in progress is superseded."""
    session.execute(
        update(RescoreJob)
        .where(col(RescoreJob.status).in_(("pending", "running")))
        .values(status="superseded", finished_at=now)
    )
    job = RescoreJob(rulebook_version=rulebook_version, status="pending", created_at=now)
    session.add(job)
    session.flush()
    return job


def current_rescore_job(*, session: Session) -> RescoreJob | None:
    """The job in progress, locked: one replica works on it at a time."""
    return session.execute(
        select(RescoreJob)
        .where(col(RescoreJob.status).in_(("pending", "running")))
        .order_by(col(RescoreJob.id).desc())
        .limit(1)
        .with_for_update(skip_locked=True)
    ).scalar_one_or_none()


def rescore_jobs(*, session: Session, rulebook_version: int) -> Sequence[RescoreJob]:
    return list(
        session.execute(
            select(RescoreJob)
            .where(col(RescoreJob.rulebook_version) == rulebook_version)
            .order_by(col(RescoreJob.id).desc())
        ).scalars()
    )
