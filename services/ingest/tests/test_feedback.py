"""POST /v1/feedback: the lead found by id, email or CRM record id; LeadFeedbackV1 out."""

from __future__ import annotations

import uuid

from services.ingest.models import Feedback
from services.ingest.tests.conftest import Ingest, count, outbox_events


async def test_feedback_resolves_the_lead_and_is_published(ingest: Ingest) -> None:
    created = await ingest.client.post("/v1/leads", json={"email": "ada@acme.com"})
    lead_id = created.json()["lead_id"]
    by_id = await ingest.client.post(
        "/v1/feedback", json={"lead_id": lead_id, "status": "contacted", "source": "api"}
    )
    by_email = await ingest.client.post(
        "/v1/feedback",
        json={
            "email": " ADA@acme.com",
            "status": "rejected",
            "rejection_reason": "no_timeframe",
            "note": "call again in Q3",
        },
    )
    won = await ingest.client.post(
        "/v1/feedback",
        json={"email": "ada@acme.com", "status": "won", "amount": "12000.50", "currency": "EUR"},
    )
    assert by_id.status_code == by_email.status_code == won.status_code == 202, by_email.text
    assert by_email.json()["lead_id"] == lead_id
    events = outbox_events(ingest.database, "leads.feedback")
    assert [(e["status"], e["rejection_reason"]) for e in events] == [
        ("contacted", None),
        ("rejected", "no_timeframe"),
        ("won", None),
    ]
    assert all(e["lead_id"] == lead_id for e in events)
    assert events[2]["amount"] == "12000.50"
    assert events[1]["note"] == "call again in Q3"


async def test_a_rejection_needs_a_reason_from_the_list(ingest: Ingest) -> None:
    await ingest.client.post("/v1/leads", json={"email": "ada@acme.com"})
    missing = await ingest.client.post(
        "/v1/feedback", json={"email": "ada@acme.com", "status": "rejected"}
    )
    unknown = await ingest.client.post(
        "/v1/feedback",
        json={"email": "ada@acme.com", "status": "rejected", "rejection_reason": "too_lazy"},
    )
    bad_status = await ingest.client.post(
        "/v1/feedback", json={"email": "ada@acme.com", "status": "maybe"}
    )
    assert missing.status_code == unknown.status_code == bad_status.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "rejection_reason"]
    assert bad_status.json()["detail"][0]["loc"] == ["body", "status"]
    assert count(ingest.database, Feedback) == 0


async def test_feedback_for_an_unknown_lead_is_404(ingest: Ingest) -> None:
    response = await ingest.client.post(
        "/v1/feedback", json={"lead_id": str(uuid.uuid4()), "status": "accepted"}
    )
    assert response.status_code == 404
    assert response.json()["detail"][0]["loc"] == ["body", "lead_id"]
    assert outbox_events(ingest.database, "leads.feedback") == []
