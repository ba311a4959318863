"""Web forms: a field map per form, JSON or url-encoded submissions, no key needed."""

from __future__ import annotations

import httpx

from services.ingest.models import Lead
from services.ingest.tests.conftest import Ingest, count, outbox_events

FORM = {
    "name": "Contact us (website)",
    "field_map": {"your-email": "email", "cmp": "campaign", "hp_website2": "ignore"},
    "defaults": {
        "source": "website",
        "campaign": "evergreen",
        "touchpoint_type": "contact_request",
    },
}


async def anonymous(ingest: Ingest) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=str(ingest.client.base_url))


async def test_a_form_is_managed_by_api(ingest: Ingest) -> None:
    created = await ingest.client.put("/v1/forms/contact-us", json=FORM)
    assert created.status_code == 200, created.text
    assert created.json()["field_map"] == FORM["field_map"]
    fetched = await ingest.client.get("/v1/forms/contact-us")
    assert fetched.json()["defaults"]["touchpoint_type"] == "contact_request"
    listed = await ingest.client.get("/v1/forms")
    assert [f["id"] for f in listed.json()] == ["contact-us"]
    async with await anonymous(ingest) as client:
        assert (await client.put("/v1/forms/contact-us", json=FORM)).status_code == 401


async def test_a_field_map_must_name_lead_fields(ingest: Ingest) -> None:
    response = await ingest.client.put("/v1/forms/bad", json={"field_map": {"x": "e_mail_address"}})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "field_map"]


async def test_an_urlencoded_submission_is_mapped_and_captured(ingest: Ingest) -> None:
    await ingest.client.put("/v1/forms/contact-us", json=FORM)
    async with await anonymous(ingest) as client:
        response = await client.post(
            "/v1/forms/contact-us",
            data={
                "your-email": "Grace.Hopper@Navy.mil",
                "Full Name": "Grace Hopper",
                "Company Name": "US Navy",
                "Tel.": "+1 202 555 0143",
                "cmp": "spring-expo",
                "utm_source": "newsletter",
                "hp_website2": "",
                "Message": "Please call me about COBOL",
            },
        )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "created"
    [event] = outbox_events(ingest.database)
    lead, touchpoint = event["lead"], event["touchpoint"]
    assert lead["email"] == "grace.hopper@navy.mil"
    assert (lead["first_name"], lead["last_name"]) == ("Grace", "Hopper")
    assert lead["company"]["name"] == "US Navy"
    assert lead["attributes"] == {"message": "Please call me about COBOL"}
    assert (touchpoint["door"], touchpoint["type"], touchpoint["source"]) == (
        "form",
        "contact_request",
        "website",
    )
    assert touchpoint["campaign"] == "spring-expo"
    assert touchpoint["reference"] == "contact-us"
    assert touchpoint["utm"]["source"] == "newsletter"


async def test_a_json_submission_uses_the_defaults(ingest: Ingest) -> None:
    await ingest.client.put("/v1/forms/contact-us", json=FORM)
    async with await anonymous(ingest) as client:
        response = await client.post(
            "/v1/forms/contact-us", json={"your-email": "a@acme.com", "Opt-in": "yes"}
        )
    assert response.status_code == 202
    [event] = outbox_events(ingest.database)
    assert event["touchpoint"]["campaign"] == "evergreen"
    assert event["lead"]["consent"]["email_marketing"] is True


async def test_errors_name_the_forms_own_field(ingest: Ingest) -> None:
    await ingest.client.put("/v1/forms/contact-us", json=FORM)
    async with await anonymous(ingest) as client:
        bad = await client.post("/v1/forms/contact-us", data={"your-email": "grace@"})
        unknown = await client.post("/v1/forms/nope", data={"email": "a@acme.com"})
        wrong_type = await client.post(
            "/v1/forms/contact-us", content=b"a@acme.com", headers={"content-type": "text/plain"}
        )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "your-email"]
    assert unknown.status_code == 404
    assert wrong_type.status_code == 415
    assert count(ingest.database, Lead) == 0
