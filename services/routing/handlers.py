"""The consumers of leads.scored, leads.feedback and leads.erased."""

from __future__ import annotations

from services.routing import assigning
from services.routing.clock import Clock
from shared.contracts import EventPayload, LeadErasedV1, LeadFeedbackV1, LeadScoredV1
from shared.kafka.consumer import HandlerContext, Handlers


def build_handlers(clock: Clock) -> Handlers:
    handlers = Handlers()

    @handlers.on(LeadScoredV1)
    def route_scored_lead(context: HandlerContext, payload: LeadScoredV1) -> None:
        now = clock()

        def emit(event: EventPayload) -> None:
            context.emit(event, time=now)

        assigning.on_lead_scored(context.session, payload=payload, now=now, emit=emit)

    @handlers.on(LeadFeedbackV1)
    def record_feedback(context: HandlerContext, payload: LeadFeedbackV1) -> None:
        now = clock()

        def emit(event: EventPayload) -> None:
            context.emit(event, time=now)

        assigning.on_feedback(
            context.session, payload=payload, event_id=context.event.id, now=now, emit=emit
        )

    @handlers.on(LeadErasedV1)
    def erase_lead(context: HandlerContext, payload: LeadErasedV1) -> None:
        assigning.on_erased(context.session, payload=payload, now=clock())

    return handlers
