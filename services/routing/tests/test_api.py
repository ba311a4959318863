"""The configuration API over real HTTP, on SQLite and PostgreSQL: CRUD, CSV loads,
out-of-office, the audit log, the SLA policy and a lead's routing history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from services.routing.service import build_definition
from services.routing.tests.support import START, FakeClock, Recorder, route, scored
from shared.contracts import LeadRoutedV1
from shared.db import Database
from shared.http import create_app
from shared.service import ServiceRuntime
from shared.testing.pytest_plugin import serve_app, service_settings


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def client(database: Database, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    definition = build_definition(clock=clock)
    runtime = ServiceRuntime(definition, service_settings(definition, database=database))
    app = create_app(runtime, manage_runtime=False)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield http


async def configure(client: httpx.AsyncClient) -> None:
    for path, body in [
        ("/v1/territories", {"territory_id": "de", "country": "DE"}),
        ("/v1/territories", {"territory_id": "bavaria", "country": "DE", "region": "DE-BY"}),
        ("/v1/teams", {"team_id": "dach", "territory_ids": ["de"], "name": "DACH"}),
        ("/v1/teams", {"team_id": "bavaria", "territory_ids": ["bavaria"]}),
        (
            "/v1/reps",
            {
                "rep_id": "ana",
                "team_id": "bavaria",
                "time_zone": "Europe/Berlin",
                "working_hours": "mon-fri 08:00-12:00,13:00-17:00",
                "crm_user_id": "hs-1",
            },
        ),
        ("/v1/reps", {"rep_id": "ben", "team_id": "bavaria", "weight": 2}),
        ("/v1/accounts", {"domain": "WWW.Beispiel.DE", "rep_id": "ana"}),
        ("/v1/programs", {"program_id": "nurture-c", "grades": ["C"]}),
    ]:
        response = await client.post(path, json=body, headers={"X-Actor": "maria"})
        assert response.status_code == 201, response.text


async def test_configuration_round_trips_and_every_change_is_audited(
    client: httpx.AsyncClient,
) -> None:
    await configure(client)
    ana = (await client.get("/v1/reps/ana")).json()
    assert ana["working_hours"] == {
        day: ["08:00-12:00", "13:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")
    }
    assert (ana["capacity"], ana["weight"], ana["active"], ana["out_of_office"]) == (
        25,
        1,
        True,
        False,
    )
    assert (await client.get("/v1/accounts/beispiel.de")).json()["rep_id"] == "ana"
    moved = await client.put(
        "/v1/accounts/WWW.Beispiel.de", json={"domain": "beispiel.de", "rep_id": "ben"}
    )
    assert moved.status_code == 200, moved.text
    assert (await client.get("/v1/accounts/www.beispiel.de")).json()["rep_id"] == "ben"
    assert [t["team_id"] for t in (await client.get("/v1/teams")).json()] == ["bavaria", "dach"]

    updated = await client.put(
        "/v1/reps/ben",
        json={"rep_id": "ben", "team_id": "dach", "capacity": 5},
        headers={"X-Actor": "lee"},
    )
    assert updated.status_code == 200
    assert updated.json()["team_id"] == "dach"
    unchanged = await client.put(
        "/v1/reps/ben", json={"rep_id": "ben", "team_id": "dach", "capacity": 5}
    )
    assert unchanged.status_code == 200

    changes = (await client.get("/v1/audit", params={"entity": "rep", "entity_id": "ben"})).json()
    assert [(c["action"], c["actor"]) for c in changes] == [("update", "lee"), ("create", "maria")]
    assert (changes[0]["before"]["team_id"], changes[0]["after"]["team_id"]) == ("bavaria", "dach")
    assert (changes[0]["before"]["capacity"], changes[0]["after"]["capacity"]) == (25, 5)

    assert (await client.delete("/v1/programs/nurture-c")).status_code == 204
    assert (await client.get("/v1/programs/nurture-c")).status_code == 404
    [deleted] = (await client.get("/v1/audit", params={"entity": "program"})).json()[:1]
    assert (deleted["action"], deleted["after"]) == ("delete", None)


async def test_references_and_deletes_in_use_are_refused_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    await configure(client)
    cases = [
        ("/v1/reps", {"rep_id": "cy", "team_id": "nowhere"}, 422, ["body", "team_id"], "no team"),
        (
            "/v1/teams",
            {"team_id": "x", "territory_ids": ["de", "mars"]},
            422,
            ["body", "territory_ids", "1"],
            "no territory",
        ),
        (
            "/v1/accounts",
            {"domain": "acme.com", "rep_id": "ghost"},
            422,
            ["body", "rep_id"],
            "no rep",
        ),
        ("/v1/teams", {"team_id": "dach"}, 409, ["body", "team_id"], "exists already"),
    ]
    for path, body, status, loc, message in cases:
        response = await client.post(path, json=body)
        assert response.status_code == status, response.text
        [detail] = response.json()["detail"]
        assert detail["loc"] == loc
        assert message in detail["msg"]
    in_use = await client.delete("/v1/teams/bavaria")
    assert in_use.status_code == 409
    assert "still has reps: ana, ben" in in_use.json()["detail"][0]["msg"]
    assert (await client.delete("/v1/territories/de")).status_code == 409
    assert (await client.delete("/v1/reps/ana")).status_code == 409  # owns beispiel.de
    assert (await client.delete("/v1/reps/nobody")).status_code == 404
    mismatch = await client.put("/v1/teams/dach", json={"team_id": "other"})
    assert mismatch.json()["detail"][0]["loc"] == ["body", "team_id"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("time_zone", "Mars/Base", "unknown time zone"),
        ("working_hours", "mon-fri 17:00-09:00", "start < end"),
        ("working_hours", {"someday": ["09:00-17:00"]}, "not a day"),
        ("working_hours", {"mon": {"from": "09:00"}}, "mon: a list of ranges"),
        ("working_hours", {"tue": [900, 1700]}, "tue: a list of ranges"),
        ("weight", 0, "greater than or equal to 1"),
        ("capacity", -1, "greater than or equal to 0"),
        ("rep_id", "has space", "should match pattern"),
        ("holiday_calendar", "XX", "no holiday calendar 'XX'"),
        ("holiday_calendar", "DE-ZZ", "does not have subdivision ZZ"),
    ],
)
async def test_bad_rep_fields_get_a_422_naming_the_field(
    client: httpx.AsyncClient, field: str, value: object, message: str
) -> None:
    await configure(client)
    body = {"rep_id": "cy", "team_id": "dach", field: value}
    response = await client.post("/v1/reps", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", field]
    assert message in detail["msg"]


async def test_csv_loads_are_all_or_nothing_and_name_the_line(client: httpx.AsyncClient) -> None:
    territories = "territory_id,country,region,postal_prefixes\nde,DE,,\nmunich,DE,DE-BY,80|81 5\n"
    teams = (
        "team_id,name,territory_ids,verticals\n"
        "dach,DACH,de,\n"
        "munich,Munich,munich,software|it_services\n"
    )
    reps = (
        "rep_id,team_id,name,time_zone,working_hours,capacity,weight,active,holidays\n"
        "ana,munich,Ana,Europe/Berlin,mon-fri 09:00-17:00,10,2,true,2026-12-24|2026-12-25\n"
        "ben,munich,Ben,Europe/Berlin,,,,no,\n"
    )
    for path, body, created in [
        ("/v1/territories:bulk", territories, 2),
        ("/v1/teams:bulk", teams, 2),
        ("/v1/reps:bulk", reps, 2),
    ]:
        response = await client.post(path, content=body, headers={"content-type": "text/csv"})
        assert response.status_code == 200, response.text
        assert response.json() == {"created": created, "updated": 0, "unchanged": 0}
    munich = (await client.get("/v1/territories/munich")).json()
    assert munich["postal_prefixes"] == ["80", "815"]
    ana = (await client.get("/v1/reps/ana")).json()
    assert (ana["weight"], ana["holidays"]) == (2, ["2026-12-24", "2026-12-25"])
    assert (await client.get("/v1/reps/ben")).json()["active"] is False

    again = await client.post("/v1/reps:bulk", content=reps.replace("Ben,", "Benjamin,"))
    assert again.json() == {"created": 0, "updated": 1, "unchanged": 1}
    audit = (await client.get("/v1/audit", params={"entity": "rep", "entity_id": "ben"})).json()
    assert [(c["action"], c["via"]) for c in audit] == [("update", "csv"), ("create", "csv")]

    broken = (
        reps.replace("rep_id,", "rep_id,").replace(
            "ben,munich,Ben,Europe/Berlin", "ben,munich,Ben,Europe/Nowhere"
        )
        + "cy,munich,Cy,UTC,,,,,\n"
    )
    response = await client.post(
        "/v1/reps:bulk", content=broken.replace("ana,munich,Ana", "ana,munich,Anabel")
    )
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["body", "line", "3", "time_zone"]
    assert (await client.get("/v1/reps/cy")).status_code == 404  # nothing was written
    assert (await client.get("/v1/reps/ana")).json()["name"] == "Ana"

    unknown_team = await client.post("/v1/reps:bulk", content="rep_id,team_id\nzed,atlantis\n")
    assert unknown_team.json()["detail"][0]["loc"] == ["body", "line", "2", "team_id"]
    bad_header = await client.post("/v1/teams:bulk", content="team,name\nx,y\n")
    assert bad_header.json()["detail"][0]["loc"] == ["body", "header"]
    latin = await client.post(
        "/v1/teams:bulk", content="team_id,name\nx,Z\xfcrich\n".encode("latin-1")
    )
    assert latin.json()["detail"][0]["msg"] == "the CSV document must be UTF-8"
    duplicate = await client.post("/v1/teams:bulk", content="team_id\nx\nx\n")
    assert duplicate.json()["detail"][0]["loc"] == ["body", "line", "3", "team_id"]


async def test_out_of_office_on_and_off_is_audited_and_routing_follows_it(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    await configure(client)
    on = await client.post(
        "/v1/reps/ana/out-of-office", json={"note": "holiday"}, headers={"X-Actor": "ana"}
    )
    assert on.status_code == 201
    assert (await client.get("/v1/reps/ana")).json()["out_of_office"] is True

    events = Recorder()
    route(database, scored("A", lead={"domain": "other.de"}), clock(), events)
    [event] = events.of(LeadRoutedV1)
    assert event.rep is not None
    assert event.rep.rep_id == "ben"
    assert [(s.rep_id, s.reason) for s in event.skipped] == [("ana", "out_of_office")]

    clock.advance(hours=3)
    off = await client.delete("/v1/reps/ana/out-of-office", headers={"X-Actor": "ana"})
    assert off.status_code == 200
    assert off.json()[0]["ends_at"] == (START + timedelta(hours=3)).isoformat().replace(
        "+00:00", "Z"
    )
    assert (await client.get("/v1/reps/ana")).json()["out_of_office"] is False
    assert (await client.delete("/v1/reps/ana/out-of-office")).status_code == 409
    actions = [
        c["action"] for c in (await client.get("/v1/audit", params={"entity_id": "ana"})).json()
    ]
    assert actions[:2] == ["out_of_office_off", "out_of_office_on"]

    later = await client.post(
        "/v1/reps/ana/out-of-office",
        json={"starts_at": "2026-03-20T00:00:00Z", "ends_at": "2026-03-19T00:00:00Z"},
    )
    assert later.json()["detail"][0]["loc"] == ["body", "ends_at"]


async def test_the_sla_policy_is_configurable_and_audited(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/sla-policy")).json() == {
        "follow_up_hours": {"A": 8.0, "B": 40.0},
        "warning_fraction": 0.75,
        "max_reassignments": 2,
    }
    new = {"follow_up_hours": {"A": 4, "B": 16}, "warning_fraction": 0.5, "max_reassignments": 1}
    assert (await client.put("/v1/sla-policy", json=new)).status_code == 200
    assert (await client.get("/v1/sla-policy")).json()["follow_up_hours"] == {"A": 4.0, "B": 16.0}
    [change] = (await client.get("/v1/audit", params={"entity": "sla_policy"})).json()
    assert change["before"]["follow_up_hours"] == {"A": 8.0, "B": 40.0}
    for hours in (0, 1e-300, 0.01, 2081, 1e300):
        bad = await client.put("/v1/sla-policy", json={"follow_up_hours": {"A": hours}})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "follow_up_hours"]
    # Refused, so routing still reads the policy it had.
    assert (await client.get("/v1/sla-policy")).json()["follow_up_hours"] == {"A": 4.0, "B": 16.0}


async def test_a_leads_routing_history_explains_each_decision(
    client: httpx.AsyncClient, database: Database, clock: FakeClock
) -> None:
    await configure(client)
    lead = scored("C", lead={"domain": "other.de"})
    route(database, lead, clock())
    clock.advance(days=2)
    route(
        database,
        scored(
            "A",
            lead_id=lead.lead_id,
            previous_grade="C",
            lead={"domain": "other.de"},
            scored_at=clock(),
        ),
        clock(),
    )
    history = (await client.get(f"/v1/leads/{lead.lead_id}/routing")).json()
    assert (history["grade"], history["state"]) == ("A", "open")
    nurture, assigned = history["assignments"]
    assert (nurture["outcome"], nurture["program_id"], nurture["state"]) == (
        "nurture",
        "nurture-c",
        "superseded",
    )
    assert (assigned["rule"], assigned["rep_id"], assigned["reassignment_of"]) == (
        "round_robin",
        "ben",
        nurture["id"],
    )
    assert "pulled out of nurture" in assigned["explanation"]
    assert assigned["sla_status"] == "running"
    missing = await client.get("/v1/leads/00000000-0000-0000-0000-000000000001/routing")
    assert missing.status_code == 404
    queue = (await client.get("/v1/teams/bavaria/queue")).json()
    assert queue == []
