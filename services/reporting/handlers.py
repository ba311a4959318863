"""One consumer of every ``leads.*`` topic: each event becomes one fact row.

Facts are inserted, never updated, and keyed by a natural id (touchpoint, assignment) or by
the event id, so the read model does not depend on the order events of different topics
arrive in: feedback before its lead's ingested event is just a row that waits for the others.

``leads.erased`` changes no fact: no fact holds personal data (no name, email, phone, postal
code or free text of the lead; ``rep_name`` is the rep's), so counts and money stay exactly
as they were, and a late or replayed event of an erased lead writes nothing personal
either. The lead id is remembered as erased.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from services.reporting import repository
from services.reporting.models import (
    ERASURES,
    AssignmentFact,
    FeedbackFact,
    GradeFact,
    ReportingModel,
    SlaFact,
    TouchpointFact,
)
from shared.contracts import (
    EventPayload,
    LeadErasedV1,
    LeadFeedbackV1,
    LeadIngestedV1,
    LeadRoutedV1,
    LeadScoredV1,
    LeadSlaV1,
)
from shared.kafka.consumer import HandlerContext, Handlers

handlers = Handlers()

# A fact row of an event: the columns of its table.
Fact = Callable[[HandlerContext, Any], dict[str, Any]]


def touchpoint_fact(context: HandlerContext, payload: LeadIngestedV1) -> dict[str, Any]:
    lead, touchpoint = payload.lead, payload.touchpoint
    return {
        "touchpoint_id": touchpoint.touchpoint_id,
        "event_id": context.event.id,
        "lead_id": payload.lead_id,
        "change": payload.change,
        "type": touchpoint.type,
        "door": touchpoint.door,
        "source": touchpoint.source,
        "campaign": touchpoint.campaign,
        "occurred_at": touchpoint.occurred_at,
        "lead_created_at": lead.created_at,
        "lead_source": lead.source,
        "lead_campaign": lead.campaign,
        "country": lead.country,
        "region": lead.region,
        "vertical": lead.company.vertical,
    }


def grade_fact(context: HandlerContext, payload: LeadScoredV1) -> dict[str, Any]:
    return {
        "event_id": context.event.id,
        "lead_id": payload.lead_id,
        "grade": payload.grade,
        "touchpoint_id": payload.touchpoint_id,
        "scored_at": payload.scored_at,
    }


def assignment_fact(context: HandlerContext, payload: LeadRoutedV1) -> dict[str, Any]:
    return {
        "assignment_id": payload.assignment_id,
        "event_id": context.event.id,
        "lead_id": payload.lead_id,
        "outcome": payload.outcome,
        "grade": payload.grade,
        "rep_id": payload.rep.rep_id if payload.rep else None,
        "rep_name": payload.rep.name if payload.rep else None,
        "team_id": payload.team_id,
        "rule": payload.rule,
        "sla_due_at": payload.sla_due_at,
        "reassignment_of": payload.reassignment_of,
        "routed_at": payload.routed_at,
    }


def sla_fact(context: HandlerContext, payload: LeadSlaV1) -> dict[str, Any]:
    return {
        "event_id": context.event.id,
        "lead_id": payload.lead_id,
        "assignment_id": payload.assignment_id,
        "status": payload.status,
        "rep_id": payload.rep_id,
        "team_id": payload.team_id,
        "due_at": payload.due_at,
        "occurred_at": payload.occurred_at,
    }


def feedback_fact(context: HandlerContext, payload: LeadFeedbackV1) -> dict[str, Any]:
    return {
        "event_id": context.event.id,
        "lead_id": payload.lead_id,
        "status": payload.status,
        "rejection_reason": payload.rejection_reason,
        "opportunity_id": payload.opportunity_id,
        "amount_cents": (
            repository.to_cents(payload.amount) if payload.amount is not None else None
        ),
        "currency": payload.currency,
        "source": payload.source,
        "occurred_at": payload.occurred_at,
    }


_FACTS: dict[type[EventPayload], tuple[type[ReportingModel], Fact]] = {
    LeadIngestedV1: (TouchpointFact, touchpoint_fact),
    LeadScoredV1: (GradeFact, grade_fact),
    LeadRoutedV1: (AssignmentFact, assignment_fact),
    LeadSlaV1: (SlaFact, sla_fact),
    LeadFeedbackV1: (FeedbackFact, feedback_fact),
}


def record_facts(batch: Sequence[tuple[HandlerContext, EventPayload]]) -> None:
    """The batch handler of every fact type: a run of records (the topics' records come
    interleaved in time) inserted with one statement per fact table. Facts are independent
    rows, so the order between tables does not matter."""
    rows: dict[type[ReportingModel], list[dict[str, Any]]] = {}
    for context, payload in batch:
        model, fact = _FACTS[type(payload)]
        rows.setdefault(model, []).append(fact(context, payload))
    session = batch[0][0].session
    for model, facts in rows.items():
        repository.add_facts(session=session, model=model, rows=facts)


for _payload in _FACTS:
    handlers.on_batch(_payload)(record_facts)


@handlers.on(LeadErasedV1)
def record_erasure(context: HandlerContext, payload: LeadErasedV1) -> None:
    ERASURES.remember(context.session, lead_id=payload.lead_id, erased_at=payload.erased_at)
