"""Score leads and keep what came out: the one path every trigger takes.

A touchpoint re-scores one lead and always publishes; decay and a rulebook activation
re-score leads in batches and publish only those whose grades changed. Either way the state
(current score, history) and the ``leads.scored`` events are written in the caller's
transaction, the events through the outbox.

Leads are read and their scores written a batch at a time (:class:`ScoreBatch`): a few
statements per batch, rows rather than ORM objects, whatever the number of leads.
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
    leads = repository.lead_rows(session=session, lead_ids=lead_ids, for_update=True)
    counts.unknown = [lead_id for lead_id in lead_ids if lead_id not in leads]
    if not leads:
        return counts
    current = repository.score_grades_for_update(session=session, lead_ids=leads.keys())
    touchpoints = repository.touchpoints_of(session=session, lead_ids=leads.keys())
    batch = ScoreBatch()
    for lead_id, lead in leads.items():
        snapshot = LeadSnapshot.model_validate(lead.snapshot)
        score = score_lead(rulebook, snapshot, touchpoints[lead_id], now=now)
        previous = current.get(lead_id)
        changed = previous is None or previous[1] != score.signature
        published = batch.add(
            lead_id=lead_id,
            snapshot=snapshot,
            score=score,
            previous_grade=previous[0] if previous is not None else None,
            trigger=trigger,
            touchpoint_id=touchpoint_id,
            closed=lead.closed,
            publish=publish == "always" or changed,
        )
        counts.rescored += 1
        counts.published += published
    batch.write(session=session, outbox=outbox)
    return counts


class ScoreBatch:
    """Scores made in one transaction, written together by :meth:`write`: each lead's
    current score (its last), a history row and an event for each published one, in the
    order they were made."""

    def __init__(self) -> None:
        self.scores: dict[uuid.UUID, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []
        self.events: list[LeadScoredV1] = []

    def add(
        self,
        *,
        lead_id: uuid.UUID,
        snapshot: LeadSnapshot,
        score: Score,
        previous_grade: str | None,
        trigger: ScoreTrigger,
        touchpoint_id: uuid.UUID | None,
        closed: bool,
        publish: bool,
    ) -> bool:
        """Keep ``score`` as the lead's current one, and publish it if ``publish``."""
        row = score_row(
            lead_id=lead_id,
            score=score,
            trigger=trigger,
            touchpoint_id=touchpoint_id,
            # A closed lead is no longer re-scored by decay.
            next_check_at=None if closed else score.next_check_at,
        )
        self.scores[lead_id] = row
        if publish:
            self.history.append(_history(row, previous_grade))
            self.events.append(
                _scored(lead_id, snapshot, score, cast(Grade | None, previous_grade), row)
            )
        return publish

    def write(self, *, session: Session, outbox: Outbox) -> None:
        repository.save_scores(session=session, rows=list(self.scores.values()))
        repository.insert_history(session=session, rows=self.history)
        for payload in self.events:
            outbox.add(session, payload, time=payload.scored_at)


def score_row(
    *,
    lead_id: uuid.UUID,
    score: Score,
    trigger: ScoreTrigger,
    touchpoint_id: uuid.UUID | None,
    next_check_at: datetime | None,
) -> dict[str, Any]:
    """The ``scores`` row of a score."""
    return {
        "lead_id": lead_id,
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
        "next_check_at": next_check_at,
    }


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


def _history(row: dict[str, Any], previous_grade: str | None) -> dict[str, Any]:
    return {
        "lead_id": row["lead_id"],
        "rulebook_version": row["rulebook_version"],
        "grade": row["grade"],
        "previous_grade": previous_grade,
        "fit_score": row["fit_score"],
        "engagement_score": row["engagement_score"],
        "categories": row["categories"],
        "trigger": row["trigger"],
        "touchpoint_id": row["touchpoint_id"],
        "scored_at": row["scored_at"],
    }


def _scored(
    lead_id: uuid.UUID,
    snapshot: LeadSnapshot,
    score: Score,
    previous_grade: Grade | None,
    row: dict[str, Any],
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
        trigger=cast(ScoreTrigger, row["trigger"]),
        touchpoint_id=row["touchpoint_id"],
        lead=snapshot,
        scored_at=score.scored_at,
    )
