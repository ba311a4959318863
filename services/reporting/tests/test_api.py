"""The doors over real HTTP, on both databases: every metric as JSON and CSV with the filters,
campaign costs and targets, and bad input answered with the field and the reason."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.reporting.tests import scenario
from services.reporting.tests.test_read_model import apply_all
from shared.db import Database
from shared.http import create_app
from shared.service import ServiceDefinition, ServiceRuntime
from shared.testing.pytest_plugin import serve_app, service_settings

Q1 = {"quarter": "2026-Q1"}
AS_OF = {"as_of": scenario.AS_OF.isoformat()}


@pytest.fixture
async def client(
    service_definition: ServiceDefinition, database: Database
) -> AsyncIterator[httpx.AsyncClient]:
    """The service over HTTP, its read model filled with the scenario (no broker needed)."""
    apply_all(database, scenario.events())
    runtime = ServiceRuntime(
        service_definition, service_settings(service_definition, database=database)
    )
    app = create_app(runtime, manage_runtime=False)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def enter_costs_and_targets(client: httpx.AsyncClient) -> None:
    for cost in scenario.COSTS:
        response = await client.put(
            f"/v1/costs/{cost.campaign}/{cost.quarter}", json={"amount": str(cost.amount)}
        )
        assert response.status_code == 200, response.text
    for target in scenario.TARGETS:
        body = {"leads": target.leads, "mqls": target.mqls, "conversion": target.conversion}
        response = await client.put(
            f"/v1/targets/{target.quarter}/{target.scope}/{target.scope_id}", json=body
        )
        assert response.status_code == 200, response.text


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def table(client: httpx.AsyncClient, metric: str, **params: Any) -> list[dict[str, str]]:
    response = await client.get(f"/v1/metrics/{metric}.csv", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert f'filename="{metric}.csv"' in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_every_metric_as_json_with_the_filters(client: httpx.AsyncClient) -> None:
    await enter_costs_and_targets(client)
    volume = await get(client, "/v1/metrics/volume", **Q1)
    assert (volume["leads"], volume["new_touchpoints"], volume["merged_touchpoints"]) == (7, 7, 3)
    assert (await get(client, "/v1/metrics/volume"))["leads"] == 8
    # from/to are days, both included: January holds L1 to L5.
    january = await get(client, "/v1/metrics/volume", **{"from": "2026-01-01", "to": "2026-01-31"})
    assert january["leads"] == 5
    assert (await get(client, "/v1/metrics/volume", to="2026-01-05"))["leads"] == 1
    for name, value, leads in (
        ("source", "directory", 3),
        ("campaign", "webinar", 3),
        ("vertical", "software", 4),
        ("country", "US", 3),
        ("region", "US-CA", 1),
        ("team", "americas", 2),
        ("rep", "r1", 3),
    ):
        assert (await get(client, "/v1/metrics/volume", **Q1, **{name: value}))["leads"] == leads

    funnel = await get(client, "/v1/metrics/funnel", **Q1)
    assert [stage["leads"] for stage in funnel["stages"]] == [7, 6, 2, 2, 1]
    assert (funnel["pipeline"], funnel["revenue"]) == (15000.0, 12000.0)

    follow_up = await get(client, "/v1/metrics/follow-up", **Q1, **AS_OF)
    assert follow_up["speed_median_seconds"] == 7200
    assert follow_up["speed_p90_seconds"] == pytest.approx(63360)
    assert (follow_up["sla_met"], follow_up["sla_breached"]) == (5, 2)
    assert follow_up["waiting"] == 1
    assert follow_up["oldest_waiting"][0]["waiting_seconds"] == 84 * 86400
    assert follow_up["oldest_waiting"][0]["lead_id"] == str(scenario.LEADS["L5"])
    r2 = await get(client, "/v1/metrics/follow-up", **Q1, **AS_OF, rep="r2")
    assert r2["sla_compliance"] == 0.0

    speed = await get(client, "/v1/metrics/speed", **Q1)
    assert [(week["week"], week["median_seconds"]) for week in speed] == [
        ("2026-01-05", 7200),
        ("2026-02-02", 4500),
    ]

    loop = await get(client, "/v1/metrics/loop", **Q1)
    assert (loop["rejected"], loop["recycled"]) == (3, 1)
    webinar = next(row for row in loop["by_campaign"] if row["key"] == "webinar")
    assert webinar["reasons"] == [
        {"reason": "no_timeframe", "leads": 1},
        {"reason": "wrong_target", "leads": 1},
    ]

    models = await get(client, "/v1/metrics/attribution", **Q1)
    assert [m["model"] for m in models] == [
        "first_touch",
        "last_touch",
        "linear",
        "u_shaped",
        "w_shaped",
    ]
    [w] = await get(client, "/v1/metrics/attribution", **Q1, model="w_shaped")
    assert {c["campaign"]: c["revenue"] for c in w["campaigns"]} == {
        "webinar": 7200,
        "directory": 3600,
        "tradeshow": 1200,
    }

    campaigns = await get(client, "/v1/metrics/campaigns", **Q1, model="w_shaped")
    webinar_spend = next(row for row in campaigns if row["campaign"] == "webinar")
    assert (webinar_spend["cost"], webinar_spend["cost_per_lead"]) == (6000, 2000)
    assert webinar_spend["return_on_spend"] == 1.2
    january_spend = await get(
        client, "/v1/metrics/campaigns", **{"from": "2026-01-01", "to": "2026-01-31"}
    )
    assert next(r for r in january_spend if r["campaign"] == "webinar")["cost"] == 2066.67

    goals = await get(client, "/v1/metrics/targets", **Q1)
    assert [(g["scope_id"], g["leads_actual"], g["leads_attainment"]) for g in goals] == [
        ("webinar", 3, 0.75),
        ("emea", 4, 0.8),
    ]


async def test_the_report_is_every_metric_at_once(client: httpx.AsyncClient) -> None:
    await enter_costs_and_targets(client)
    everything = await get(client, "/v1/report", **Q1, **AS_OF, model="w_shaped")
    for name, path in (
        ("volume", "volume"),
        ("funnel", "funnel"),
        ("follow_up", "follow-up"),
        ("speed_by_week", "speed"),
        ("loop", "loop"),
        ("attribution", "attribution"),
        ("targets", "targets"),
    ):
        assert everything[name] == await get(client, f"/v1/metrics/{path}", **Q1, **AS_OF), name
    campaigns = await get(client, "/v1/metrics/campaigns", **Q1, model="w_shaped")
    assert everything["spend"] == campaigns

    dimensions = await get(client, "/v1/dimensions")
    assert everything["dimensions"] == dimensions
    assert dimensions["campaigns"] == ["directory", "tradeshow", "webinar"]
    assert dimensions["teams"] == ["americas", "emea"]
    assert dimensions["reps"] == ["r1", "r2", "r3"]
    assert dimensions["countries"] == ["DE", "GB", "US"]
    assert dimensions["quarters"] == ["2026-Q1", "2026-Q2"]


async def test_every_metric_as_csv(client: httpx.AsyncClient) -> None:
    await enter_costs_and_targets(client)
    volume = {row["measure"]: row["value"] for row in await table(client, "volume", **Q1)}
    assert (volume["leads"], volume["merged_touchpoints"], volume["grade_A"]) == ("7", "3", "3")
    funnel = await table(client, "funnel", **Q1)
    assert [(row["stage"], row["leads"]) for row in funnel] == [
        ("ingested", "7"),
        ("mql", "6"),
        ("accepted", "2"),
        ("opportunity", "2"),
        ("won", "1"),
    ]
    assert funnel[0]["conversion"] == ""  # no previous stage
    follow_up = {r["measure"]: r["value"] for r in await table(client, "follow-up", **Q1, **AS_OF)}
    assert (follow_up["sla_met"], follow_up["waiting"]) == ("5", "1")
    speed = await table(client, "speed", **Q1)
    assert [(row["week"], row["touched"]) for row in speed] == [
        ("2026-01-05", "3"),
        ("2026-02-02", "2"),
    ]
    loop = await table(client, "loop", **Q1)
    assert {"by": "campaign", "key": "directory", "reason": "bad_data", "leads": "1"} in loop
    assert {"by": "source", "key": "web_form", "reason": "wrong_target", "leads": "1"} in loop
    assert len(loop) == 6
    attribution = await table(client, "attribution", **Q1)
    u = {r["campaign"]: r["pipeline"] for r in attribution if r["model"] == "u_shaped"}
    assert u == {"directory": "9000.0", "webinar": "4000.0", "tradeshow": "2000.0"}
    campaigns = await table(client, "campaigns", **Q1)
    assert [(r["campaign"], r["cost_per_mql"]) for r in campaigns] == [
        ("directory", "333.33"),
        ("tradeshow", ""),
        ("webinar", "2000.0"),
    ]
    targets = await table(client, "targets", **Q1, team="emea")
    assert [(r["scope_id"], r["mqls_actual"]) for r in targets] == [("webinar", "3"), ("emea", "4")]
    # A metric with nothing to show still has its header.
    response = await client.get("/v1/metrics/speed.csv", params={"source": "nowhere"})
    assert response.text == "week,assigned,touched,median_seconds,p90_seconds\n"


async def test_costs_and_targets_are_entered_changed_and_removed(
    client: httpx.AsyncClient,
) -> None:
    put = await client.put("/v1/costs/webinar/2026-Q1", json={"amount": "6000.50", "note": "ads"})
    assert put.json()["amount"] == 6000.5
    await client.put("/v1/costs/webinar/2026-Q1", json={"amount": 7000})  # changed, not added
    await client.put("/v1/costs/directory/2026-Q1", json={"amount": 1000})
    costs = await get(client, "/v1/costs")
    assert [(c["campaign"], c["amount"], c["note"]) for c in costs] == [
        ("directory", 1000.0, None),
        ("webinar", 7000.0, None),
    ]
    assert (await client.delete("/v1/costs/directory/2026-Q1")).status_code == 204
    missing = await client.delete("/v1/costs/directory/2026-Q1")
    assert missing.status_code == 404
    assert missing.json()["detail"][0]["loc"] == ["path", "campaign"]
    assert [c["campaign"] for c in await get(client, "/v1/costs")] == ["webinar"]

    put = await client.put("/v1/targets/2026-Q1/team/emea", json={"mqls": 5})
    assert put.status_code == 200
    assert (put.json()["mqls"], put.json()["leads"]) == (5, None)
    await client.put("/v1/targets/2026-Q1/team/emea", json={"leads": 9, "conversion": 0.3})
    [target] = await get(client, "/v1/targets")
    assert (target["leads"], target["mqls"], target["conversion"]) == (9, None, 0.3)
    assert (await client.delete("/v1/targets/2026-Q1/team/emea")).status_code == 204
    assert (await client.delete("/v1/targets/2026-Q1/team/emea")).status_code == 404
    assert await get(client, "/v1/targets") == []


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "location", "message"),
    [
        (
            "get",
            "/v1/metrics/funnel",
            {"quarter": "2026-Q5"},
            None,
            ["query", "quarter"],
            "pattern",
        ),
        ("get", "/v1/leads", {"quarter": "0000-Q1"}, None, ["query", "quarter"], "pattern"),
        (
            "get",
            "/v1/metrics/follow-up",
            {"to": "9999-12-31"},
            None,
            ["query", "to"],
            "last day of the calendar",
        ),
        (
            "get",
            "/v1/metrics/funnel",
            {"quarter": "2026-Q1", "from": "2026-01-01"},
            None,
            ["query", "quarter"],
            "either a quarter or from/to",
        ),
        (
            "get",
            "/v1/metrics/funnel",
            {"from": "2026-02-01", "to": "2026-01-01"},
            None,
            ["query", "to"],
            "ends before it starts",
        ),
        ("get", "/v1/metrics/volume", {"from": "yesterday"}, None, ["query", "from"], "date"),
        (
            "get",
            "/v1/metrics/volume",
            {"country": "germany"},
            None,
            ["query", "country"],
            "pattern",
        ),
        (
            "get",
            "/v1/metrics/campaigns",
            {"model": "time_decay"},
            None,
            ["query", "model"],
            "first_touch",
        ),
        (
            "get",
            "/v1/metrics/follow-up",
            {"as_of": "2026-04-01T09:00:00"},
            None,
            ["query", "as_of"],
            "time zone",
        ),
        ("get", "/v1/metrics/pipeline.csv", {}, None, ["path", "metric"], "volume"),
        ("put", "/v1/costs/webinar/2026-Q1", {}, {"amount": -5}, ["body", "amount"], "greater"),
        ("put", "/v1/costs/webinar/Q1", {}, {"amount": 5}, ["path", "quarter"], "pattern"),
        ("put", "/v1/targets/9999-Q4/team/emea", {}, {"leads": 5}, ["path", "quarter"], "pattern"),
        (
            "put",
            "/v1/targets/2026-Q1/team/emea",
            {},
            {"mqls": 346280529592558008150129507219537920},
            ["body", "mqls"],
            "less than or equal",
        ),
        ("put", "/v1/targets/2026-Q1/team/emea", {}, {}, ["body"], "at least one"),
        (
            "put",
            "/v1/targets/2026-Q1/team/emea",
            {},
            {"conversion": 1.5},
            ["body", "conversion"],
            "less than or equal",
        ),
        ("put", "/v1/targets/2026-Q1/region/emea", {}, {"leads": 1}, ["path", "scope"], "campaign"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(
    client: httpx.AsyncClient,
    *,
    method: str,
    path: str,
    params: dict[str, str],
    body: dict[str, Any] | None,
    location: list[str],
    message: str,
) -> None:
    response = await client.request(method, path, params=params, json=body)
    assert response.status_code == 422, response.text
    [detail] = response.json()["detail"]
    assert detail["loc"] == location
    assert message in detail["msg"]


async def test_a_leads_journey_and_the_recent_leads(client: httpx.AsyncClient) -> None:
    journey = await get(client, f"/v1/leads/{scenario.LEADS['L2']}")
    lead = journey["lead"]
    assert (lead["source"], lead["campaign"], lead["grade"], lead["stage"]) == (
        "web_form",
        "webinar",
        "A",
        "mql",
    )
    assert (lead["rep_id"], lead["rep_name"], lead["team_id"], lead["sla_status"]) == (
        "r1",
        "R1",
        "emea",
        "met",
    )
    assert lead["sla_due_at"].startswith("2026-01-08T10:05:00")
    assert [a["sla_status"] for a in journey["assignments"]] == ["breached", "met"]
    assert [f["status"] for f in journey["feedback"]] == ["contacted", "rejected"]
    assert journey["speed_to_first_touch_seconds"] == 28 * 3600
    won = await get(client, f"/v1/leads/{scenario.LEADS['L1']}")
    assert (won["lead"]["stage"], float(won["pipeline"]), float(won["revenue"])) == (
        "won",
        10000.0,
        12000.0,
    )

    # L7 was never ingested: it is nowhere, its journey included.
    missing = await client.get(f"/v1/leads/{scenario.LEADS['L7']}")
    assert missing.status_code == 404
    assert missing.json()["detail"][0]["loc"] == ["path", "lead_id"]
    malformed = await client.get("/v1/leads/not-a-uuid")
    assert malformed.status_code == 422
    assert malformed.json()["detail"][0]["loc"] == ["path", "lead_id"]

    recent = await get(client, "/v1/leads", limit=2, **Q1)
    assert [row["lead_id"] for row in recent] == [
        str(scenario.LEADS["L9"]),
        str(scenario.LEADS["L8"]),
    ]
    assert (await client.get("/v1/leads", params={"limit": 0})).status_code == 422
    report = await get(client, "/v1/report", **Q1)
    assert len(report["recent_leads"]) == 7
    assert report["recent_leads"][0] == recent[0]
