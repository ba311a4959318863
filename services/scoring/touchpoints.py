"""``leads.ingested``, a batch at a time: keep each lead's snapshot and touchpoints, and score
every new touchpoint as of its event's time.

The events of a batch are applied in their order, with what they would have found one by
one: two touchpoints of one lead in a batch give two scores (the second with both
touchpoints, its previous grade the first's), a touchpoint seen before (a replay under
another event id) changes nothing, and an older snapshot (lower ``touchpoint_count``) never
overwrites a newer one. The database sees a few statements per batch: the leads, their
touchpoints and scores read at once, then the leads, touchpoints, scores and history
written at once, the events added to the outbox in order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from services.scoring import repository, rulebook_store
from services.scoring.domain.engine import score_lead
from services.scoring.domain.facts import TouchpointFacts
from services.scoring.models import ERASURES
from services.scoring.rescoring import ScoreBatch
from shared.contracts import LeadIngestedV1, LeadSnapshot
from shared.outbox import Outbox

CLOSED_STATUSES = frozenset({"converted", "won", "lost"})


@dataclass(frozen=True, slots=True)
class Ingested:
    """One ``leads.ingested`` event: its payload and its time (the touchpoint is scored as
    of it, so a replay gives the same grades)."""

    payload: LeadIngestedV1
    time: datetime


@dataclass(slots=True)
class _Lead:
    """A lead's projection while its batch is applied."""

    lead_id: uuid.UUID
    stored_snapshot: dict[str, Any] | None  # as read, JSON
    snapshot: LeadSnapshot | None  # parsed, or the newer one of an event
    touchpoint_count: int
    closed: bool
    status: str | None
    new: bool
    changed: bool = False
    created_at: datetime | None = None  # of a new lead: its first event's time
    updated_at: datetime | None = None

    def keep(self, payload: LeadIngestedV1, now: datetime) -> None:
        if self.new and self.created_at is None:
            self.created_at = now
        # Events of one lead arrive in order; a replayed older one never wins.
        if payload.touchpoint_count >= self.touchpoint_count:
            self.snapshot = payload.lead
            self.touchpoint_count = payload.touchpoint_count
            self.changed = True
            self.updated_at = now

    def current(self) -> LeadSnapshot:
        if self.snapshot is None:
            self.snapshot = LeadSnapshot.model_validate(self.stored_snapshot)
        return self.snapshot


def keep_and_score(*, session: Session, outbox: Outbox, items: Sequence[Ingested]) -> None:
    """Apply ``items`` (in order) to the projection, score each new touchpoint, and add the
    ``leads.scored`` events to the outbox."""
    if not items:
        return
    session.flush()  # what earlier handlers of the transaction left pending (ORM)
    # The rulebook lock first, then the leads' turns (erasure), then their rows.
    rulebook = rulebook_store.for_scoring(session=session, now=items[0].time)
    lead_ids = list(dict.fromkeys(item.payload.lead_id for item in items))
    erased = ERASURES.hold_many(session, lead_ids)
    if erased:
        # Late or replayed: the person is not written back.
        items = [item for item in items if item.payload.lead_id not in erased]
        lead_ids = [lead_id for lead_id in lead_ids if lead_id not in erased]
        if not items:
            return
    leads = _leads(session, lead_ids)
    known = repository.known_touchpoints(
        session=session, touchpoint_ids={item.payload.touchpoint.touchpoint_id for item in items}
    )
    touched = {
        item.payload.lead_id for item in items if item.payload.touchpoint.touchpoint_id not in known
    }
    current = repository.score_grades_for_update(session=session, lead_ids=touched)
    history = repository.touchpoints_of(session=session, lead_ids=touched)

    new_touchpoints: list[dict[str, Any]] = []
    batch = ScoreBatch()
    for item in items:
        payload = item.payload
        lead = leads[payload.lead_id]
        lead.keep(payload, item.time)
        touchpoint = payload.touchpoint
        if touchpoint.touchpoint_id in known:
            continue  # seen before: nothing to score
        known.add(touchpoint.touchpoint_id)
        new_touchpoints.append(
            repository.touchpoint_row(lead_id=lead.lead_id, touchpoint=touchpoint)
        )
        touchpoints = history[lead.lead_id]
        touchpoints.append(TouchpointFacts.from_contract(touchpoint))
        score = score_lead(rulebook, lead.current(), touchpoints, now=item.time)
        previous = current.get(lead.lead_id)
        batch.add(
            lead_id=lead.lead_id,
            snapshot=lead.current(),
            score=score,
            previous_grade=previous[0] if previous is not None else None,
            trigger="touchpoint",
            touchpoint_id=touchpoint.touchpoint_id,
            closed=lead.closed,
            publish=True,
        )
        current[lead.lead_id] = (score.grade, score.signature)
    _save_leads(session, leads.values())
    repository.insert_touchpoints(session=session, rows=new_touchpoints)
    batch.write(session=session, outbox=outbox)


def _leads(session: Session, lead_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, _Lead]:
    """The batch's leads, locked; a lead not seen before is new, closed if feedback that
    came before it says so."""
    stored = repository.lead_rows(session=session, lead_ids=lead_ids, for_update=True)
    missing = [lead_id for lead_id in lead_ids if lead_id not in stored]
    statuses = repository.latest_statuses(session=session, lead_ids=missing)
    leads: dict[uuid.UUID, _Lead] = {}
    for lead_id in lead_ids:
        row = stored.get(lead_id)
        if row is not None:
            leads[lead_id] = _Lead(
                lead_id=lead_id,
                stored_snapshot=row.snapshot,
                snapshot=None,
                touchpoint_count=row.touchpoint_count,
                closed=row.closed,
                status=row.status,
                new=False,
            )
        else:
            status = statuses.get(lead_id)
            leads[lead_id] = _Lead(
                lead_id=lead_id,
                stored_snapshot=None,
                snapshot=None,
                touchpoint_count=0,
                closed=status in CLOSED_STATUSES,
                status=status,
                new=True,
            )
    return leads


def _save_leads(session: Session, leads: Iterable[_Lead]) -> None:
    created: list[dict[str, Any]] = []
    updated: list[dict[str, Any]] = []
    for lead in leads:
        if not lead.changed:
            continue
        snapshot = lead.current()
        domain, account_id = company_of(snapshot)
        row = {
            "lead_id": lead.lead_id,
            "snapshot": snapshot.model_dump(mode="json"),
            "touchpoint_count": lead.touchpoint_count,
            "company_domain": domain,
            "account_id": account_id,
            "updated_at": lead.updated_at,
        }
        if lead.new:
            row.update(closed=lead.closed, status=lead.status, created_at=lead.created_at)
            created.append(row)
        else:
            updated.append(row)
    repository.insert_leads(session=session, rows=created)
    repository.update_snapshots(session=session, rows=updated)


def company_of(snapshot: LeadSnapshot) -> tuple[str | None, uuid.UUID | None]:
    domain = snapshot.company.domain
    # A free-mail domain says nothing about a company.
    if domain is not None and not snapshot.free_mail:
        domain = domain.strip().lower() or None
    else:
        domain = None
    return domain, snapshot.company.account_id
