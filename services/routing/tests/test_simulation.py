"""POST /v1/routing:simulate: a proposed configuration over the latest scored leads, with
the load per rep, and the live state left alone."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

from services.routing.domain.model import LeadFacts, Rep, RoutingConfig, Team
from services.routing.domain.simulation import simulate
from services.routing.models import AssignmentRow, ConfigChangeRow, RotationPassRow
from services.routing.service import build_definition
from services.routing.tests.support import START, FakeClock, route, scored
from shared.db import Database
from shared.http import create_app
from shared.service import ServiceRuntime
from shared.testing.pytest_plugin import serve_app, service_settings


def test_simulate_counts_loads_and_capacity_as_it_goes() -> None:
    config = RoutingConfig.of(
        teams=[Team("all")],
        reps=[Rep("ana", team_id="all", capacity=2), Rep("ben", team_id="all", weight=3)],
    )
    leads = [LeadFacts(uuid.uuid4(), "A") for _ in range(8)] + [LeadFacts(uuid.uuid4(), "D")]
    now = datetime(2026, 3, 10, tzinfo=UTC)
    result = simulate(leads, config=config, now=now)
    assert result.load == {"ana": 2, "ben": 6}
    assert result.outcomes == {"assigned": 8, "nurture": 1}
    unbounded = simulate(leads, config=config, now=now, count_loads=False)
    assert unbounded.load == {"ana": 2, "ben": 6}
    full = simulate(leads, config=config, now=now, initial_loads={"ana": 2})
    assert full.load == {"ben": 8}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def client(database: Database, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    definition = build_definition(clock=clock)
    runtime = ServiceRuntime(
        definition, service_settings(definition, database=database, simulate_max_leads=50)
    )
    async with (
        serve_app(create_app(runtime, manage_runtime=False)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        yield http


def counts(database: Database) -> tuple[int, int, int]:
    with database.read() as session:
        return tuple(
            session.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (AssignmentRow, RotationPassRow, ConfigChangeRow)
        )


async def test_a_proposal_shows_where_leads_would_go_and_changes_nothing(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    for path, body in [
        ("/v1/territories", {"territory_id": "de", "country": "DE"}),
        ("/v1/teams", {"team_id": "dach", "territory_ids": ["de"]}),
        ("/v1/reps", {"rep_id": "ana", "team_id": "dach"}),
        ("/v1/programs", {"program_id": "nurture-c", "grades": ["C", "D"]}),
    ]:
        assert (await client.post(path, json=body)).status_code == 201
    for grade in "AABBCA":
        route(
            database,
            scored(grade, lead={"domain": "x.de"}, scored_at=clock.advance(minutes=1)),
            clock(),
        )
    before = counts(database)

    proposal = {
        "last": 6,
        "config": {
            "reps": [
                {"rep_id": "ana", "team_id": "dach"},
                {"rep_id": "ben", "team_id": "dach", "weight": 3},
            ]
        },
    }
    response = await client.post("/v1/routing:simulate", json=proposal)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["outcomes"] == {"assigned": 5, "nurture": 1}
    assert answer["load"] == {"ana": 1, "ben": 4}
    grades = [lead["grade"] for lead in answer["leads"]]
    assert grades == list("AABBCA")  # oldest first, as they were routed
    nurtured = answer["leads"][4]
    assert (nurtured["outcome"], nurtured["program_id"], nurtured["changed"]) == (
        "nurture",
        "nurture-c",
        False,
    )
    assert nurtured["live"]["outcome"] == "nurture"
    assert answer["changed"] == 4  # the four leads that go to ben instead of ana
    assert all(lead["explanation"] for lead in answer["leads"])
    assert counts(database) == before  # nothing written

    tight = await client.post(
        "/v1/routing:simulate",
        json={"last": 6, "config": {"reps": [{"rep_id": "ana", "team_id": "dach", "capacity": 2}]}},
    )
    assert tight.json()["outcomes"] == {"assigned": 2, "nurture": 1, "queued": 3}
    away = await client.post(
        "/v1/routing:simulate",
        json={
            "last": 1,
            "config": {
                "out_of_office": {"ana": [{"starts_at": "2026-03-01T00:00:00Z"}]},
                "reps": [{"rep_id": "ana", "team_id": "dach"}],
            },
        },
    )
    [last] = away.json()["leads"]
    assert (last["outcome"], last["skipped"]) == (
        "queued",
        [{"rep_id": "ana", "reason": "out_of_office"}],
    )


async def test_a_bad_proposal_names_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/routing:simulate",
        json={"config": {"teams": [], "reps": [{"rep_id": "ana", "team_id": "dach"}]}},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "config", "reps", "0", "team_id"]
    too_many = await client.post("/v1/routing:simulate", json={"last": 51})
    assert too_many.json()["detail"][0]["loc"] == ["body", "last"]
    bad_hours = await client.post(
        "/v1/routing:simulate",
        json={"config": {"reps": [{"rep_id": "a", "team_id": "t", "working_hours": "mon 9-5"}]}},
    )
    assert bad_hours.json()["detail"][0]["loc"] == ["body", "config", "reps", 0, "working_hours"]
