"""The consumers of leads.scored, leads.feedback and leads.erased.

A score is routed **as of its time** (``scored_at``) when that lies in the past, else as of
the clock: the decision (availability, out of office) and the follow-up clock start when the
lead was graded. Live, that is a few milliseconds ago; for a backfill or a replay of history
it is when it happened, so the decision and its SLA are the same whenever the event is read,
and feedback dated after the assignment is measured against that clock. A deadline that lies
in the past already is handled by the SLA worker on its next poll, as one passed while no
instance was running (:mod:`services.routing.timers`): breached and re-assigned then, unless
feedback stopped the clock first (feedback that arrived before the score is kept and applied
in the transaction that assigns the lead).

An erasure (``leads.erased``) is applied as of the clock: see :func:`assigning.on_erased`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from services.routing import assigning
from services.routing.clock import Clock
from shared.contracts import EventPayload, LeadErasedV1, LeadFeedbackV1, LeadScoredV1
from shared.kafka.consumer import HandlerContext, Handlers


def build_handlers(clock: Clock) -> Handlers:
    handlers = Handlers()

    @handlers.on_batch(LeadScoredV1)
    def route_scored_leads(batch: Sequence[tuple[HandlerContext, LeadScoredV1]]) -> None:
        """A run of records: the leads' erasure turns, rows, waiting feedback and their teams'
        round robins read for them all at once (:class:`assigning.ScoredLeads`), then each
        routed in order."""
        session = batch[0][0].session
        read = assigning.ScoredLeads.read(session, [payload for _, payload in batch], now=clock())
        for context, payload in batch:
            now = min(clock(), payload.scored_at)
            assigning.on_lead_scored(
                session, payload=payload, now=now, emit=_emitter(context, now), read=read
            )

    @handlers.on(LeadFeedbackV1)
    def record_feedback(context: HandlerContext, payload: LeadFeedbackV1) -> None:
        now = clock()
        assigning.on_feedback(
            context.session,
            payload=payload,
            event_id=context.event.id,
            now=now,
            emit=_emitter(context, now),
        )

    @handlers.on(LeadErasedV1)
    def erase_lead(context: HandlerContext, payload: LeadErasedV1) -> None:
        assigning.on_erased(context.session, payload=payload, now=clock())

    return handlers


def _emitter(context: HandlerContext, now: datetime) -> Callable[[EventPayload], None]:
    def emit(event: EventPayload) -> None:
        context.emit(event, time=now)

    return emit
