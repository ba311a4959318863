"""Score leads and keep what came out: the one path every trigger takes.

A touchpoint re-scores one lead and always publishes; decay and a rulebook activation
re-score leads in batches and publish only those whose grades changed. Either way the state
(current score, history) and the ``leads.scored`` events are written in the caller's
transaction, the events through the outbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from sqlmodel import Session

from services.scoring import repository
from services.scoring.domain import engine
from services.scoring.domain.engine import Rulebook, Score, score_lead
from services.scoring.models import ScoreHistory, ScoreRecord
from shared.contracts import (
    CategoryScore,
    Grade,
    LeadScoredV1,
    LeadSnapshot,
    ScoreReason,
    ScoreTrigger,
)
from shared.outbox import Outbox

Publish = Literal["always", "changed"]


@dataclass
class RescoreCounts:
    rescored: int = 0
    published: int = 0
    unknown: list[uuid.UUID] = field(default_factory=list)  # ids with no lead


def rescore(
    *,
    session: Session,
    outbox: Outbox,
    rulebook: Rulebook,
    lead_ids: Collection[uuid.UUID],
    now: datetime,
    trigger: ScoreTrigger,
    publish: Publish,
    touchpoint_id: uuid.UUID | None = None,
) -> RescoreCounts:
    """Re-score ``lead_ids`` (known leads; others are skipped) with ``rulebook`` at ``now``."""
    counts = RescoreCounts()
    # Locked: an erasure of one of them (which deletes the lead) cannot interleave.
    leads = repository.leads(session=session, lead_ids=lead_ids, for_update=True)
    counts.unknown = [lead_id for lead_id in lead_ids if lead_id not in leads]
    if not leads:
        return counts
    current = repository.scores_for_update(session=session, lead_ids=leads.keys())
    touchpoints = repository.touchpoints_of(session=session, lead_ids=leads.keys())
    outgoing: list[LeadScoredV1] = []
    # Changes stay pending while the page is scored, then go to the database in one flush
    # (batched statements), before the events go to the outbox.
    with session.no_autoflush:
        for lead_id, lead in leads.items():
            snapshot = repository.snapshot_of(lead)
            score = score_lead(rulebook, snapshot, touchpoints[lead_id], now=now)
            previous = current.get(lead_id)
            # Read before the record is updated in place.
            previous_grade = cast(Grade | None, previous.grade if previous is not None else None)
            changed = previous is None or signature_of(previous) != score.signature
            record = _store(
                session=session,
                lead_id=lead_id,
                record=previous,
                score=score,
                trigger=trigger,
                touchpoint_id=touchpoint_id,
            )
            record.next_check_at = None if lead.closed else score.next_check_at
            counts.rescored += 1
            if publish == "always" or changed:
                session.add(_history(record, score, previous_grade))
                outgoing.append(_scored(lead_id, snapshot, score, previous_grade, record))
                counts.published += 1
    session.flush()
    for payload in outgoing:
        outbox.add(session, payload, time=payload.scored_at)
    return counts


def signature_of(record: ScoreRecord) -> tuple[str, ...]:
    return tuple(str(category["grade"]) for category in record.categories)


def _store(
    *,
    session: Session,
    lead_id: uuid.UUID,
    record: ScoreRecord | None,
    score: Score,
    trigger: ScoreTrigger,
    touchpoint_id: uuid.UUID | None,
) -> ScoreRecord:
    values: dict[str, Any] = {
        "rulebook_version": score.rulebook_version,
        "grade": score.grade,
        "category": score.category,
        "fit_score": score.fit_score,
        "engagement_score": score.engagement_score,
        "categories": [_category_json(category) for category in score.categories],
        "reasons": [_reason_json(reason) for reason in score.reasons],
        "trigger": trigger,
        "touchpoint_id": touchpoint_id,
        "scored_at": score.scored_at,
    }
    if record is None:
        record = ScoreRecord(lead_id=lead_id, **values)
    else:
        for name, value in values.items():
            setattr(record, name, value)
    session.add(record)
    return record


def _category_json(category: engine.CategoryScore) -> dict[str, Any]:
    return {
        "category": category.category,
        "fit_score": category.fit_score,
        "engagement_score": category.engagement_score,
        "fit_band": category.fit_band,
        "engagement_band": category.engagement_band,
        "grade": category.grade,
        "in_market_until": (
            category.in_market_until.isoformat() if category.in_market_until else None
        ),
    }


def _reason_json(reason: engine.Reason) -> dict[str, Any]:
    return {
        "rule": reason.rule,
        "kind": reason.kind,
        "category": reason.category,
        "points": reason.points,
        "why": reason.why,
    }


def _history(record: ScoreRecord, score: Score, previous_grade: Grade | None) -> ScoreHistory:
    return ScoreHistory(
        lead_id=record.lead_id,
        rulebook_version=score.rulebook_version,
        grade=score.grade,
        previous_grade=previous_grade,
        fit_score=score.fit_score,
        engagement_score=score.engagement_score,
        categories=record.categories,
        trigger=record.trigger,
        touchpoint_id=record.touchpoint_id,
        scored_at=score.scored_at,
    )


def _scored(
    lead_id: uuid.UUID,
    snapshot: LeadSnapshot,
    score: Score,
    previous_grade: Grade | None,
    record: ScoreRecord,
) -> LeadScoredV1:
    return LeadScoredV1(
        lead_id=lead_id,
        grade=score.grade,
        previous_grade=previous_grade,
        fit_score=score.fit_score,
        engagement_score=score.engagement_score,
        categories=[
            CategoryScore(
                category=category.category,
                fit_score=category.fit_score,
                engagement_score=category.engagement_score,
                grade=category.grade,
            )
            for category in score.categories
        ],
        rulebook_version=score.rulebook_version,
        reasons=[
            ScoreReason(
                rule=reason.rule,
                kind=reason.kind,
                category=reason.category,
                points=reason.points,
                why=reason.why,
            )
            for reason in score.reasons
        ],
        trigger=cast(ScoreTrigger, record.trigger),
        touchpoint_id=record.touchpoint_id,
        lead=snapshot,
        scored_at=score.scored_at,
    )
