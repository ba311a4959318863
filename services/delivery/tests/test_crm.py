"""CRM write-back of assignments against a local HubSpot, Salesforce and Pipedrive that check
the documented request formats and answer with the documented responses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from pydantic import SecretStr

from services.delivery import repository
from services.delivery.crm import HubSpotAdapter, PipedriveAdapter, SalesforceAdapter
from services.delivery.dispatcher import write_back_assignments
from services.delivery.models import CrmWriteback
from services.delivery.tests.conftest import FakeClock, consume, running
from services.delivery.tests.fake_crm import (
    HUBSPOT_TOKEN,
    PIPEDRIVE_TOKEN,
    SALESFORCE_TOKEN,
    SALESFORCE_VERSION,
    Change,
    FakeCrm,
)
from shared.contracts import RepRef
from shared.http import create_app
from shared.service import ServiceRuntime
from shared.testing import factories
from shared.testing.kafka_tools import eventually
from shared.testing.pytest_plugin import serve_app

SF_OWNER = "005R0000000IUGgIAO"


@pytest.fixture
async def crm(runtime: ServiceRuntime) -> AsyncIterator[FakeCrm]:
    fake = FakeCrm(contacts={"651"}, leads={"00Q5e00000AbCdEEAZ"}, persons={42})
    async with serve_app(fake.app()) as url:
        fake.url = url
        runtime.settings = runtime.settings.model_copy(
            update={
                "hubspot_access_token": SecretStr(HUBSPOT_TOKEN),
                "hubspot_base_url": url,
                "salesforce_access_token": SecretStr(SALESFORCE_TOKEN),
                "salesforce_instance_url": url,
                "salesforce_api_version": SALESFORCE_VERSION,
                "pipedrive_api_token": SecretStr(PIPEDRIVE_TOKEN),
                "pipedrive_base_url": url,
            }
        )
        yield fake


def assign(runtime: ServiceRuntime, crm_ids: dict[str, str], owner: str | None) -> uuid.UUID:
    lead_id = uuid.uuid4()
    consume(
        runtime,
        factories.lead_ingested(lead_id=lead_id, lead=factories.lead_snapshot(crm_ids=crm_ids)),
    )
    consume(
        runtime,
        factories.lead_routed(
            lead_id=lead_id, rep=RepRef(rep_id="rep-7", name="Grace", crm_user_id=owner)
        ),
    )
    return lead_id


def writebacks(runtime: ServiceRuntime, lead_id: uuid.UUID | None = None) -> list[CrmWriteback]:
    with runtime.db.read() as session:
        return repository.list_writebacks(session, lead_id=lead_id)


async def test_each_provider_gets_its_documented_owner_change(
    runtime: ServiceRuntime, crm: FakeCrm, clock: FakeClock
) -> None:
    hubspot = assign(runtime, {"hubspot": "651"}, "52550153")
    assign(runtime, {"salesforce": "00Q5e00000AbCdEEAZ"}, SF_OWNER)
    assign(runtime, {"pipedrive": "42"}, "1234")
    crm.script["hubspot"] = ["rate_limited"]
    async with running(runtime, write_back_assignments):
        await eventually(
            lambda: (
                sorted(w.status for w in writebacks(runtime)) == ["done", "done", "pending"]
                and writebacks(runtime)[0].attempts == 1
            ),
            timeout=10,
        )
        [waiting] = [w for w in writebacks(runtime) if w.status == "pending"]
        assert waiting.provider == "hubspot"
        assert waiting.last_error == "RATE_LIMIT: You have reached your secondly limit."
        clock.advance(timedelta(seconds=6))
        await eventually(lambda: len(crm.changes) == 3, timeout=10)
        await eventually(lambda: {w.status for w in writebacks(runtime)} == {"done"})
    assert crm.violations == []
    assert sorted(crm.changes, key=lambda c: c.provider) == [
        Change("hubspot", "651", "52550153"),
        Change("pipedrive", "42", 1234),
        Change("salesforce", "00Q5e00000AbCdEEAZ", SF_OWNER),
    ]
    async with (
        serve_app(create_app(runtime, manage_runtime=False)) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        [logged] = (await client.get("/v1/crm-writebacks", params={"lead_id": str(hubspot)})).json()
    assert (logged["provider"], logged["status"], logged["attempts"]) == ("hubspot", "done", 2)
    assert [(a["status_code"], a["outcome"]) for a in logged["log"]] == [
        (429, "retry"),
        (200, "done"),
    ]


async def test_refusals_are_logged_and_retried_and_unusable_owners_fail_at_once(
    runtime: ServiceRuntime, crm: FakeCrm
) -> None:
    unknown = assign(runtime, {"hubspot": "999"}, "52550153")
    bad_owner = assign(runtime, {"salesforce": "00Q5e00000AbCdEEAZ"}, "not-a-user")
    not_a_number = assign(runtime, {"pipedrive": "42"}, SF_OWNER)
    async with running(runtime, write_back_assignments):

        def all_tried() -> bool:
            return all(w.attempts >= 1 for w in writebacks(runtime))

        await eventually(all_tried, timeout=10)
    assert crm.violations == []
    assert crm.changes == []
    [missing] = writebacks(runtime, unknown)
    assert (missing.status, missing.last_status_code) == ("pending", 404)
    assert missing.last_error == "OBJECT_NOT_FOUND: resource not found"
    [refused] = writebacks(runtime, bad_owner)
    assert (refused.status, refused.last_status_code) == ("pending", 400)
    assert refused.last_error == "MALFORMED_ID: Owner ID: id value of incorrect type: not-a-user"
    [impossible] = writebacks(runtime, not_a_number)
    assert (impossible.status, impossible.attempts) == ("failed", 1)
    assert "is a user id (an integer)" in (impossible.last_error or "")


async def test_a_reassignment_is_written_after_the_earlier_assignment(
    runtime: ServiceRuntime, crm: FakeCrm, clock: FakeClock
) -> None:
    lead_id = assign(runtime, {"pipedrive": "42"}, "1001")
    consume(
        runtime,
        factories.lead_routed(
            lead_id=lead_id, rep=RepRef(rep_id="rep-8", crm_user_id="1002"), attempt=2
        ),
    )
    crm.script["pipedrive"] = ["unavailable"]
    async with running(runtime, write_back_assignments):
        await eventually(lambda: writebacks(runtime)[0].attempts == 1, timeout=10)
        first, second = writebacks(runtime)
        assert (first.last_status_code, second.attempts) == (503, 0)  # the later one waits
        assert first.next_attempt_at == clock.now() + timedelta(seconds=30)  # Retry-After
        clock.advance(timedelta(seconds=30))
        await eventually(lambda: len(crm.changes) == 2, timeout=10)
    assert [c.owner_id for c in crm.changes] == [1001, 1002]


def test_only_assignments_to_a_rep_with_a_crm_user_are_written_back(
    runtime: ServiceRuntime,
) -> None:
    assign(runtime, {"hubspot": "651"}, None)  # rep without a CRM user
    assign(runtime, {}, "52550153")  # lead without a CRM record
    assign(runtime, {"marketo": "7"}, "52550153")  # no adapter for that CRM
    lead_id = uuid.uuid4()
    consume(
        runtime,
        factories.lead_ingested(
            lead_id=lead_id, lead=factories.lead_snapshot(crm_ids={"hubspot": "651"})
        ),
    )
    consume(runtime, factories.lead_routed(lead_id=lead_id, outcome="nurture", program_id="n1"))
    assert writebacks(runtime) == []
    queued = assign(runtime, {"hubspot": "651", "salesforce": "00Q5e00000AbCdEEAZ"}, "u-1")
    assert sorted(w.provider for w in writebacks(runtime, queued)) == ["hubspot", "salesforce"]


def test_adapters_build_the_documented_requests() -> None:
    hubspot = HubSpotAdapter(access_token="t", base_url="https://crm.test/").owner_request(
        "651", "52550153"
    )
    assert (hubspot.method, hubspot.url) == (
        "PATCH",
        "https://crm.test/crm/v3/objects/contacts/651",
    )
    assert hubspot.json == {"properties": {"hubspot_owner_id": "52550153"}}
    assert hubspot.headers["Authorization"] == "Bearer t"
    salesforce = SalesforceAdapter(
        access_token="t", instance_url="https://acme.test", api_version="v62.0"
    ).owner_request("00Q/1", SF_OWNER)
    assert salesforce.url == "https://acme.test/services/data/v62.0/sobjects/Lead/00Q%2F1"
    assert salesforce.json == {"OwnerId": SF_OWNER}
    pipedrive = PipedriveAdapter(api_token="t", base_url="https://acme.test").owner_request(
        "42", "1234"
    )
    assert pipedrive.url == "https://acme.test/api/v2/persons/42"
    assert pipedrive.json == {"owner_id": 1234}
    assert pipedrive.headers["x-api-token"] == "t"
    # Pipedrive answers 200 with success false in some cases: not done.
    assert PipedriveAdapter(api_token="t").error_of(200, b'{"success": false, "error": "x"}') == "x"
    assert PipedriveAdapter(api_token="t").error_of(200, b'{"success": true, "data": {}}') is None
    assert SalesforceAdapter(access_token="t", instance_url="x").error_of(502, b"<html>") == (
        "HTTP 502"
    )
