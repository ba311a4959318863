"""POST /v1/leads and /v1/leads:batch over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from services.ingest import repository
from services.ingest.auth import VerifiedKeys
from services.ingest.models import TABLES, Account, ApiKey, IdempotentRequest, Lead, Touchpoint
from services.ingest.tests.conftest import Ingest, count, outbox_events
from shared.db import Database
from shared.db.group_commit import GroupCommit
from shared.testing.kafka_tools import eventually
from shared.tests.test_group_commit import waiting

ADA = {
    "email": "Ada.Lovelace@Analytical-Engines.co.uk",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "phone": "020 7946 0958",
    "title": "VP Engineering",
    "company": "Analytical Engines Ltd",
    "industry": "Computer Software",
    "country": "UK",
    "campaign": "q4-webinar",
    "source": "web_form",
    "touchpoint_type": "demo_request",
    "utm": {"source": "linkedin", "medium": "paid_social", "campaign": "q4-webinar"},
    "consent": {"email_marketing": True, "data_processing": "yes"},
    "how_did_you_hear": "a colleague",
}


async def test_a_new_lead_is_created_normalized_and_its_event_is_in_the_outbox(
    ingest: Ingest,
) -> None:
    response = await ingest.client.post("/v1/leads", json=ADA)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "created"
    assert answer["merged_on"] is None
    assert answer["warnings"] == []

    [event] = outbox_events(ingest.database)
    assert event["lead_id"] == answer["lead_id"]
    assert event["change"] == "created"
    assert event["touchpoint_count"] == 1
    lead = event["lead"]
    assert lead["email"] == "ada.lovelace@analytical-engines.co.uk"
    assert lead["phone"] == "+442079460958"
    assert (lead["country"], lead["seniority"], lead["department"]) == ("GB", "vp", "engineering")
    assert lead["company"]["domain"] == "analytical-engines.co.uk"
    assert lead["company"]["vertical"] == "software"
    assert lead["company"]["account_id"] is not None
    assert lead["consent"]["email_marketing"] is True
    assert lead["consent"]["data_processing"] is True
    assert lead["attributes"] == {"how_did_you_hear": "a colleague"}
    touchpoint = event["touchpoint"]
    assert touchpoint["touchpoint_id"] == answer["touchpoint_id"]
    assert (touchpoint["type"], touchpoint["door"], touchpoint["source"]) == (
        "demo_request",
        "api",
        "web_form",
    )
    assert touchpoint["utm"]["source"] == "linkedin"


async def test_a_repeat_is_a_new_touchpoint_on_the_same_lead(ingest: Ingest) -> None:
    first = (await ingest.client.post("/v1/leads", json=ADA)).json()
    again = {
        "email": "ADA.LOVELACE@analytical-engines.co.uk",
        "title": "CTO",
        "campaign": "spring-whitepaper",
        "touchpoint_type": "content_download",
    }
    second = await ingest.client.post("/v1/leads", json=again)
    assert second.status_code == 202
    assert second.json()["lead_id"] == first["lead_id"]
    assert (second.json()["status"], second.json()["merged_on"]) == ("merged", "email")
    assert count(ingest.database, Lead) == 1
    assert count(ingest.database, Touchpoint) == 2

    events = outbox_events(ingest.database)
    assert [e["change"] for e in events] == ["created", "merged"]
    merged = events[1]
    assert merged["merged_on"] == "email"
    assert merged["touchpoint_count"] == 2
    assert merged["touchpoint"]["campaign"] == "spring-whitepaper"
    assert merged["lead"]["campaign"] == "q4-webinar"  # the first submission's campaign
    assert merged["lead"]["seniority"] == "c_level"  # the latest title
    assert merged["lead"]["phone"] == "+442079460958"  # kept from the first


async def test_without_email_a_repeat_is_found_by_phone(ingest: Ingest) -> None:
    first = (await ingest.client.post("/v1/leads", json={"phone": "+1 415 555 2671"})).json()
    second = await ingest.client.post(
        "/v1/leads", json={"phone": "(415) 555-2671", "country": "USA", "first_name": "Bo"}
    )
    assert (second.json()["lead_id"], second.json()["merged_on"]) == (first["lead_id"], "phone")
    # Two people with their own emails behind one switchboard stay two leads.
    a = await ingest.client.post("/v1/leads", json={"email": "a@acme.com", "phone": "+14155550100"})
    b = await ingest.client.post("/v1/leads", json={"email": "b@acme.com", "phone": "+14155550100"})
    assert a.json()["lead_id"] != b.json()["lead_id"]


async def test_leads_are_linked_to_accounts_by_domain_and_by_fuzzy_name(ingest: Ingest) -> None:
    one = await ingest.client.post("/v1/leads", json={"email": "a@acme.com", "company": "ACME"})
    two = await ingest.client.post(
        "/v1/leads", json={"email": "b@gmail.com", "website": "https://www.acme.com/contact"}
    )
    three = await ingest.client.post(
        "/v1/leads", json={"email": "c@gmail.com", "company": "Globex Corp."}
    )
    four = await ingest.client.post(
        "/v1/leads", json={"email": "d@yahoo.com", "company": "GLOBEX Corporation"}
    )
    events = {e["lead_id"]: e for e in outbox_events(ingest.database)}
    account = {
        name: events[r.json()["lead_id"]]["lead"]["company"]["account_id"]
        for name, r in (("one", one), ("two", two), ("three", three), ("four", four))
    }
    assert account["one"] == account["two"]
    assert account["three"] == account["four"]
    assert account["one"] != account["three"]
    assert events[three.json()["lead_id"]]["lead"]["company"]["domain"] is None
    assert count(ingest.database, Account) == 2


async def test_bad_input_gets_422_naming_the_field_and_nothing_is_stored(ingest: Ingest) -> None:
    response = await ingest.client.post("/v1/leads", json={"email": "ada@", "first_name": "Ada"})
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", "email"]
    assert "@" in detail["msg"] or "domain" in detail["msg"]

    response = await ingest.client.post("/v1/leads", json={"first_name": "Ada"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "email"]

    response = await ingest.client.post("/v1/leads", json={"email": ["a@b.com"]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", "email"]
    assert count(ingest.database, Lead) == 0
    assert outbox_events(ingest.database) == []


async def test_values_that_cannot_be_normalized_are_kept_with_a_warning(ingest: Ingest) -> None:
    response = await ingest.client.post(
        "/v1/leads", json={"email": "x@acme.com", "phone": "ask reception", "country": "Atlantis"}
    )
    assert response.status_code == 202
    assert {w["field"] for w in response.json()["warnings"]} == {"phone", "country"}
    [event] = outbox_events(ingest.database)
    assert event["lead"]["attributes"] == {"phone_raw": "ask reception", "country_raw": "Atlantis"}


async def test_an_idempotency_key_replays_the_first_answer_and_creates_nothing(
    ingest: Ingest,
) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await ingest.client.post("/v1/leads", json=ADA, headers=key)
    again = await ingest.client.post("/v1/leads", json=ADA, headers=key)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(ingest.database, Touchpoint) == 1
    assert len(outbox_events(ingest.database)) == 1

    other = await ingest.client.post("/v1/leads", json={**ADA, "title": "CEO"}, headers=key)
    assert other.status_code == 422
    assert other.json()["detail"][0]["loc"] == ["header", "idempotency-key"]


async def test_a_refused_request_does_not_burn_its_idempotency_key(ingest: Ingest) -> None:
    key = {"Idempotency-Key": "retry-me"}
    refused = await ingest.client.post("/v1/leads", json={"email": "nope"}, headers=key)
    assert refused.status_code == 422
    assert count(ingest.database, IdempotentRequest) == 0
    fixed = await ingest.client.post("/v1/leads", json={"email": "ok@acme.com"}, headers=key)
    assert fixed.status_code == 202


@contextmanager
def writes_held(database: Database) -> Iterator[None]:
    """Ingest's transactions wait until the block ends: on SQLite a write transaction is
    open, on PostgreSQL the lock that batch captures take is held."""
    with database.transaction() as session:
        if database.is_postgresql:
            repository.take_batch_lock(session=session)
        else:
            session.execute(TABLES.outbox.delete().where(TABLES.outbox.c.id == -1))
        yield


async def test_single_leads_that_come_together_are_written_together_each_as_if_alone(
    ingest: Ingest,
) -> None:
    """While one request's transaction is written, the next requests wait and then share
    one transaction; each is answered as if it had been alone (a merge with an earlier one
    of the same group, a 422, an idempotency key used twice)."""
    key = {"Idempotency-Key": "form-retry-1"}
    grace = {"email": "grace@navy.example.org", "first_name": "Grace", "company": "US Navy"}
    then = [
        ({**ADA, "touchpoint_type": "webinar"}, {}),
        ({"email": "not-an-email"}, {}),
        (grace, key),
        (grace, key),
        ({"email": "linus@kernel.example.org"}, {}),
    ]
    with writes_held(ingest.database):
        tasks = [asyncio.create_task(ingest.client.post("/v1/leads", json=ADA))]

        def writing() -> GroupCommit[object, object] | None:
            group = ingest.runtime.state.get("lead_group")
            return group if group is not None and group.groups == 1 else None

        group = await eventually(writing, interval=0.01, message="the first lead not written")
        for number, (body, headers) in enumerate(then, start=1):
            post = ingest.client.post("/v1/leads", json=body, headers=headers)
            tasks.append(asyncio.create_task(post))
            await waiting(group, number)
    answers = await asyncio.gather(*tasks)
    assert (group.groups, group.largest_group) == (2, 5)
    assert [answer.status_code for answer in answers] == [202, 202, 422, 202, 409, 202]
    assert answers[0].json()["status"] == "created"
    assert answers[1].json()["status"] == "merged"
    assert answers[1].json()["merged_on"] == "email"
    assert answers[1].json()["lead_id"] == answers[0].json()["lead_id"]
    assert answers[2].json()["detail"][0]["loc"] == ["body", "email"]
    assert answers[4].json()["detail"][0]["loc"] == ["header", "idempotency-key"]
    assert count(ingest.database, Lead) == 3
    assert count(ingest.database, Touchpoint) == 4
    assert [event["change"] for event in outbox_events(ingest.database)] == [
        "created", "merged", "created", "created"
    ]  # fmt: skip
    replayed = await ingest.client.post("/v1/leads", json=grace, headers=key)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == answers[3].json()


async def test_the_doors_want_a_valid_api_key_before_reading_anything(ingest: Ingest) -> None:
    url = str(ingest.client.base_url)
    async with httpx.AsyncClient(base_url=url) as anonymous:
        missing = await anonymous.post("/v1/leads", content=b"{not json")
        wrong = await anonymous.post(
            "/v1/leads", json=ADA, headers={"Authorization": "Bearer lf_0000_nope"}
        )
        batch = await anonymous.post("/v1/leads:batch", json={"leads": [ADA]})
    assert missing.status_code == wrong.status_code == batch.status_code == 401
    assert missing.json()["detail"][0]["loc"] == ["header", "x-api-key"]
    assert count(ingest.database, Lead) == 0


async def test_a_revoked_key_stops_working_once_its_check_is_older_than_the_cache_period(
    ingest: Ingest,
) -> None:
    now = [1_000.0]
    ingest.runtime.state["verified_keys"] = VerifiedKeys(10.0, clock=lambda: now[0])
    assert (await ingest.client.post("/v1/leads", json=ADA)).status_code == 202
    with ingest.database.transaction() as session:
        for key in session.execute(select(ApiKey)).scalars():
            key.revoked_at = datetime.now(UTC)
    now[0] += 9.9  # checked 9.9 s ago: trusted without asking the database
    assert (await ingest.client.post("/v1/leads", json=ADA)).status_code == 202
    now[0] += 0.1
    refused = await ingest.client.post("/v1/leads", json=ADA)
    assert refused.status_code == 401
    assert refused.json()["detail"][0]["msg"] == "the API key is not valid"


async def test_without_a_cache_period_every_request_checks_its_key(ingest: Ingest) -> None:
    ingest.runtime.state["verified_keys"] = VerifiedKeys(0.0)
    assert (await ingest.client.post("/v1/leads", json=ADA)).status_code == 202
    with ingest.database.transaction() as session:
        for key in session.execute(select(ApiKey)).scalars():
            key.revoked_at = datetime.now(UTC)
    assert (await ingest.client.post("/v1/leads", json=ADA)).status_code == 401


def test_the_cache_of_verified_keys_is_bounded() -> None:
    verified = VerifiedKeys(60.0)
    for number in range(VerifiedKeys.MAX_ENTRIES + 1):
        verified.remember(f"lf_{number}_secret", str(number))
    assert verified.get(f"lf_{VerifiedKeys.MAX_ENTRIES}_secret") == str(VerifiedKeys.MAX_ENTRIES)
    assert verified.get("lf_0_secret") is None


async def test_a_batch_answers_per_item(ingest: Ingest) -> None:
    leads = [
        ADA,
        {"email": "not-an-email"},
        {"email": "ada.lovelace@analytical-engines.co.uk", "touchpoint_type": "webinar"},
        {"phone": "+49 30 1234567", "country": "Deutschland"},
        {"email": 42},
    ]
    response = await ingest.client.post("/v1/leads:batch", json={"leads": leads})
    assert response.status_code == 202, response.text
    answer = response.json()
    assert (answer["created"], answer["merged"], answer["rejected"]) == (2, 1, 2)
    statuses = [(r["index"], r["status"]) for r in answer["results"]]
    assert statuses == [
        (0, "created"),
        (1, "rejected"),
        (2, "merged"),
        (3, "created"),
        (4, "rejected"),
    ]
    assert answer["results"][1]["errors"][0]["field"] == "email"
    assert answer["results"][4]["errors"][0]["field"] == "email"
    assert answer["results"][2]["lead_id"] == answer["results"][0]["lead_id"]
    assert len(outbox_events(ingest.database)) == 3


async def test_a_batch_over_the_limit_is_refused_whole(ingest: Ingest) -> None:
    leads = [{"email": f"p{i}@acme.com"} for i in range(1_001)]
    response = await ingest.client.post("/v1/leads:batch", json={"leads": leads})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "leads"]
    assert count(ingest.database, Lead) == 0


async def test_a_full_batch_of_a_thousand_is_accepted(ingest: Ingest) -> None:
    leads = [
        {"email": f"person{i}@company{i % 50}.com", "company": f"Company {i % 50}"}
        for i in range(1_000)
    ]
    response = await ingest.client.post("/v1/leads:batch", json={"leads": leads})
    assert response.status_code == 202
    assert response.json()["created"] == 1_000
    assert count(ingest.database, Account) == 50


async def test_answers_older_than_the_retention_are_forgotten(ingest: Ingest) -> None:
    from datetime import UTC, datetime, timedelta

    from services.ingest import repository

    await ingest.client.post("/v1/leads", json=ADA, headers={"Idempotency-Key": "old"})
    with ingest.database.transaction() as session:
        kept = repository.purge_idempotent_requests(
            session=session, before=datetime.now(UTC) - timedelta(hours=1)
        )
        purged = repository.purge_idempotent_requests(
            session=session, before=datetime.now(UTC) + timedelta(seconds=1)
        )
    assert (kept, purged) == (0, 1)
    assert count(ingest.database, IdempotentRequest) == 0


def event_times(database: Database) -> list[datetime]:
    """The CloudEvents ``time`` of each leads.ingested event in the outbox, oldest first."""
    outbox = TABLES.outbox
    with database.read() as session:
        rows = session.execute(
            select(outbox.c.headers).where(outbox.c.topic == "leads.ingested").order_by(outbox.c.id)
        ).all()
    return [
        datetime.fromisoformat(dict(json.loads(headers))["ce_time"].replace("Z", "+00:00"))
        for (headers,) in rows
    ]


async def test_a_submission_is_dated_by_when_it_happened_never_later_than_received(
    ingest: Ingest,
) -> None:
    before = datetime.now(UTC)
    # A backfill: last month's trade show, imported today.
    past = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    first = await ingest.client.post("/v1/leads", json={**ADA, "occurred_at": past.isoformat()})
    assert first.status_code == 202, first.text
    # A client clock ahead of ours: the event cannot have happened after we received it.
    ahead = datetime.now(UTC) + timedelta(days=2)
    again = await ingest.client.post("/v1/leads", json={**ADA, "occurred_at": ahead.isoformat()})
    assert again.status_code == 202, again.text

    created, merged = outbox_events(ingest.database)
    assert created["lead"]["created_at"].startswith("2026-01-05T09:30:00")
    assert created["touchpoint"]["occurred_at"].startswith("2026-01-05T09:30:00")
    # The merge keeps the lead's creation time; its touchpoint keeps the time it was given.
    assert merged["lead"]["created_at"] == created["lead"]["created_at"]
    assert datetime.fromisoformat(merged["touchpoint"]["occurred_at"]) == ahead
    first_time, second_time = event_times(ingest.database)
    assert first_time == past
    assert before <= second_time <= datetime.now(UTC)
