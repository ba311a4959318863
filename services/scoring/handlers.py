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

from collections.abc import Sequence

from services.scoring import repository, touchpoints
from services.scoring.models import ERASURES
from services.scoring.touchpoints import CLOSED_STATUSES, Ingested
from shared.contracts import LeadErasedV1, LeadFeedbackV1, LeadIngestedV1
from shared.kafka.consumer import HandlerContext, Handlers

handlers = Handlers()


@handlers.on_batch(LeadIngestedV1)
def score_touchpoints(batch: Sequence[tuple[HandlerContext, LeadIngestedV1]]) -> None:
    """Consecutive ``leads.ingested`` records of a consumer batch, applied together
    (:mod:`services.scoring.touchpoints`), each scored as of its event's time."""
    context = batch[0][0]
    touchpoints.keep_and_score(
        session=context.session,
        outbox=context.outbox,
        items=[Ingested(payload=payload, time=context.event.time) for context, payload in batch],
    )


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
