"""End to end: every service as a process, the real broker, PostgreSQL.

Routing is configured through its API; then a web-form lead, a HubSpot webhook lead and a CSV
row each go through ingest, scoring and routing and end on reporting's dashboard (a lead's
journey) with a grade, a rep and an SLA clock; feedback from the CRM closes the loop; a C lead
that becomes an A is pulled out of nurture; delivery's webhook subscription receives the
routing decisions, signed.

The tests share the module's system and work on leads, campaigns and sources of their own.
Grades follow the default rulebook (services/scoring/rulebooks/default.yaml).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from shared.testing.kafka_tools import eventually
from tests.conftest import HUBSPOT_CLIENT_SECRET
from tests.flow import Receiver, subscribe, webhook_receiver
from tests.system import System

pytestmark = pytest.mark.e2e

TIMEOUT = 120.0
EMEA_REPS = {"ana", "ben"}

ROUTING_CONFIG: list[tuple[str, dict[str, Any]]] = [
    ("/v1/territories", {"territory_id": "uk", "country": "GB"}),
    ("/v1/territories", {"territory_id": "dach", "country": "DE"}),
    ("/v1/territories", {"territory_id": "us", "country": "US"}),
    ("/v1/teams", {"team_id": "emea", "name": "EMEA", "territory_ids": ["uk", "dach"]}),
    ("/v1/teams", {"team_id": "americas", "name": "Americas", "territory_ids": ["us"]}),
    (
        "/v1/reps",
        {"rep_id": "ana", "team_id": "emea", "name": "Ana", "crm_user_id": "hs-ana"},
    ),
    (
        "/v1/reps",
        {"rep_id": "ben", "team_id": "emea", "name": "Ben", "crm_user_id": "hs-ben"},
    ),
    (
        "/v1/reps",
        {
            "rep_id": "cara",
            "team_id": "americas",
            "name": "Cara",
            "crm_user_id": "hs-cara",
            "time_zone": "America/New_York",
        },
    ),
    ("/v1/programs", {"program_id": "nurture-cd", "name": "Nurture", "grades": ["C", "D"]}),
]


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    async with webhook_receiver() as served:
        yield served


@pytest.fixture(scope="module")
def configured(system: System, receiver: tuple[Receiver, str]) -> str:
    """Routing configured through its API, and delivery's subscription to leads.routed;
    answers the subscription's secret."""
    with system.client("routing") as routing:
        for path, body in ROUTING_CONFIG:
            response = routing.post(path, json=body, headers={"X-Actor": "e2e"})
            assert response.status_code == 201, response.text
    return subscribe(system, receiver, description="e2e")


@pytest.fixture
async def ingest(system: System, configured: str) -> AsyncIterator[httpx.AsyncClient]:
    async with system.async_client("ingest") as client:
        yield client


@pytest.fixture
async def reporting(system: System) -> AsyncIterator[httpx.AsyncClient]:
    async with system.async_client("reporting") as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def journey(
    reporting: httpx.AsyncClient,
    lead_id: str,
    until: Callable[[dict[str, Any]], bool],
    what: str,
) -> dict[str, Any]:
    """The lead's journey on the dashboard, once ``until`` holds for it."""

    async def look() -> dict[str, Any] | None:
        response = await reporting.get(f"/v1/leads/{lead_id}")
        if response.status_code != 200:
            return None
        found: dict[str, Any] = response.json()
        return found if until(found) else None

    found: dict[str, Any] = await eventually(
        look, timeout=TIMEOUT, interval=0.5, message=f"lead {lead_id}: {what}"
    )
    return found


def routed_with_clock(found: dict[str, Any]) -> bool:
    lead = found["lead"]
    return (lead["outcome"], lead["sla_status"]) == ("assigned", "running")


async def stages(reporting: httpx.AsyncClient, **filters: str) -> dict[str, int]:
    response = await reporting.get("/v1/metrics/funnel", params=filters)
    assert response.status_code == 200, response.text
    return {stage["stage"]: stage["leads"] for stage in response.json()["stages"]}


async def test_a_web_form_lead_is_graded_routed_and_followed_up(
    system: System,
    ingest: httpx.AsyncClient,
    reporting: httpx.AsyncClient,
    configured: str,
    receiver: tuple[Receiver, str],
) -> None:
    form_id, campaign = unique("e2e-form"), unique("spring-webinar")
    form = await ingest.put(
        f"/v1/forms/{form_id}",
        json={
            "field_map": {
                "your-email": "email",
                "your-title": "title",
                "org": "company",
                "size": "employees",
                "sector": "industry",
                "land": "country",
                "tel": "phone",
            },
            "defaults": {"source": "web_form", "campaign": campaign},
        },
    )
    assert form.status_code in (200, 201), form.text
    # A browser posts the form: no API key, form-encoded.
    async with httpx.AsyncClient(base_url=system.url("ingest")) as browser:
        submitted = await browser.post(
            f"/v1/forms/{form_id}",
            data={
                "your-email": f"{unique('vp')}@analytical-engines.co.uk",
                "your-title": "VP Engineering",
                "org": "Analytical Engines Ltd",
                "size": "240",
                "sector": "Software",
                "land": "United Kingdom",
                "tel": "+44 20 7946 0958",
            },
        )
    assert submitted.status_code == 202, submitted.text
    lead_id = submitted.json()["lead_id"]

    # A VP at a 240-person software company in a country served who filled in a form: fit
    # 70, engagement 5, a B; the UK is emea's, so Ana or Ben has it under a 40-hour clock.
    found = await journey(reporting, lead_id, routed_with_clock, "assigned with a clock")
    lead = found["lead"]
    assert (lead["source"], lead["campaign"], lead["grade"]) == ("web_form", campaign, "B")
    assert lead["team_id"] == "emea"
    assert lead["rep_id"] in EMEA_REPS
    assert lead["rep_name"] == lead["rep_id"].title()
    assert lead["sla_due_at"] is not None
    rep = lead["rep_id"]

    # The recent leads on the dashboard show it too.
    recent = await reporting.get("/v1/leads", params={"campaign": campaign})
    assert [row["lead_id"] for row in recent.json()] == [lead_id]

    # The rep calls, then accepts it: the clock is met, the funnel moves.
    for status in ("contacted", "accepted"):
        feedback = await ingest.post(
            "/v1/feedback",
            json={"lead_id": lead_id, "status": status, "rep_crm_user_id": f"hs-{rep}"},
        )
        assert feedback.status_code == 202, feedback.text
    found = await journey(
        reporting,
        lead_id,
        lambda j: (j["lead"]["stage"], j["lead"]["sla_status"]) == ("accepted", "met"),
        "accepted and its clock met",
    )
    assert [f["status"] for f in found["feedback"]] == ["contacted", "accepted"]
    assert found["speed_to_first_touch_seconds"] is not None
    assert await stages(reporting, campaign=campaign) == {
        "ingested": 1,
        "mql": 1,
        "accepted": 1,
        "opportunity": 0,
        "won": 0,
    }

    # Delivery's subscriber got the routing decision, signed with the subscription's secret.
    subscriber, _ = receiver

    def delivered() -> list[dict[str, Any]]:
        return [
            event
            for event in subscriber.events()
            if event["subject"] == lead_id and event["type"] == "leadflow.lead.routed.v1"
        ]

    [event] = await eventually(delivered, timeout=TIMEOUT, message="no routed event delivered")
    assert event["data"]["rep"]["rep_id"] == rep


def hubspot_headers(url: str, body: bytes) -> dict[str, str]:
    """Signed as HubSpot signs (v3): HMAC-SHA256 of method, URI, body and timestamp."""
    timestamp = str(int(time.time() * 1000))
    source = b"POST" + url.encode() + body + timestamp.encode()
    digest = hmac.new(HUBSPOT_CLIENT_SECRET.encode(), source, hashlib.sha256).digest()
    return {
        "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
        "X-HubSpot-Request-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


async def test_a_hubspot_lead_is_routed_and_its_crm_status_closes_the_loop(
    system: System, ingest: httpx.AsyncClient, reporting: httpx.AsyncClient
) -> None:
    url = f"{system.url('ingest')}/v1/webhooks/hubspot"
    vid = uuid.uuid4().int % 10**9
    contact = {
        "vid": vid,
        "properties": {
            "email": {"value": f"{unique('grace')}@globex-e2e.com"},
            "firstname": {"value": "Grace"},
            "lastname": {"value": "Hopper"},
            "jobtitle": {"value": "VP Sales"},
            "company": {"value": "Globex"},
            "numemployees": {"value": "500"},
            "industry": {"value": "Computer Software"},
            "country": {"value": "United States"},
            "state": {"value": "CA"},
            "phone": {"value": "+1 415 555 0132"},
            "lifecyclestage": {"value": "lead"},
            "hs_object_id": {"value": str(vid)},
        },
    }

    async def hubspot(payload: Any) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        async with httpx.AsyncClient() as crm:
            response = await crm.post(url, content=body, headers=hubspot_headers(url, body))
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()["results"][0]
        return result

    created = await hubspot(contact)
    assert created["status"] == "created"
    lead_id = created["lead_id"]
    found = await journey(reporting, lead_id, routed_with_clock, "assigned with a clock")
    lead = found["lead"]
    # Fit 70 (VP and sales, software, 500 people, US, a phone), no engagement yet: a B, for
    # the Americas team's only rep.
    assert (lead["source"], lead["grade"], lead["team_id"], lead["rep_id"]) == (
        "hubspot",
        "B",
        "americas",
        "cara",
    )
    assert lead["sla_due_at"] is not None

    # HubSpot reports the rep's progress: connected, then an open deal, then a customer.
    changes = [
        ("hs_lead_status", "CONNECTED"),
        ("lifecyclestage", "opportunity"),
        ("lifecyclestage", "customer"),
    ]
    for number, (name, value) in enumerate(changes):
        result = await hubspot(
            [
                {
                    "eventId": vid * 10 + number,
                    "subscriptionType": "contact.propertyChange",
                    "objectId": vid,
                    "propertyName": name,
                    "propertyValue": value,
                    "occurredAt": int(time.time() * 1000),
                }
            ]
        )
        assert result["lead_id"] == lead_id
    found = await journey(
        reporting,
        lead_id,
        lambda j: (j["lead"]["stage"], j["lead"]["sla_status"]) == ("won", "met"),
        "won and its clock met",
    )
    assert [f["status"] for f in found["feedback"]] == ["contacted", "converted", "won"]
    funnel = await stages(reporting, source="hubspot")
    assert funnel == {"ingested": 1, "mql": 1, "accepted": 1, "opportunity": 1, "won": 1}


async def test_a_csv_row_is_imported_graded_and_routed(
    ingest: httpx.AsyncClient, reporting: httpx.AsyncClient
) -> None:
    campaign = unique("directory-listing")
    csv_text = (
        "E-mail Address;First Name;Last Name;Job Title;Company Name;Employees;Industry;"
        "Country;Phone\n"
        f"{unique('ines')}@beispiel-werke.de;Ines;Weber;Director of IT;Beispiel Werke GmbH;"
        "1200;Software;Deutschland;+49 89 1234567\n"
    )
    accepted = await ingest.post(
        "/v1/imports",
        params={
            "source": "directory",
            "campaign": campaign,
            "touchpoint_type": "directory_listing",
        },
        content=csv_text.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert accepted.status_code == 202, accepted.text
    import_id = accepted.json()["import_id"]

    async def finished() -> dict[str, Any] | None:
        report: dict[str, Any] = (await ingest.get(f"/v1/imports/{import_id}")).json()
        return report if report.get("finished_at") else None

    report = await eventually(finished, timeout=TIMEOUT, message="import not finished")
    assert (report["created"], report["rejected"]) == (1, 0), report

    async def listed() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = (
            await reporting.get("/v1/leads", params={"campaign": campaign})
        ).json()
        return rows

    [row] = await eventually(listed, timeout=TIMEOUT, message="the row is not on the dashboard")
    found = await journey(reporting, row["lead_id"], routed_with_clock, "assigned with a clock")
    lead = found["lead"]
    # Fit 65 (a director in IT, software, 1,200 people, Germany, a phone) and a directory
    # referral (15, medium engagement): an A, for emea, under the 8-hour clock.
    assert (lead["source"], lead["campaign"], lead["grade"], lead["team_id"]) == (
        "directory",
        campaign,
        "A",
        "emea",
    )
    assert lead["rep_id"] in EMEA_REPS
    assert [t["type"] for t in found["touchpoints"]] == ["directory_listing"]


async def test_a_c_lead_that_becomes_an_a_is_pulled_out_of_nurture(
    ingest: httpx.AsyncClient, reporting: httpx.AsyncClient
) -> None:
    person = {
        "email": f"{unique('marta')}@nurture-e2e.de",
        "title": "Marketing Manager",
        "company": "Nurture Werk GmbH",
        "employees": 80,
        "industry": "Software",
        "country": "DE",
        "source": "web_form",
        "campaign": unique("whitepaper"),
    }
    first = await ingest.post("/v1/leads", json={**person, "touchpoint_type": "content_download"})
    assert first.status_code == 202, first.text
    lead_id = first.json()["lead_id"]
    # Fit 46 (a manager in marketing, software, 80 people, Germany), a download (10): a C.
    found = await journey(
        reporting, lead_id, lambda j: j["lead"]["outcome"] == "nurture", "in nurture"
    )
    assert found["lead"]["grade"] == "C"
    assert found["lead"]["rep_id"] is None
    assert found["assignments"][0]["sla_due_at"] is None

    # She asks for a demo: in market, an A, out of nurture and to a rep.
    again = await ingest.post("/v1/leads", json={**person, "touchpoint_type": "demo_request"})
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "merged"
    found = await journey(reporting, lead_id, routed_with_clock, "pulled out of nurture")
    assert found["lead"]["grade"] == "A"
    assert found["lead"]["rep_id"] in EMEA_REPS
    nurture, assigned = found["assignments"]
    assert (nurture["outcome"], assigned["outcome"]) == ("nurture", "assigned")
    assert assigned["reassignment_of"] == nurture["assignment_id"]
    assert [g["grade"] for g in found["grades"]] == ["C", "A"]
