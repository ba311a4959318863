"""Subscription filters and the lead projection they are judged on."""

from __future__ import annotations

import uuid

import pytest

from services.delivery.domain.filters import (
    EVENT_TYPES,
    GRADES,
    EventFacts,
    LeadView,
    SubscriptionFilter,
    event_type_of,
    facts,
    project,
)
from shared.contracts import PAYLOAD_TYPES
from shared.testing import factories
from shared.topics import CATALOG, topic_for


def test_the_event_types_are_the_public_topics() -> None:
    assert set(EVENT_TYPES) == {spec.name for spec in CATALOG}
    assert GRADES == ("A", "B", "C", "D")


def test_each_payload_is_named_by_its_topic() -> None:
    payloads = [
        factories.lead_ingested(),
        factories.lead_scored(),
        factories.lead_routed(),
        factories.lead_sla(),
        factories.lead_feedback(),
        factories.lead_erased(),
    ]
    assert {type(p) for p in payloads} == set(PAYLOAD_TYPES)
    for payload in payloads:
        assert event_type_of(payload) == topic_for(type(payload)).name


def test_the_projection_keeps_campaign_latest_grade_and_crm_ids() -> None:
    lead_id = uuid.uuid4()
    view = project(
        None,
        factories.lead_ingested(
            lead_id=lead_id,
            lead=factories.lead_snapshot(campaign="spring", crm_ids={"hubspot": "651"}),
        ),
    )
    assert view == LeadView(campaign="spring", grade=None, crm_ids={"hubspot": "651"})
    view = project(
        view,
        factories.lead_scored(
            lead_id=lead_id,
            grade="B",
            lead=factories.lead_snapshot(campaign=None, crm_ids={"salesforce": "00Q1"}),
        ),
    )
    assert view == LeadView(
        campaign="spring", grade="B", crm_ids={"hubspot": "651", "salesforce": "00Q1"}
    )
    view = project(view, factories.lead_routed(lead_id=lead_id, grade="A"))
    assert view.grade == "A"
    view = project(view, factories.lead_sla(lead_id=lead_id, grade="C"))
    assert view.grade == "C"
    assert project(view, factories.lead_feedback(lead_id=lead_id)) == view


def test_an_ingested_lead_without_a_lead_campaign_takes_the_touchpoints() -> None:
    payload = factories.lead_ingested(
        lead=factories.lead_snapshot(campaign=None),
        touchpoint=factories.touchpoint(campaign="fair-2026"),
    )
    assert project(None, payload).campaign == "fair-2026"


def test_facts_come_from_the_event_first_and_the_lead_otherwise() -> None:
    view = LeadView(campaign="spring", grade="C")
    assert facts(factories.lead_scored(grade="A"), view) == EventFacts(
        "leads.scored", "A", frozenset({"spring"})
    )
    assert facts(factories.lead_feedback(), view) == EventFacts(
        "leads.feedback", "C", frozenset({"spring"})
    )
    ingested = factories.lead_ingested(
        lead=factories.lead_snapshot(campaign="spring"),
        touchpoint=factories.touchpoint(campaign="webinar"),
    )
    assert facts(ingested, LeadView()) == EventFacts(
        "leads.ingested", None, frozenset({"spring", "webinar"})
    )


def event(event_type: str, grade: str | None = None, *campaigns: str) -> EventFacts:
    return EventFacts(event_type, grade, frozenset(campaigns))


@pytest.mark.parametrize(
    ("subscription", "facts_", "expected"),
    [
        (SubscriptionFilter.of(["leads.routed"]), event("leads.routed", "A"), True),
        (SubscriptionFilter.of(["leads.routed"]), event("leads.scored", "A"), False),
        (SubscriptionFilter.of(["leads.routed"], ["A", "B"]), event("leads.routed", "B"), True),
        (SubscriptionFilter.of(["leads.routed"], ["A"]), event("leads.routed", "C"), False),
        # Not graded yet: a grade filter does not let it through.
        (SubscriptionFilter.of(["leads.ingested"], ["A"]), event("leads.ingested"), False),
        (SubscriptionFilter.of(["leads.ingested"]), event("leads.ingested"), True),
        (
            SubscriptionFilter.of(["leads.sla"], campaigns=["spring"]),
            event("leads.sla", "A", "spring", "other"),
            True,
        ),
        (
            SubscriptionFilter.of(["leads.sla"], campaigns=["spring"]),
            event("leads.sla", "A", "autumn"),
            False,
        ),
        (
            SubscriptionFilter.of(["leads.sla"], campaigns=["spring"]),
            event("leads.sla", "A"),
            False,
        ),
        (
            SubscriptionFilter.of(["leads.scored"], ["A"], ["spring"]),
            event("leads.scored", "A", "spring"),
            True,
        ),
        (
            SubscriptionFilter.of(["leads.scored"], ["A"], ["spring"]),
            event("leads.scored", "B", "spring"),
            False,
        ),
    ],
)
def test_matching(subscription: SubscriptionFilter, facts_: EventFacts, expected: bool) -> None:
    assert subscription.matches(facts_) is expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event_types": []}, "at least one event type"),
        ({"event_types": ["leads.deleted"]}, "unknown event types: leads.deleted"),
        ({"event_types": ["leads.routed"], "grades": ["E"]}, "unknown grades: E"),
    ],
)
def test_filters_refuse_unknown_names(kwargs: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SubscriptionFilter.of(**kwargs)
