"""The scoring API over real HTTP on both databases: rulebook versions, validation,
activation and its re-scoring pages, lead scores."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.scoring import rulebook_store
from services.scoring.models import RescoreJob, ScoreHistory
from services.scoring.rulebooks import default_source
from services.scoring.tests.builders import document
from services.scoring.tests.support import Clock, handle, published, rows
from services.scoring.workers import rescore_page
from shared.db import Database
from shared.http import create_app
from shared.service import ServiceDefinition, ServiceRuntime
from shared.testing import factories
from shared.testing.pytest_plugin import serve_app, service_settings

T0 = datetime(2030, 3, 2, 9, 0, tzinfo=UTC)
YAML = {"content-type": "application/yaml"}

STRICT = """
name: strict
description: Only C-level people fit.
fit:
  rules:
    - id: c_level
      when: {field: seniority, equals: c_level}
      points: 60
engagement:
  rules:
    - {id: any_touch, points: 10}
grades:
  fit_bands: {high: 50, low: null}
  engagement_bands: {high: 20, low: null}
  matrix:
    high: {high: A, low: B}
    low: {high: C, low: D}
"""


@pytest.fixture
def runtime(service_definition: ServiceDefinition, database: Database) -> ServiceRuntime:
    settings = service_settings(service_definition, database=database, rescore_batch_size=2)
    runtime = ServiceRuntime(service_definition, settings)
    runtime.state["clock"] = Clock(T0)
    return runtime


@pytest.fixture
async def client(runtime: ServiceRuntime) -> AsyncIterator[httpx.AsyncClient]:
    # The HTTP side alone: no broker, no workers (tests drive the re-scoring pages).
    app = create_app(runtime, manage_runtime=False)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def test_versions_are_stored_and_the_default_is_version_one(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/v1/rulebooks")).json() == []
    created = await client.post("/v1/rulebooks", content=STRICT, headers=YAML)
    assert created.status_code == 201
    assert created.headers["location"] == "/v1/rulebooks/2"
    body = created.json()
    assert (body["version"], body["name"], body["active"]) == (2, "strict", False)
    assert body["media_type"] == "yaml"
    assert body["created_at"] == "2030-03-02T09:00:00Z"

    listed = (await client.get("/v1/rulebooks")).json()
    assert [(r["version"], r["name"], r["active"]) for r in listed] == [
        (1, "default", True),
        (2, "strict", False),
    ]
    detail = (await client.get("/v1/rulebooks/2")).json()
    assert detail["source"] == STRICT
    assert detail["document"]["fit"]["rules"][0]["when"] == {
        "field": "seniority",
        "equals": "c_level",
    }
    assert detail["rescores"] == []
    default = (await client.get("/v1/rulebooks/1")).json()
    assert default["source"] == default_source()


async def test_json_rulebooks_are_accepted(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/rulebooks", json=document())
    assert created.status_code == 201
    assert created.json()["media_type"] == "json"
    detail = (await client.get(f"/v1/rulebooks/{created.json()['version']}")).json()
    assert json.loads(detail["source"]) == document()


async def test_a_rulebook_that_does_not_validate_is_refused_with_its_paths(
    client: httpx.AsyncClient,
) -> None:
    bad = STRICT.replace("seniority, equals", "senority, equals").replace("low: B}", "low: E}")
    refused = await client.post("/v1/rulebooks", content=bad, headers=YAML)
    assert refused.status_code == 422
    details = refused.json()["detail"]
    assert [d["loc"] for d in details] == [["body", "grades", "matrix", "high", "low"]]
    assert "'A', 'B', 'C' or 'D'" in details[0]["msg"]
    # Once the schema holds, the rules are checked: the unknown field is named by its path.
    bad = STRICT.replace("seniority, equals", "senority, equals")
    details = (await client.post("/v1/rulebooks", content=bad, headers=YAML)).json()["detail"]
    assert details == [
        {
            "loc": ["body", "fit", "rules", 0, "when", "field"],
            "msg": details[0]["msg"],
            "type": "value_error",
        }
    ]
    assert details[0]["msg"].startswith("rule 'c_level': no lead field 'senority'")
    # Nothing was stored.
    assert [r["version"] for r in (await client.get("/v1/rulebooks")).json()] == [1]


NOT_RULEBOOKS: list[tuple[str | bytes, dict[str, str], int, list[str], str]] = [
    ("name: [", YAML, 422, ["body"], "not valid YAML"),
    ("", YAML, 422, ["body"], "a rulebook is a mapping"),
    ("{", {"content-type": "application/json"}, 422, ["body"], "not valid JSON"),
    (b"\xff", YAML, 422, ["body"], "not UTF-8"),
    ("<rulebook/>", {"content-type": "application/xml"}, 415, ["header", "content-type"], ""),
]


@pytest.mark.parametrize("case", NOT_RULEBOOKS)
async def test_a_body_that_is_no_rulebook(
    client: httpx.AsyncClient, case: tuple[str | bytes, dict[str, str], int, list[str], str]
) -> None:
    content, headers, status, loc, words = case
    refused = await client.post("/v1/rulebooks", content=content, headers=headers)
    assert refused.status_code == status
    [detail] = refused.json()["detail"]
    assert detail["loc"] == loc
    assert words in detail["msg"]


async def test_the_document_schema_is_served(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/v1/rulebooks/schema")).json()
    assert {"name", "fit", "engagement", "grades"} <= set(schema["required"])
    assert "in" in schema["$defs"]["ConditionDoc"]["properties"]


async def test_unknown_versions_and_leads(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/rulebooks/9")
    assert missing.status_code == 404
    assert missing.json()["detail"][0]["loc"] == ["path", "version"]
    activate = await client.post("/v1/rulebooks/9:activate")
    assert activate.status_code == 404
    assert (await client.post("/v1/rulebooks/x:activate")).status_code == 422
    # Beyond the column's range: a 422 naming the parameter, not the database's error.
    for path in ("/v1/rulebooks/15752951391", "/v1/rulebooks/-3:backtest"):
        method = "POST" if ":" in path else "GET"
        out_of_range = await client.request(method, path)
        assert out_of_range.status_code == 422, path
        assert out_of_range.json()["detail"][0]["loc"] == ["path", "version"]
    lead = await client.get(f"/v1/leads/{uuid.uuid4()}/score")
    assert lead.status_code == 404
    assert lead.json()["detail"][0]["loc"] == ["path", "lead_id"]
    bad_id = await client.get("/v1/leads/not-a-uuid/score")
    assert bad_id.status_code == 422
    assert bad_id.json()["detail"][0]["loc"] == ["path", "lead_id"]


async def test_a_lead_score_has_its_reasons_and_history(
    client: httpx.AsyncClient, database: Database
) -> None:
    lead_id = uuid.uuid4()
    first = factories.touchpoint(type="form_submission", occurred_at=T0)
    handle(database, factories.lead_ingested(lead_id=lead_id, touchpoint=first), time=T0)
    later = T0 + timedelta(hours=3)
    demo = factories.touchpoint(type="demo_request", occurred_at=later)
    payload = factories.lead_ingested(lead_id=lead_id, touchpoint=demo, touchpoint_count=2)
    handle(database, payload, time=later)

    score = (await client.get(f"/v1/leads/{lead_id}/score")).json()
    assert (score["grade"], score["category"], score["rulebook_version"]) == ("A", "default", 1)
    assert (score["fit_score"], score["trigger"]) == (70.0, "touchpoint")
    assert score["touchpoint_id"] == str(demo.touchpoint_id)
    assert score["scored_at"] == "2030-03-02T12:00:00Z"
    assert score["closed"] is False
    [category] = score["categories"]
    assert (category["fit_band"], category["engagement_band"]) == ("high", "high")
    assert category["in_market_until"] == "2030-03-16T12:00:00Z"
    rules = {reason["rule"]: reason for reason in score["reasons"]}
    assert rules["demo_request"]["points"] == 40
    assert rules["demo_request"]["why"].startswith("Asked for a demo: 1 touchpoint")
    assert rules["engagement.in_market"]["points"] == 0
    assert [(h["grade"], h["previous_grade"]) for h in score["history"]] == [
        ("A", "B"),
        ("B", None),
    ]
    assert score["next_check_at"] is not None


async def test_activation_rescores_open_leads_in_pages_and_publishes_changed_grades(
    client: httpx.AsyncClient, database: Database, runtime: ServiceRuntime
) -> None:
    people = {
        "ceo": factories.lead_snapshot(seniority="c_level", created_at=T0),
        "vp": factories.lead_snapshot(seniority="vp", created_at=T0),
        "vp2": factories.lead_snapshot(seniority="vp", created_at=T0),
        "won": factories.lead_snapshot(seniority="vp", created_at=T0),
        "manager": factories.lead_snapshot(seniority="manager", created_at=T0),
    }
    ids = {name: uuid.uuid4() for name in people}
    for name, snapshot in people.items():
        tp = factories.touchpoint(type="form_submission", occurred_at=T0)
        handle(
            database,
            factories.lead_ingested(lead_id=ids[name], lead=snapshot, touchpoint=tp),
            time=T0,
        )
    handle(database, factories.lead_feedback(lead_id=ids["won"], status="won"), time=T0)
    before = {event.lead_id: event.grade for event in published(database)}
    assert before == {
        lead_id: "C" if lead_id == ids["manager"] else "B" for lead_id in ids.values()
    }

    await client.post("/v1/rulebooks", content=STRICT, headers=YAML)
    runtime.state["clock"].advance(timedelta(hours=1))
    activated = await client.post("/v1/rulebooks/2:activate")
    assert activated.status_code == 202
    job = activated.json()["rescore"]
    assert (job["status"], job["leads_rescored"]) == ("pending", 0)
    assert [r["active"] for r in (await client.get("/v1/rulebooks")).json()] == [False, True]

    pages = 0
    while rescore_page(runtime):
        pages += 1
    assert pages == 2 + 1  # four open leads, two per page, then the page that finds none

    [done] = rows(database, RescoreJob)
    assert (done.status, done.leads_rescored, done.grades_changed) == ("done", 4, 3)
    activation = published(database)[len(ids) :]
    # The CEO stays a B; the won lead is closed; the others drop to D.
    assert sorted((e.lead_id, e.grade, e.previous_grade) for e in activation) == sorted(
        [(ids["vp"], "D", "B"), (ids["vp2"], "D", "B"), (ids["manager"], "D", "C")]
    )
    for event in activation:
        assert event.trigger == "rulebook_activated"
        assert event.rulebook_version == 2
        assert event.scored_at == T0 + timedelta(hours=1)
        assert event.touchpoint_id is None
        assert [reason.rule for reason in event.reasons] == ["any_touch"]

    ceo = (await client.get(f"/v1/leads/{ids['ceo']}/score")).json()
    assert (ceo["grade"], ceo["rulebook_version"], ceo["trigger"]) == ("B", 2, "rulebook_activated")
    assert len(ceo["history"]) == 1  # unchanged: stored, not published
    won = (await client.get(f"/v1/leads/{ids['won']}/score")).json()
    assert (won["rulebook_version"], won["closed"]) == (1, True)
    history = rows(database, ScoreHistory, lead_id=ids["vp"])
    assert sorted(h.trigger for h in history) == ["rulebook_activated", "touchpoint"]

    detail = (await client.get("/v1/rulebooks/2")).json()
    [run] = detail["rescores"]
    assert (run["status"], run["leads_rescored"], run["grades_changed"]) == ("done", 4, 3)
    again = await client.post("/v1/rulebooks/2:activate")
    assert again.status_code == 200
    assert again.json()["rescore"] is None


async def test_a_new_activation_supersedes_a_running_one(
    client: httpx.AsyncClient, database: Database, runtime: ServiceRuntime
) -> None:
    for _ in range(3):
        handle(database, factories.lead_ingested(), time=T0)
    await client.post("/v1/rulebooks", content=STRICT, headers=YAML)
    await client.post("/v1/rulebooks/2:activate")
    assert rescore_page(runtime)  # one page of two leads, then the rollback comes
    rolled_back = await client.post("/v1/rulebooks/1:activate")
    assert rolled_back.status_code == 202
    while rescore_page(runtime):
        pass
    jobs = {job.rulebook_version: job for job in rows(database, RescoreJob)}
    assert (jobs[2].status, jobs[2].leads_rescored) == ("superseded", 2)
    assert (jobs[1].status, jobs[1].leads_rescored) == ("done", 3)
    # Every lead is back on version 1 with the grade it had: nothing published for the third.
    changes = [e for e in published(database) if e.trigger == "rulebook_activated"]
    assert sorted((e.rulebook_version, e.grade) for e in changes) == [
        (1, "B"),
        (1, "B"),
        (2, "D"),
        (2, "D"),
    ]


async def test_one_lead_can_be_rescored_on_request(
    client: httpx.AsyncClient, database: Database, runtime: ServiceRuntime
) -> None:
    lead_id = uuid.uuid4()
    demo = factories.touchpoint(type="demo_request", occurred_at=T0)
    handle(database, factories.lead_ingested(lead_id=lead_id, touchpoint=demo), time=T0)
    runtime.state["clock"].advance(timedelta(days=60))
    answer = await client.post(f"/v1/leads/{lead_id}:rescore")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["grade"], body["trigger"], body["scored_at"]) == (
        "B",
        "rescore",
        "2030-05-01T09:00:00Z",
    )
    assert [h["trigger"] for h in body["history"]] == ["rescore", "touchpoint"]
    last = published(database)[-1]
    assert (last.grade, last.previous_grade, last.trigger) == ("B", "A", "rescore")
    missing = await client.post(f"/v1/leads/{uuid.uuid4()}:rescore")
    assert missing.status_code == 404
    assert missing.json()["detail"][0]["loc"] == ["path", "lead_id"]


async def test_a_rescore_on_request_waits_for_an_activation_in_progress(
    client: httpx.AsyncClient, database: Database
) -> None:
    """Scored under the rulebook lock, as every writer of scores: with the version being
    activated, once it is, not with the one it replaces."""
    if not database.is_postgresql:
        pytest.skip("SQLite has one writer at a time: nothing runs beside an activation")
    lead_id = uuid.uuid4()
    handle(database, factories.lead_ingested(lead_id=lead_id), time=T0)
    with database.transaction() as session:
        strict = rulebook_store.create(session=session, source=STRICT, media="yaml", now=T0)
        rulebook_store.activate(session=session, record=strict, now=T0)
        answer = asyncio.ensure_future(client.post(f"/v1/leads/{lead_id}:rescore"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(answer), timeout=1.0)
        session.commit()
    assert (await answer).json()["rulebook_version"] == 2
