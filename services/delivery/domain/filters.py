"""Which events a subscription receives: by event type, and optionally by grade and campaign.

Not every event carries a grade or a campaign, so the service keeps a small projection of
each lead (its campaign, latest grade and CRM record ids) from the events it has seen, and
judges every event on the facts the event and the projection give together.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

from shared.contracts import (
    EventPayload,
    Grade,
    LeadErasedV1,
    LeadFeedbackV1,
    LeadIngestedV1,
    LeadRoutedV1,
    LeadScoredV1,
    LeadSlaV1,
)

# The public topics a subscriber may ask for (the catalog's names).
EventType = Literal[
    "leads.ingested", "leads.scored", "leads.routed", "leads.sla", "leads.feedback", "leads.erased"
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
GRADES: tuple[str, ...] = get_args(Grade)

_EVENT_TYPE_OF: dict[type[EventPayload], str] = {
    LeadIngestedV1: "leads.ingested",
    LeadScoredV1: "leads.scored",
    LeadRoutedV1: "leads.routed",
    LeadSlaV1: "leads.sla",
    LeadFeedbackV1: "leads.feedback",
    LeadErasedV1: "leads.erased",
}


def event_type_of(payload: EventPayload) -> str:
    return _EVENT_TYPE_OF[type(payload)]


@dataclass(frozen=True)
class LeadView:
    """What the service remembers of a lead to judge filters and write back to CRMs."""

    campaign: str | None = None
    grade: str | None = None
    crm_ids: Mapping[str, str] = field(default_factory=dict)


def project(view: LeadView | None, payload: EventPayload) -> LeadView:
    """The lead's view after this event."""
    view = view or LeadView()
    if isinstance(payload, LeadIngestedV1 | LeadScoredV1):
        lead = payload.lead
        crm_ids = {**view.crm_ids, **lead.crm_ids}
        campaign = lead.campaign or view.campaign
        if isinstance(payload, LeadIngestedV1):
            campaign = campaign or payload.touchpoint.campaign
        view = replace(view, campaign=campaign, crm_ids=crm_ids)
    if isinstance(payload, LeadScoredV1 | LeadRoutedV1 | LeadSlaV1):
        view = replace(view, grade=payload.grade)
    return view


@dataclass(frozen=True)
class EventFacts:
    event_type: str
    grade: str | None
    campaigns: frozenset[str]


def facts(payload: EventPayload, view: LeadView) -> EventFacts:
    """The event's own grade and campaigns where it has them, the lead's otherwise."""
    grade = payload.grade if isinstance(payload, LeadScoredV1 | LeadRoutedV1 | LeadSlaV1) else None
    campaigns = {view.campaign}
    if isinstance(payload, LeadIngestedV1):
        campaigns |= {payload.lead.campaign, payload.touchpoint.campaign}
    return EventFacts(
        event_type=event_type_of(payload),
        grade=grade or view.grade,
        campaigns=frozenset(c for c in campaigns if c),
    )


@dataclass(frozen=True)
class SubscriptionFilter:
    """Empty grades or campaigns: any. An event without a known grade (a lead not graded
    yet) does not pass a grade filter; one without a campaign does not pass a campaign
    filter."""

    event_types: frozenset[str]
    grades: frozenset[str] = frozenset()
    campaigns: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        event_types: Iterable[str],
        grades: Iterable[str] = (),
        campaigns: Iterable[str] = (),
    ) -> SubscriptionFilter:
        return cls(frozenset(event_types), frozenset(grades), frozenset(campaigns))

    def __post_init__(self) -> None:
        if not self.event_types:
            raise ValueError("a subscription names at least one event type")
        unknown = self.event_types - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event types: {', '.join(sorted(unknown))}")
        unknown = self.grades - set(GRADES)
        if unknown:
            raise ValueError(f"unknown grades: {', '.join(sorted(unknown))}")

    def matches(self, event: EventFacts) -> bool:
        if event.event_type not in self.event_types:
            return False
        if self.grades and event.grade not in self.grades:
            return False
        return not (self.campaigns and not self.campaigns & event.campaigns)
