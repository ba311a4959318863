"""Stored history as the back-test reads it: each lead's snapshot, touchpoints and feedback."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import Session

from services.scoring import repository
from services.scoring.domain.backtest import FeedbackFact, LeadHistory


def history_of(*, session: Session, lead_ids: Sequence[uuid.UUID]) -> list[LeadHistory]:
    leads = repository.leads(session=session, lead_ids=lead_ids)
    touchpoints = repository.touchpoints_of(session=session, lead_ids=leads.keys())
    feedback = repository.feedback_of(session=session, lead_ids=leads.keys())
    return [
        LeadHistory(
            lead_id=lead_id,
            snapshot=repository.snapshot_of(lead),
            touchpoints=touchpoints[lead_id],
            feedback=[FeedbackFact(row.status, row.occurred_at) for row in feedback[lead_id]],
        )
        for lead_id, lead in leads.items()
    ]
