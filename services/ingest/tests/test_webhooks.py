"""The CRM doors over real HTTP: authentication first, the documented payloads, and
redeliveries that create nothing new."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlmodel import select

from services.ingest.domain.signatures import standard_webhooks_signature
from services.ingest.models import CrmLink, Feedback, Lead, Touchpoint
from services.ingest.tests.conftest import Ingest, count, outbox_events

HUBSPOT_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
SF_TOKEN = "s3cr3t-path-token"
SF_ORG = "00D5e000000KQ2eEAG"
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def ingest_overrides() -> dict[str, Any]:
    return {
        "hubspot_client_secret": HUBSPOT_SECRET,
        "salesforce_path_token": SF_TOKEN,
        "salesforce_organization_ids": (SF_ORG,),
        "pipedrive_username": "leadflow",
        "pipedrive_password": "pipe-pass",
        "standard_webhooks_secret": SW_SECRET,
    }


def anonymous(ingest: Ingest) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=str(ingest.client.base_url))


# ------------------------------------------------------------------ HubSpot

# A workflow "Send a webhook" body with all contact properties (HubSpot's contact format).
HUBSPOT_CONTACT: dict[str, Any] = {
    "vid": 651,
    "canonical-vid": 651,
    "portal-id": 62515,
    "is-contact": True,
    "properties": {
        "email": {"value": "Cool.Robot@HubSpot-Test.com", "versions": []},
        "firstname": {"value": "Cool"},
        "lastname": {"value": "Robot (Sample Contact)"},
        "jobtitle": {"value": "Marketing Manager"},
        "company": {"value": "HubSpot Test"},
        "phone": {"value": "+1 617 555 0198"},
        "country": {"value": "United States"},
        "state": {"value": "MA"},
        "lifecyclestage": {"value": "lead"},
        "hs_object_id": {"value": "651"},
        "favorite_color": {"value": "teal"},
    },
}


def hubspot_headers(
    url: str, body: bytes, *, secret: str = HUBSPOT_SECRET, age_ms: int = 0
) -> dict[str, str]:
    timestamp = str(int(time.time() * 1000) - age_ms)
    source = b"POST" + url.encode() + body + timestamp.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest())
    return {
        "X-HubSpot-Signature-v3": signature.decode(),
        "X-HubSpot-Request-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


async def test_hubspot_workflow_contact_is_captured_once(ingest: Ingest) -> None:
    url = f"{ingest.client.base_url}/v1/webhooks/hubspot"
    body = json.dumps(HUBSPOT_CONTACT).encode()
    async with anonymous(ingest) as client:
        first = await client.post(url, content=body, headers=hubspot_headers(url, body))
        again = await client.post(url, content=body, headers=hubspot_headers(url, body))
    assert first.status_code == 200, first.text
    assert again.json() == first.json()
    [result] = first.json()["results"]
    assert (result["record_id"], result["status"]) == ("651", "created")
    [event] = outbox_events(ingest.database)
    lead = event["lead"]
    assert lead["email"] == "cool.robot@hubspot-test.com"
    assert (lead["region"], lead["seniority"]) == ("US-MA", "manager")
    assert lead["crm_ids"] == {"hubspot": "651"}
    assert lead["attributes"]["favorite_color"] == "teal"
    assert event["touchpoint"]["door"] == "webhook"
    assert count(ingest.database, Touchpoint) == 1


async def test_hubspot_status_change_becomes_feedback(ingest: Ingest) -> None:
    url = f"{ingest.client.base_url}/v1/webhooks/hubspot"
    created = json.dumps(HUBSPOT_CONTACT).encode()
    events = [
        {
            "eventId": 100,
            "subscriptionType": "contact.propertyChange",
            "objectId": 651,
            "propertyName": "hs_lead_status",
            "propertyValue": "BAD_TIMING",
            "occurredAt": 1564113600000,
        }
    ]
    status = json.dumps(events).encode()
    async with anonymous(ingest) as client:
        await client.post(url, content=created, headers=hubspot_headers(url, created))
        response = await client.post(url, content=status, headers=hubspot_headers(url, status))
    assert response.json()["results"][0]["feedback"] == "rejected"
    [feedback] = outbox_events(ingest.database, "leads.feedback")
    assert (feedback["status"], feedback["rejection_reason"]) == ("rejected", "no_timeframe")
    assert (feedback["source"], feedback["crm_record_id"]) == ("hubspot", "651")


@pytest.mark.parametrize("attack", ["tampered", "wrong_secret", "stale", "unsigned", "v2_wrong"])
async def test_hubspot_refuses_what_it_cannot_authenticate(ingest: Ingest, attack: str) -> None:
    url = f"{ingest.client.base_url}/v1/webhooks/hubspot"
    body = json.dumps(HUBSPOT_CONTACT).encode()
    headers = hubspot_headers(url, body)
    if attack == "tampered":
        body = body.replace(b"Cool.Robot", b"Evil.Robot")
    elif attack == "wrong_secret":
        headers = hubspot_headers(url, body, secret="not-the-secret")
    elif attack == "stale":
        headers = hubspot_headers(url, body, age_ms=301_000)
    elif attack == "unsigned":
        headers = {"Content-Type": "application/json"}
    else:
        headers = {"X-HubSpot-Signature-Version": "v2", "X-HubSpot-Signature": "0" * 64}
    async with anonymous(ingest) as client:
        response = await client.post(url, content=body, headers=headers)
    assert response.status_code == 401
    assert count(ingest.database, Lead) == 0


async def test_hubspot_v2_signatures_of_older_apps_are_accepted(ingest: Ingest) -> None:
    url = f"{ingest.client.base_url}/v1/webhooks/hubspot"
    body = json.dumps(HUBSPOT_CONTACT).encode()
    signature = hashlib.sha256(HUBSPOT_SECRET.encode() + b"POST" + url.encode() + body).hexdigest()
    async with anonymous(ingest) as client:
        response = await client.post(
            url,
            content=body,
            headers={"X-HubSpot-Signature-Version": "v2", "X-HubSpot-Signature": signature},
        )
    assert response.status_code == 200, response.text
    assert count(ingest.database, Lead) == 1


# ------------------------------------------------------------------ Salesforce


def soap(*notifications: tuple[str, str, dict[str, str]], org: str = SF_ORG) -> bytes:
    items = "".join(
        f"<Notification><Id>{nid}</Id>"
        '<sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>{record}</sf:Id>"
        + "".join(f"<sf:{k}>{v}</sf:{k}>" for k, v in fields.items())
        + "</sObject></Notification>"
        for nid, record, fields in notifications
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body>"
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org}</OrganizationId>"
        "<ActionId>04k5e000000CaRkAAK</ActionId>"
        '<SessionId xsi:nil="true"/>'
        "<EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/58.0/00D5e</EnterpriseUrl>"
        "<PartnerUrl>https://example.my.salesforce.com/services/Soap/u/58.0/00D5e</PartnerUrl>"
        f"{items}</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


LEAD_A = ("04l5e00000Gx7QzAAJ", "00Q5e00000AbCdEFGH", {
    "Email": "jane.doe@acme-widgets.com", "FirstName": "Jane", "LastName": "Doe",
    "Company": "Acme Widgets", "Title": "Director of Operations", "Country": "Germany",
    "State": "Bavaria", "LeadSource": "Web", "Status": "Open - Not Contacted",
})  # fmt: skip
LEAD_B = ("04l5e00000Gx7R0AAJ", "00Q5e00000AbCdEFGI", {
    "Email": "max@example-gmbh.de", "LastName": "Mustermann", "Company": "Example GmbH",
    "Phone": "089 1234567", "Country": "DE",
})  # fmt: skip


async def test_salesforce_outbound_message_is_acknowledged_and_deduplicated(
    ingest: Ingest,
) -> None:
    url = f"/v1/webhooks/salesforce/{SF_TOKEN}"
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
    async with anonymous(ingest) as client:
        first = await client.post(url, content=soap(LEAD_A, LEAD_B), headers=headers)
        # Redelivered, and out of order: B alone first, then both again.
        again_b = await client.post(url, content=soap(LEAD_B), headers=headers)
        again = await client.post(url, content=soap(LEAD_B, LEAD_A), headers=headers)
    for response in (first, again_b, again):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/xml")
        assert "<Ack>true</Ack>" in response.text
        assert "notificationsResponse" in response.text
    assert count(ingest.database, Lead) == 2
    assert count(ingest.database, Touchpoint) == 2
    events = outbox_events(ingest.database)
    jane = next(e["lead"] for e in events if e["lead"]["email"] == "jane.doe@acme-widgets.com")
    assert (jane["country"], jane["region"], jane["seniority"]) == ("DE", "DE-BY", "director")
    assert jane["crm_ids"] == {"salesforce": "00Q5e00000AbCdEFGH"}
    assert jane["source"] == "Web"


async def test_salesforce_status_of_a_known_lead_is_feedback(ingest: Ingest) -> None:
    url = f"/v1/webhooks/salesforce/{SF_TOKEN}"
    converted = ("04l5e00000Gx7S1AAJ", LEAD_A[1], {**LEAD_A[2], "Status": "Closed - Converted"})
    async with anonymous(ingest) as client:
        await client.post(url, content=soap(LEAD_A))
        await client.post(url, content=soap(converted))
    [feedback] = outbox_events(ingest.database, "leads.feedback")
    assert (feedback["status"], feedback["source"]) == ("converted", "salesforce")
    assert count(ingest.database, Touchpoint) == 1


async def test_salesforce_an_older_version_delivered_late_changes_nothing(
    ingest: Ingest,
) -> None:
    """Outbound Messages come out of order: the newest LastModifiedDate wins, whatever the
    order of arrival, and a stale status is not reported to sales as news."""
    url = f"/v1/webhooks/salesforce/{SF_TOKEN}"
    record = LEAD_A[1]
    older = ("04l5e00000Gx7T1AAJ", record, {
        **LEAD_A[2], "Title": "Operations Manager", "Status": "Working - Contacted",
        "LastModifiedDate": "2026-03-02T09:00:00.000Z",
    })  # fmt: skip
    newer = ("04l5e00000Gx7T2AAJ", record, {
        **LEAD_A[2], "Title": "VP Operations",
        "LastModifiedDate": "2026-03-02T11:30:00.000Z",
    })  # fmt: skip
    first = ("04l5e00000Gx7T0AAJ", record, {
        **LEAD_A[2], "LastModifiedDate": "2026-03-01T08:00:00.000Z",
    })  # fmt: skip
    async with anonymous(ingest) as client:
        for notification in (first, newer, older):
            response = await client.post(url, content=soap(notification))
            assert "<Ack>true</Ack>" in response.text
    with ingest.database.read() as session:
        [lead] = session.exec(select(Lead)).all()
        [link] = session.exec(select(CrmLink)).all()
    assert lead.title == "VP Operations"
    assert outbox_events(ingest.database, "leads.feedback") == []  # the stale status is not news
    assert link.modified_at == datetime(2026, 3, 2, 11, 30, tzinfo=UTC)


async def test_salesforce_refuses_a_wrong_token_or_organization(ingest: Ingest) -> None:
    async with anonymous(ingest) as client:
        token = await client.post("/v1/webhooks/salesforce/guess", content=soap(LEAD_A))
        org = await client.post(
            f"/v1/webhooks/salesforce/{SF_TOKEN}", content=soap(LEAD_A, org="00DXXXXXXXXXXXXXXX")
        )
        junk = await client.post(f"/v1/webhooks/salesforce/{SF_TOKEN}", content=b"<nope")
    assert token.status_code == 401
    assert org.status_code == 403
    assert junk.status_code == 400
    assert "Fault" in junk.text
    assert count(ingest.database, Lead) == 0


# ------------------------------------------------------------------ Pipedrive

PIPEDRIVE_PERSON = {
    "meta": {
        "action": "create", "entity": "person", "version": "2.0", "company_id": 12882925,
        "user_id": 18487521, "id": 5, "entity_id": 5, "webhook_id": 99, "attempt": 1,
        "host": "company.pipedrive.com", "timestamp": 1727447128, "change_source": "app",
    },
    "data": {
        "id": 5, "name": "Jane Smith", "first_name": "Jane", "last_name": "Smith",
        "emails": [{"label": "work", "value": "jane.smith@example-corp.com", "primary": True}],
        "phones": [{"label": "work", "value": "+15555550123", "primary": True}],
        "org_id": 2, "owner_id": 18487521,
    },
    "previous": None,
}  # fmt: skip


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_pipedrive_person_and_deal_won(ingest: Ingest) -> None:
    good = basic("leadflow", "pipe-pass")
    retry = {**PIPEDRIVE_PERSON, "meta": {**PIPEDRIVE_PERSON["meta"], "attempt": 2}}  # type: ignore[dict-item]
    deal = {
        "meta": {"action": "change", "entity": "deal", "version": "2.0", "id": 1,
                 "entity_id": 1, "webhook_id": 99, "timestamp": 1727447200},
        "data": {"id": 1, "title": "test deal", "value": 2, "currency": "USD",
                 "status": "won", "person_id": 5},
        "previous": {"status": "open"},
    }  # fmt: skip
    async with anonymous(ingest) as client:
        first = await client.post("/v1/webhooks/pipedrive", json=PIPEDRIVE_PERSON, headers=good)
        again = await client.post("/v1/webhooks/pipedrive", json=retry, headers=good)
        won = await client.post("/v1/webhooks/pipedrive", json=deal, headers=good)
        wrong = await client.post(
            "/v1/webhooks/pipedrive", json=PIPEDRIVE_PERSON, headers=basic("leadflow", "nope")
        )
    assert first.status_code == 200, first.text
    assert again.json() == first.json()
    assert first.json()["status"] == "created"
    assert wrong.status_code == 401
    assert count(ingest.database, Touchpoint) == 1
    [event] = outbox_events(ingest.database)
    assert event["lead"]["email"] == "jane.smith@example-corp.com"
    assert event["lead"]["crm_ids"] == {"pipedrive": "5"}
    assert won.json()["feedback"] == "won"
    [feedback] = outbox_events(ingest.database, "leads.feedback")
    assert (feedback["status"], feedback["opportunity_id"]) == ("won", "1")


# ------------------------------------------------------------------ Standard Webhooks


def standard_headers(
    body: bytes, msg_id: str, *, age_s: int = 0, secret: str = SW_SECRET
) -> dict[str, str]:
    timestamp = int(time.time()) - age_s
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhooks_signature(
            secret=secret, msg_id=msg_id, timestamp=timestamp, body=body
        ),
        "content-type": "application/json",
    }


async def test_standard_webhooks_lead_and_feedback(ingest: Ingest) -> None:
    lead = json.dumps(
        {"type": "lead.created", "data": {"email": "ops@partner.io", "campaign": "partner-q3"}}
    ).encode()
    feedback = json.dumps(
        {"type": "lead.feedback", "data": {"email": "ops@partner.io", "status": "accepted"}}
    ).encode()
    async with anonymous(ingest) as client:
        first = await client.post(
            "/v1/webhooks/standard", content=lead, headers=standard_headers(lead, "msg_1")
        )
        again = await client.post(
            "/v1/webhooks/standard", content=lead, headers=standard_headers(lead, "msg_1")
        )
        status = await client.post(
            "/v1/webhooks/standard", content=feedback, headers=standard_headers(feedback, "msg_2")
        )
    assert first.status_code == 200, first.text
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(ingest.database, Touchpoint) == 1
    assert status.json()["feedback"] == "accepted"
    assert count(ingest.database, Feedback) == 1


@pytest.mark.parametrize("attack", ["tampered", "wrong_secret", "stale", "unsigned"])
async def test_standard_webhooks_refusals(ingest: Ingest, attack: str) -> None:
    body = json.dumps({"type": "lead.created", "data": {"email": "x@partner.io"}}).encode()
    headers = standard_headers(body, "msg_9")
    if attack == "tampered":
        body = body.replace(b"x@", b"y@")
    elif attack == "wrong_secret":
        headers = standard_headers(body, "msg_9", secret="whsec_" + "QUJD" * 8)
    elif attack == "stale":
        headers = standard_headers(body, "msg_9", age_s=301)
    else:
        headers = {"content-type": "application/json"}
    async with anonymous(ingest) as client:
        response = await client.post("/v1/webhooks/standard", content=body, headers=headers)
    assert response.status_code == 401
    assert count(ingest.database, Lead) == 0
