"""The consumer: every public event that a subscription asks for becomes a delivery, and an
assignment to a rep with a CRM user id becomes a CRM write-back, in the transaction of the
consumer (the runtime commits the offset after it).

The lead view (campaign, latest grade, CRM record ids) is updated first, so that filters are
judged on what the lead is after this event.

``leads.erased``: what the service holds of the lead is anonymised and its waiting
deliveries and write-backs cancelled (:func:`repository.erase_lead`), and the notice itself
is delivered to every subscription that was sent something of the lead (the recipients of
the person's data must be told) and to those that subscribe to ``leads.erased`` and pass the
filters. The lead is remembered as erased: its later events, whatever their topic, are
neither delivered nor written back.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from services.delivery import repository
from services.delivery.crm import PROVIDERS
from services.delivery.domain import filters
from services.delivery.envelope import envelope
from services.delivery.models import ERASURES
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
from shared.observability.logs import get_logger

log = get_logger(__name__)

handlers = Handlers()


def fan_out(batch: Sequence[tuple[HandlerContext, EventPayload]]) -> None:
    """Consecutive records of one type of a consumer batch, as one by one would apply them:
    the leads' erasure turns taken and their views read with a statement each, the changed
    views written with one; then each record's deliveries and write-back."""
    session = batch[0][0].session
    # Late, or replayed: nothing of an erased lead goes out again.
    erased = ERASURES.hold_many(session, [payload.lead_id for _, payload in batch])
    views = repository.lead_views(session, {payload.lead_id for _, payload in batch} - erased)
    changed: dict[uuid.UUID, filters.LeadView] = {}
    now = datetime.now(UTC)
    for context, payload in batch:
        if payload.lead_id in erased:
            continue
        before = views.get(payload.lead_id)
        view = filters.project(before, payload)
        if view != before:
            views[payload.lead_id] = changed[payload.lead_id] = view
        _queue_deliveries(context, payload.lead_id, filters.facts(payload, view), now=now)
        if isinstance(payload, LeadRoutedV1):
            _write_back(context, payload, view, now)
    repository.save_lead_views(session, changed, now=now)


def _queue_deliveries(
    context: HandlerContext,
    lead_id: uuid.UUID,
    facts: filters.EventFacts,
    *,
    now: datetime,
    also_to: Collection[uuid.UUID] = (),
) -> None:
    """A delivery of the event for every subscription whose filter takes it, and for those in
    ``also_to`` whatever their filter."""
    body: str | None = None
    for receiver in repository.receivers(context.session):
        if receiver.subscription_id not in also_to and not receiver.filter.matches(facts):
            continue
        body = body or envelope(context.event)
        repository.add_delivery(
            context.session,
            subscription_id=receiver.subscription_id,
            lead_id=lead_id,
            event_id=context.event.id,
            event_type=context.event.type,
            body=body,
            now=now,
        )


def _write_back(
    context: HandlerContext, payload: LeadRoutedV1, view: filters.LeadView, now: datetime
) -> None:
    if payload.outcome != "assigned" or payload.rep is None or not payload.rep.crm_user_id:
        return
    for provider, record_id in sorted(view.crm_ids.items()):
        if provider not in PROVIDERS:
            continue
        repository.add_writeback(
            context.session,
            lead_id=payload.lead_id,
            assignment_id=payload.assignment_id,
            event_id=context.event.id,
            provider=provider,
            record_id=record_id,
            owner_id=payload.rep.crm_user_id,
            now=now,
        )
        log.info("crm write-back queued", provider=provider, record_id=record_id)


for _public in (LeadIngestedV1, LeadScoredV1, LeadRoutedV1, LeadSlaV1, LeadFeedbackV1):
    handlers.on_batch(_public)(fan_out)


@handlers.on(LeadErasedV1)
def on_erased(context: HandlerContext, payload: LeadErasedV1) -> None:
    session = context.session
    now = datetime.now(UTC)
    ERASURES.hold(session, payload.lead_id)
    ERASURES.remember(session, lead_id=payload.lead_id, erased_at=payload.erased_at)
    holders = repository.erase_lead(session, payload.lead_id, now=now)
    view = repository.lead_view(session, payload.lead_id) or filters.LeadView()
    # Every subscription that was sent something of the lead is told, whatever its filter.
    facts = filters.facts(payload, view)
    _queue_deliveries(context, payload.lead_id, facts, now=now, also_to=holders)
    ERASURES.purge_outbox(session, lead_ids=[payload.lead_id], now=now)
    log.info("lead erased", subscriptions_told=len(holders))
