"""What the scoring service does with the events it reads.

``leads.ingested``: keep the lead's snapshot and touchpoints (the service's own projection)
and re-score it, publishing ``leads.scored`` for every new touchpoint. A touchpoint seen
before (a replay under another event id) changes nothing. Scores are computed as of the
event's time, so replaying the topic gives the same grades; the decay scheduler brings them
up to the present.

``leads.feedback``: remember what sales reported (back-tests compare grades with it); a lead
converted, won or lost is closed and no longer re-scored by decay or activation.

``leads.erased``: forget the lead's snapshot, touchpoints and current score (the published
grades and the feedback stay, as numbers and statuses), purge its published events from the
outbox, and remember the lead as erased: a ``leads.ingested`` of it that comes later (topics
are not ordered with each other) or in a replay is ignored, so the person is never projected
or scored again.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session

from services.scoring import repository, rulebook_store
from services.scoring.models import ERASURES, LeadRecord
from services.scoring.rescoring import rescore
from shared.contracts import LeadErasedV1, LeadFeedbackV1, LeadIngestedV1, LeadSnapshot
from shared.kafka.consumer import HandlerContext, Handlers

CLOSED_STATUSES = frozenset({"converted", "won", "lost"})

handlers = Handlers()


@handlers.on(LeadIngestedV1)
def score_touchpoint(context: HandlerContext, payload: LeadIngestedV1) -> None:
    session = context.session
    if ERASURES.hold(session, payload.lead_id):
        return  # late or replayed: the person is not written back
    now = context.event.time
    record = rulebook_store.ensure_active(session=session, now=now)
    _keep_lead(session, payload, now)
    if not repository.add_touchpoint(
        session=session, lead_id=payload.lead_id, touchpoint=payload.touchpoint
    ):
        return
    session.flush()
    rescore(
        session=session,
        outbox=context.outbox,
        rulebook=rulebook_store.compiled(record),
        lead_ids=[payload.lead_id],
        now=now,
        trigger="touchpoint",
        publish="always",
        touchpoint_id=payload.touchpoint.touchpoint_id,
    )


def _keep_lead(session: Session, payload: LeadIngestedV1, now: datetime) -> None:
    lead = repository.lead(session=session, lead_id=payload.lead_id, for_update=True)
    if lead is None:
        status = repository.latest_status(session=session, lead_id=payload.lead_id)
        lead = LeadRecord(
            lead_id=payload.lead_id,
            snapshot={},
            touchpoint_count=0,
            closed=status in CLOSED_STATUSES,
            status=status,
            created_at=now,
            updated_at=now,
        )
    if payload.touchpoint_count >= lead.touchpoint_count:
        # Events of one lead arrive in order; a replayed older one never wins.
        lead.snapshot = payload.lead.model_dump(mode="json")
        lead.touchpoint_count = payload.touchpoint_count
        lead.company_domain, lead.account_id = _company_of(payload.lead)
        lead.updated_at = now
    session.add(lead)


def _company_of(snapshot: LeadSnapshot) -> tuple[str | None, uuid.UUID | None]:
    domain = snapshot.company.domain
    # A free-mail domain says nothing about a company.
    if domain is not None and not snapshot.free_mail:
        domain = domain.strip().lower() or None
    else:
        domain = None
    return domain, snapshot.company.account_id


@handlers.on(LeadFeedbackV1)
def remember_feedback(context: HandlerContext, payload: LeadFeedbackV1) -> None:
    session = context.session
    repository.add_feedback(
        session=session,
        lead_id=payload.lead_id,
        status=payload.status,
        rejection_reason=payload.rejection_reason,
        occurred_at=payload.occurred_at,
    )
    session.flush()
    lead = repository.lead(session=session, lead_id=payload.lead_id, for_update=True)
    if lead is None:
        return  # remembered: the lead is closed if it arrives later
    status = repository.latest_status(session=session, lead_id=payload.lead_id)
    closed = status in CLOSED_STATUSES
    reopened = lead.closed and not closed
    lead.status, lead.closed = status, closed
    session.add(lead)
    if closed:
        repository.clear_next_check(session=session, lead_id=payload.lead_id)
    elif reopened:
        # Back in play: let the scheduler bring its grade up to date at once.
        repository.set_next_check(session=session, lead_id=payload.lead_id, at=context.event.time)


@handlers.on(LeadErasedV1)
def erase_lead(context: HandlerContext, payload: LeadErasedV1) -> None:
    session = context.session
    ERASURES.hold(session, payload.lead_id)
    ERASURES.remember(session, lead_id=payload.lead_id, erased_at=payload.erased_at)
    repository.erase_lead(session=session, lead_id=payload.lead_id)
    ERASURES.purge_outbox(session, lead_ids=[payload.lead_id])
