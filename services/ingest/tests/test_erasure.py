"""Erasure on request: ``DELETE /v1/people/{email}`` over real HTTP on both databases, the
suppression of an erased person at every door until they consent again, and the rules."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from services.ingest.capture import Suppressed, capture
from services.ingest.domain.csvfile import read
from services.ingest.domain.erasure import (
    ERASED_CELL,
    SuppressionEntry,
    erase_rows,
    is_erased_row,
    rows_of_person,
    screen,
)
from services.ingest.domain.normalize import NormalizationConfig
from services.ingest.domain.submission import Submission
from services.ingest.erasure import Erasure, erase_person
from services.ingest.imports import process_chunk
from services.ingest.models import ERASURES, TABLES, Import, Lead, Suppression
from services.ingest.tests.conftest import Ingest, outbox_events
from services.ingest.tests.test_imports import OUTBOX, settings
from shared.contracts import Consent
from shared.db import Database
from shared.testing.locks import wait_until_waiting_for_an_advisory_lock
from shared.testing.personal_data import find_in_database

EMAIL = "Zebulon.Quackenbush@Orbital-Widgets.co.uk"
ADDRESS = EMAIL.lower()
PHONE = "020 7946 0321"
E164 = "+442079460321"
# Everything that names the person, as normalized and as submitted.
NEEDLES = (ADDRESS, "Zebulon", "Quackenbush", E164, PHONE, "79460321", "Rocket Lane")

PERSON: dict[str, Any] = {
    "email": EMAIL,
    "first_name": "Zebulon",
    "last_name": "Quackenbush",
    "title": "VP Engineering",
    "company": "Orbital Widgets Ltd",
    "country": "UK",
    "city": "London",
    "postal_code": "EC1A 1BB",
    "source": "web_form",
    "campaign": "q4-webinar",
    "touchpoint_type": "demo_request",
    "utm": {"source": "linkedin", "campaign": "q4-webinar", "term": "zebulon quackenbush"},
    "street": "1 Rocket Lane",
}
CSV = (
    "Email,First Name,Last Name,Phone,Country\r\n"
    f"{EMAIL},Zebulon,Quackenbush,{PHONE},UK\r\n"
    "ada@analytical-engines.co.uk,Ada,Lovelace,,UK\r\n"
)


# ---------------------------------------------------------------- the rules


NOW = datetime(2031, 3, 1, 12, tzinfo=UTC)
ERASED = NOW - timedelta(days=10)


def entry(kind: str = "email") -> SuppressionEntry:
    return SuppressionEntry(uuid.UUID(int=1), kind, ERASED)  # type: ignore[arg-type]


def test_an_erased_person_is_refused_naming_the_field_and_the_consent_it_needs() -> None:
    refused = screen([entry()], has_email=True, consent=Consent(), now=NOW).refused
    assert refused is not None
    assert refused.field == "email"
    assert "erased on request" in refused.reason
    assert "consent.data_processing" in refused.reason


def test_the_phone_refuses_only_a_submission_without_an_email() -> None:
    assert screen([entry("phone")], has_email=True, consent=Consent(), now=NOW).refused is None
    refused = screen([entry("phone")], has_email=False, consent=Consent(), now=NOW).refused
    assert refused is not None
    assert refused.field == "phone"


@pytest.mark.parametrize(
    ("consent", "lets_in"),
    [
        (Consent(data_processing=True), True),  # given now
        (Consent(data_processing=True, recorded_at=ERASED + timedelta(days=1)), True),
        (Consent(data_processing=True, recorded_at=ERASED - timedelta(days=1)), False),
        (Consent(email_marketing=True), False),  # marketing consent is not enough
        (Consent(data_processing=False), False),
    ],
)
def test_only_consent_to_processing_given_after_the_erasure_lets_the_person_back(
    consent: Consent, lets_in: bool
) -> None:
    screening = screen([entry(), entry("phone")], has_email=True, consent=consent, now=NOW)
    assert (screening.refused is None) is lets_in
    assert screening.lifted == (frozenset({uuid.UUID(int=1)}) if lets_in else frozenset())
    if not lets_in and consent.data_processing:
        assert screening.refused is not None
        assert "before the erasure" in screening.refused.reason


def test_rows_are_blanked_in_place_and_every_other_byte_stays() -> None:
    text = (
        "email;name;note\r\n"
        "a@x.io;Ann;hello\r\n"
        'z@x.io;Zed;"two\r\nlines"\r\n'
        "\r\n"
        "b@x.io;Bob;;\r\n"
        "c@x.io;Cy;bye"
    )
    before = [(row.number, row.fields.get("email")) for row in read(text, ";")[1]]
    assert before == [(2, "a@x.io"), (4, "z@x.io"), (6, "b@x.io"), (7, "c@x.io")]
    erased = erase_rows(text, ";", {4, 7})
    lines = erased.splitlines(keepends=True)
    assert lines[:2] == text.splitlines(keepends=True)[:2]
    assert lines[4:6] == text.splitlines(keepends=True)[4:6]
    rows = list(read(erased, ";")[1])
    assert [row.number for row in rows] == [2, 4, 6, 7]  # same numbers: resumption stays right
    assert [is_erased_row(row) for row in rows] == [False, True, False, True]
    assert "Zed" not in erased
    assert "Cy" not in erased
    assert rows[1].fields["email"] == ERASED_CELL
    assert erase_rows(text, ";", set()) == text


def test_the_rows_of_a_person_are_found_by_reference_email_or_phone_alone() -> None:
    text = (
        "Email,Name,Phone,Referred by\r\n"
        "zeb@x.io,Zeb,,\r\n"  # 2: the email
        ",Zeb,020 7946 0321,\r\n"  # 3: no email, the phone
        "other@x.io,Other,020 7946 0321,\r\n"  # 4: the phone with another email: someone else
        "ref@x.io,Ref,,ZEB@X.IO\r\n"  # 5: holds the email: blanked too
        "ann@x.io,Ann,,\r\n"  # 6: referenced by a touchpoint of the person's lead
        "bob@x.io,Bob,,\r\n"  # 7
    )
    found = rows_of_person(
        text,
        ",",
        email="zeb@x.io",
        phones=[E164],
        referenced={6},
        config=NormalizationConfig(default_country="GB"),
    )
    assert found == {2, 3, 5, 6}


# ---------------------------------------------------------------- the door


async def submit(ingest: Ingest, body: dict[str, Any], **headers: str) -> Any:
    return await ingest.client.post("/v1/leads", json=body, headers=headers)


async def person_with_everything(ingest: Ingest) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """The person as two leads (an email-only lead that later got the phone, and an older
    phone-only lead), with feedback, a stored idempotent answer and a pending import."""
    first = await submit(ingest, {"email": EMAIL, "first_name": "Zebulon"})
    lead_id = uuid.UUID(first.json()["lead_id"])
    phone_only = await submit(ingest, {"phone": PHONE, "country": "UK", "last_name": "Quackenbush"})
    phone_lead = uuid.UUID(phone_only.json()["lead_id"])
    assert phone_lead != lead_id
    again = await submit(ingest, {**PERSON, "phone": PHONE}, **{"Idempotency-Key": "k-1"})
    assert (again.json()["lead_id"], again.json()["status"]) == (str(lead_id), "merged")
    feedback = await ingest.client.post(
        "/v1/feedback",
        json={
            "lead_id": str(lead_id),
            "status": "contacted",
            "crm_provider": "hubspot",
            "crm_record_id": "651",
        },
    )
    assert feedback.status_code == 202, feedback.text
    response = await ingest.client.post(
        "/v1/imports", files={"file": ("list.csv", CSV.encode(), "text/csv")}
    )
    assert response.status_code == 202, response.text
    return lead_id, phone_lead, uuid.UUID(response.json()["import_id"])


def publish_outbox(ingest: Ingest) -> None:
    """What the relay does: mark every outbox row published."""
    outbox = TABLES.outbox
    with ingest.database.transaction() as session:
        session.execute(update(outbox).values(published_at=datetime.now(UTC)))


def sweep_outbox(ingest: Ingest) -> None:
    """What the outbox purger does."""
    with ingest.database.transaction() as session:
        ERASURES.purge_outbox(session, lead_ids=ERASURES.unpurged(session))


async def test_erasure_leaves_no_trace_of_the_person_in_ingest(ingest: Ingest) -> None:
    lead_id, phone_lead, import_id = await person_with_everything(ingest)
    assert find_in_database(ingest.database, NEEDLES)

    response = await ingest.client.delete(f"/v1/people/{EMAIL}", params={"regulation": "ccpa"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "erased"
    assert answer["regulation"] == "ccpa"
    assert set(answer["lead_ids"]) == {str(lead_id), str(phone_lead)}

    erased = outbox_events(ingest.database, "leads.erased")
    assert {e["lead_id"] for e in erased} == {str(lead_id), str(phone_lead)}
    assert {e["erasure_id"] for e in erased} == {answer["erasure_id"]}
    # Pending leads.ingested rows (the relay has not run) still hold the person: they go out
    # first, then the purge takes them.
    publish_outbox(ingest)
    sweep_outbox(ingest)
    found = find_in_database(ingest.database, NEEDLES)
    assert found == [], "\n".join(map(str, found))

    with ingest.database.read() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        assert lead.erased_at is not None
        assert (lead.touchpoint_count, lead.source, lead.campaign) == (2, "api", "q4-webinar")
        assert (lead.company_name, lead.country, lead.seniority) == (
            "Orbital Widgets Ltd",
            "GB",
            "vp",
        )
        job = session.get(Import, import_id)
        assert job is not None
        assert job.content.count(ERASED_CELL) == 5
        assert "ada@analytical-engines.co.uk" in job.content
        kinds = sorted(s.kind for s in session.execute(select(Suppression)).scalars())
        assert kinds == ["email", "phone"]

    # The pending import goes on: the blanked row is refused, the other one imported.
    config = settings(ingest.database)
    with ingest.database.transaction() as session:
        assert process_chunk(session, OUTBOX, import_id=import_id, settings=config)
    report = (await ingest.client.get(f"/v1/imports/{import_id}")).json()
    assert (report["created"], report["merged"], report["rejected"]) == (1, 0, 1)
    assert [(i["row"], i["field"]) for i in report["issues"]] == [(2, "row")]
    with ingest.database.read() as session:
        finished = session.get(Import, import_id)
        assert finished is not None
        assert finished.content == ""  # a finished import keeps no file

    # Asking again is harmless: the same answer, nothing more published.
    repeated = await ingest.client.delete(f"/v1/people/{ADDRESS}")
    assert repeated.status_code == 200
    assert repeated.json()["status"] == "already_erased"
    assert repeated.json()["erasure_id"] == answer["erasure_id"]
    assert len(outbox_events(ingest.database, "leads.erased")) == 0  # purged, none added

    gone = await ingest.client.post("/v1/feedback", json={"lead_id": str(lead_id), "status": "won"})
    assert gone.status_code == 404
    assert gone.json()["detail"][0]["loc"] == ["body", "lead_id"]


async def test_the_door_answers_404_422_and_401(ingest: Ingest) -> None:
    unknown = await ingest.client.delete("/v1/people/nobody@analytical-engines.co.uk")
    assert unknown.status_code == 404
    assert unknown.json()["detail"][0]["loc"] == ["path", "email"]
    bad = await ingest.client.delete("/v1/people/not-an-email")
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["path", "email"]
    bad_law = await ingest.client.delete(f"/v1/people/{EMAIL}", params={"regulation": "x"})
    assert bad_law.status_code == 422
    del ingest.client.headers["X-API-Key"]
    assert (await ingest.client.delete(f"/v1/people/{EMAIL}")).status_code == 401


async def test_an_erased_person_is_refused_at_every_door_until_consent_lets_them_back(
    ingest: Ingest,
) -> None:
    first = await submit(ingest, {**PERSON, "phone": PHONE})
    lead_id = first.json()["lead_id"]
    assert (await ingest.client.delete(f"/v1/people/{EMAIL}")).status_code == 200

    refused = await submit(ingest, PERSON)
    assert refused.status_code == 422
    detail = refused.json()["detail"][0]
    assert detail["loc"] == ["body", "email"]
    assert "erased on request" in detail["msg"]

    by_phone = await submit(ingest, {"phone": PHONE, "country": "GB"})
    assert by_phone.status_code == 422
    assert by_phone.json()["detail"][0]["loc"] == ["body", "phone"]
    colleague = {"email": "colleague@orbital-widgets.co.uk", "phone": PHONE}
    someone_else = await submit(ingest, colleague)
    assert someone_else.status_code == 202  # the switchboard: another person

    form = {"field_map": {"your-email": "email"}, "defaults": {"source": "website"}}
    assert (await ingest.client.put("/v1/forms/contact", json=form)).status_code == 200
    by_form = await ingest.client.post("/v1/forms/contact", data={"your-email": EMAIL})
    assert by_form.status_code == 422
    assert by_form.json()["detail"][0]["loc"] == ["body", "your-email"]

    batch = await ingest.client.post("/v1/leads:batch", json={"leads": [PERSON]})
    item = batch.json()["results"][0]
    assert (item["status"], item["errors"][0]["field"]) == ("rejected", "email")

    imported = await ingest.client.post(
        "/v1/imports", files={"file": ("list.csv", CSV.encode(), "text/csv")}
    )
    import_id = uuid.UUID(imported.json()["import_id"])
    with ingest.database.transaction() as session:
        process_chunk(session, OUTBOX, import_id=import_id, settings=settings(ingest.database))
    report = (await ingest.client.get(f"/v1/imports/{import_id}")).json()
    assert [(i["row"], i["field"]) for i in report["issues"]] == [(2, "email")]
    assert "erased on request" in report["issues"][0]["reason"]

    stale = {**PERSON, "consent": {"data_processing": True, "recorded_at": "2020-01-01T00:00:00Z"}}
    old_consent = await submit(ingest, stale)
    assert old_consent.status_code == 422
    assert "before the erasure" in old_consent.json()["detail"][0]["msg"]

    back = await submit(ingest, {**PERSON, "consent": {"data_processing": True}})
    assert back.status_code == 202, back.text
    assert back.json()["status"] == "created"
    assert back.json()["lead_id"] != lead_id  # a fresh lead: nothing of the old one comes back
    with ingest.database.read() as session:
        assert session.execute(select(Suppression)).first() is None
    assert (await submit(ingest, {"email": EMAIL})).json()["status"] == "merged"


def test_an_erasure_waits_for_the_captures_in_flight(database: Database) -> None:
    """On PostgreSQL several replicas capture while a person is erased: the erasure waits for
    the transactions under way (it would miss what they write), and those after it see it."""
    if database.is_sqlite:
        pytest.skip("SQLite runs one writer at a time: nothing runs beside an erasure")
    config = settings(database)
    api: dict[str, Any] = {"door": "api", "source": "api", "touchpoint_type": "api"}
    person = Submission(fields={"email": EMAIL, "first_name": "Zebulon"}, **api)
    someone = Submission(fields={"email": "ada@analytical-engines.co.uk"}, **api)
    with database.transaction() as session:
        capture(session, OUTBOX, submission=person, settings=config)

    def erase() -> Erasure:
        with database.transaction() as session:
            return erase_person(session, OUTBOX, email=ADDRESS, regulation="gdpr", settings=config)

    with ThreadPoolExecutor(1) as pool, database.transaction() as session:
        capture(session, OUTBOX, submission=someone, settings=config)  # in flight
        erasing = pool.submit(erase)
        wait_until_waiting_for_an_advisory_lock(database, erasing)
        # The person comes back in the same transaction (a merge): the erasure must see it.
        capture(session, OUTBOX, submission=person, settings=config)
    assert len(erasing.result(timeout=30).lead_ids) == 1
    with database.transaction() as session:  # what the relay and the outbox purger do
        session.execute(update(TABLES.outbox).values(published_at=datetime.now(UTC)))
        ERASURES.purge_outbox(session, lead_ids=ERASURES.unpurged(session))
    assert find_in_database(database, NEEDLES) == []
    with database.transaction() as session, pytest.raises(Suppressed):  # and after it: refused
        capture(session, OUTBOX, submission=person, settings=config)
