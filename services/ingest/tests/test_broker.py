"""The events on the real broker: schema-valid, keyed by lead id, published once even when
the process died between the commit and the send; an import worked by the runtime."""

from __future__ import annotations

import json
import multiprocessing

import httpx
import jsonschema
import pytest

from services.ingest.auth import create_key
from services.ingest.imports import ImportFiles
from services.ingest.service import DEFINITION
from services.ingest.tests.dirty import dirty_csv
from shared import schema_files
from shared.cloudevents import decode, header
from shared.db import Database
from shared.http import create_app
from shared.service import ServiceRuntime
from shared.testing.kafka_tools import eventually, read_topic
from shared.testing.pytest_plugin import running_runtime, serve_app, service_settings
from shared.topics import TopicNames

pytestmark = pytest.mark.kafka


async def test_leads_and_feedback_reach_the_broker_valid_and_keyed_by_lead(
    database: Database, topic_names: TopicNames, kafka_bootstrap_servers: str
) -> None:
    settings = service_settings(
        DEFINITION, database=database, topic_names=topic_names,
        bootstrap_servers=kafka_bootstrap_servers,
    )  # fmt: skip
    runtime = ServiceRuntime(DEFINITION, settings)
    with database.transaction() as session:
        key = create_key(session, name="tests")
    async with (
        serve_app(create_app(runtime)) as url,
        httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}) as client,
    ):
        first = await client.post("/v1/leads", json={"email": "ada@acme.com", "country": "UK"})
        await client.post("/v1/leads", json={"email": "ADA@acme.com", "touchpoint_type": "webinar"})
        lead_id = first.json()["lead_id"]
        await client.post("/v1/feedback", json={"lead_id": lead_id, "status": "accepted"})
        csv = "E-mail Address;Company Name\nbob@globex.com;Globex\nnot-an-email;X\n"
        imported = await client.post(
            "/v1/imports", content=csv.encode(), headers={"content-type": "text/csv"}
        )

        async def import_done() -> bool:
            report = await client.get(f"/v1/imports/{imported.json()['import_id']}")
            status: str = report.json()["status"]
            return status == "done"

        await eventually(import_done, message="the worker did not finish the import")
        await eventually(lambda: runtime.relay.pending_count() == 0, message="outbox not drained")

    ingested = await read_topic(
        kafka_bootstrap_servers, topic_names.physical("leads.ingested"), count=3
    )
    feedback = await read_topic(
        kafka_bootstrap_servers, topic_names.physical("leads.feedback"), count=1
    )
    assert len(ingested) == 3
    assert len(feedback) == 1
    for record in [*ingested, *feedback]:
        event = decode(record.headers, record.value)
        assert record.key == str(event.data.lead_id).encode()
        assert header(record.headers, "ce_source") == "/leadflow/ingest"
        jsonschema.validate(
            json.loads(record.value), schema_files.load(event.data.cloudevents_type())
        )
    changes = sorted(decode(r.headers, r.value).data.change for r in ingested)  # type: ignore[attr-defined]
    assert changes == ["created", "created", "merged"]


async def test_a_long_import_is_normalized_in_a_second_process_stopped_when_it_is_done(
    database: Database, topic_names: TopicNames, kafka_bootstrap_servers: str
) -> None:
    settings = service_settings(
        DEFINITION, database=database, topic_names=topic_names,
        bootstrap_servers=kafka_bootstrap_servers, import_chunk_rows=50,
    )  # fmt: skip
    runtime = ServiceRuntime(DEFINITION, settings)
    with database.transaction() as session:
        key = create_key(session, name="tests")
    data, expected = dirty_csv(1_000)
    async with (
        serve_app(create_app(runtime)) as url,
        httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}) as client,
    ):
        imported = await client.post(
            "/v1/imports", content=data, headers={"content-type": "text/csv"}
        )
        assert imported.status_code == 202, imported.text

        async def report() -> dict[str, object] | None:
            answer = await client.get(f"/v1/imports/{imported.json()['import_id']}")
            done: dict[str, object] = answer.json()
            return done if done["status"] == "done" else None

        done = await eventually(report, timeout=120, message="the worker did not finish")
        files: ImportFiles = runtime.state["import_files"]
        assert files.normalizer is not None
        assert files.normalizer.started == 1  # for this import: more than one chunk
        # No import left: the process is stopped.
        await eventually(
            lambda: (
                files.normalizer is not None
                and files.normalizer.pid is None
                and not multiprocessing.active_children()
            ),
            message="the normalizer's process outlived the import",
        )
    rejected = expected["bad_email"] + expected["no_contact"]
    assert (done["processed_rows"], done["rejected"], done["merged"]) == (
        expected["rows"],
        rejected,
        expected["duplicates"],
    )
    assert done["created"] == expected["rows"] - rejected - expected["duplicates"]


async def test_a_crash_between_commit_and_publish_still_publishes_once(
    database: Database, topic_names: TopicNames, kafka_bootstrap_servers: str
) -> None:
    settings = service_settings(
        DEFINITION, database=database, topic_names=topic_names,
        bootstrap_servers=kafka_bootstrap_servers,
    )  # fmt: skip
    with database.transaction() as session:
        key = create_key(session, name="tests")
    # The process accepts a lead (committed, 202) but has no broker: then "dies".
    dying = ServiceRuntime(DEFINITION, settings)
    async with (
        serve_app(create_app(dying, manage_runtime=False)) as url,
        httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}) as client,
    ):
        accepted = await client.post("/v1/leads", json={"email": "grace@navy.mil"})
    assert accepted.status_code == 202
    assert dying.relay.pending_count() == 1

    # The next process's relay publishes what the first one committed.
    survivor = ServiceRuntime(DEFINITION, settings)
    async with running_runtime(survivor):
        await eventually(lambda: survivor.relay.pending_count() == 0)
    records = await read_topic(
        kafka_bootstrap_servers, topic_names.physical("leads.ingested"), count=2, timeout=3.0
    )
    assert len(records) == 1
    assert decode(records[0].headers, records[0].value).data.lead_id.hex == (
        accepted.json()["lead_id"].replace("-", "")
    )
