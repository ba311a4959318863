"""Company scores rolled up from their open leads: the rule, and the API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.companies import roll_up
from services.scoring.domain.engine import GRADE_RANK, score_lead
from services.scoring.domain.facts import TouchpointFacts
from services.scoring.tests.builders import rulebook, touch
from services.scoring.tests.support import Clock, handle
from services.scoring.tests.test_engine import DEFAULT, leads, touchpoint_lists
from shared.contracts import CompanySnapshot, LeadSnapshot
from shared.db import Database
from shared.http import create_app
from shared.service import ServiceDefinition, ServiceRuntime
from shared.testing import factories
from shared.testing.pytest_plugin import serve_app, service_settings

T0 = datetime(2030, 5, 4, 8, tzinfo=UTC)


def lead(**overrides: object) -> LeadSnapshot:
    return factories.lead_snapshot(created_at=T0, **overrides)


def test_best_fit_and_engagement_together_graded_by_the_matrix() -> None:
    book = rulebook(
        categories=[{"id": "crm"}, {"id": "analytics"}],
        fit={
            "rules": [
                {"id": "vp", "points": 50, "when": {"field": "seniority", "equals": "vp"}},
                {
                    "id": "it",
                    "points": 10,
                    "categories": ["analytics"],
                    "when": {"field": "department", "equals": "it"},
                },
            ]
        },
        engagement={"max": 25, "rules": [{"id": "any", "points": 12}]},
    )
    vp = score_lead(book, lead(seniority="vp"), [touch("form", T0)], now=T0)
    it = score_lead(book, lead(seniority="manager", department="it"), [touch("x", T0)], now=T0)
    assert (vp.grade, it.grade) == ("B", "D")
    company = roll_up(book, [vp, it], now=T0)
    assert company is not None
    crm, analytics = company.categories
    assert (crm.fit_score, crm.engagement_score, crm.grade) == (50, 24, "A")
    assert (analytics.fit_score, analytics.engagement_score, analytics.grade) == (50, 24, "A")
    assert (company.grade, company.category, company.leads) == ("A", "crm", 2)
    # Engagement together stays within the rulebook's bounds.
    third = score_lead(book, lead(), [touch("x", T0)], now=T0)
    assert roll_up(book, [vp, it, third], now=T0).engagement_score == 25  # type: ignore[union-attr]


def test_a_company_is_in_market_when_one_of_its_leads_is() -> None:
    book = rulebook(
        engagement={
            "half_life_days": 30,
            "in_market": {"window_days": 14, "min_band": "high"},
            "rules": [{"id": "demo", "points": 1, "in_market": True}],
        }
    )
    demo = score_lead(book, lead(), [touch("demo_request", T0)], now=T0)
    quiet = score_lead(book, lead(), [], now=T0)
    company = roll_up(book, [quiet, demo], now=T0 + timedelta(days=1))
    assert company is not None
    assert company.categories[0].in_market
    assert company.grade == "C"  # low fit, but engagement counts as high
    assert roll_up(book, [quiet, demo], now=T0 + timedelta(days=15)).grade == "D"  # type: ignore[union-attr]


def test_no_open_lead_no_company_score() -> None:
    assert roll_up(DEFAULT, [], now=T0) is None


@given(st.lists(st.tuples(leads, touchpoint_lists), min_size=1, max_size=5))
def test_a_company_grades_at_least_as_well_as_its_best_lead(
    members: list[tuple[LeadSnapshot, list[TouchpointFacts]]],
) -> None:
    now = datetime(2030, 6, 1, 12, tzinfo=UTC)
    scores = [score_lead(DEFAULT, snapshot, tps, now=now) for snapshot, tps in members]
    company = roll_up(DEFAULT, scores, now=now)
    assert company is not None
    assert GRADE_RANK[company.grade] <= min(GRADE_RANK[score.grade] for score in scores)
    assert company.fit_score == max(score.fit_score for score in scores)


async def test_the_api_rolls_up_a_companys_open_leads(
    service_definition: ServiceDefinition, database: Database
) -> None:
    account = uuid.uuid4()
    company = CompanySnapshot(
        name="Acme", domain="acme.com", account_id=account, vertical="software", employees=240
    )
    vp, manager, won = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for lead_id, seniority, kind in [
        (vp, "vp", "form_submission"),
        (manager, "manager", "webinar_attendance"),
        (won, "c_level", "demo_request"),
    ]:
        payload = factories.lead_ingested(
            lead_id=lead_id,
            lead=lead(seniority=seniority, company=company),
            touchpoint=factories.touchpoint(type=kind, occurred_at=T0),
        )
        handle(database, payload, time=T0)
    handle(database, factories.lead_feedback(lead_id=won, status="won"), time=T0)
    other = factories.lead_ingested(lead=lead(company=CompanySnapshot(domain="globex.com")))
    handle(database, other, time=T0)

    runtime = ServiceRuntime(
        service_definition, service_settings(service_definition, database=database)
    )
    runtime.state["clock"] = Clock(T0)
    async with (
        serve_app(create_app(runtime, manage_runtime=False)) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        by_domain = (await client.get("/v1/companies/ACME.com/score")).json()
        by_account = (await client.get(f"/v1/companies/{account}/score")).json()
        missing = await client.get("/v1/companies/initech.com/score")
        bad = await client.get("/v1/companies/not-a-company/score")
        runtime.state["clock"].now = T0 + timedelta(days=60)
        later = (await client.get("/v1/companies/acme.com/score")).json()

    # The VP (fit 70, engagement 5) and the manager (fit 58, engagement 15) are both B;
    # together the company has fit 70 and engagement 20: an A. The won lead is closed.
    assert (by_domain["grade"], by_domain["fit_score"], by_domain["engagement_score"]) == (
        "A",
        70,
        20,
    )
    assert (by_domain["open_leads"], by_domain["closed_leads"]) == (2, 1)
    assert (by_domain["domain"], by_domain["account_id"]) == ("acme.com", None)
    assert [(entry["lead_id"], entry["grade"]) for entry in by_domain["leads"]] == [
        (str(vp), "B"),
        (str(manager), "B"),
    ]
    assert by_domain["categories"][0]["in_market"] is False
    assert (by_domain["rulebook_version"], by_domain["as_of"]) == (1, "2030-05-04T08:00:00Z")
    assert by_account["grade"] == "A"
    assert by_account["account_id"] == str(account)
    assert missing.status_code == 404
    assert missing.json()["detail"][0]["loc"] == ["path", "key"]
    assert bad.status_code == 422
    # Two months on, engagement has decayed (half-life 30 days): 20 / 4.
    assert (later["grade"], later["engagement_score"]) == ("B", 5)
