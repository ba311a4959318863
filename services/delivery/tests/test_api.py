"""The subscriptions API over real HTTP, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.delivery import repository
from services.delivery.tests.conftest import consume
from shared.http import create_app
from shared.service import ServiceRuntime
from shared.testing import factories
from shared.testing.pytest_plugin import serve_app


@pytest.fixture
async def api(runtime: ServiceRuntime) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve_app(create_app(runtime, manage_runtime=False)) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        yield client


async def subscribe(api: httpx.AsyncClient, **body: object) -> dict[str, object]:
    payload = {"url": "http://127.0.0.1:9/hook", "event_types": ["leads.routed"], **body}
    response = await api.post("/v1/subscriptions", json=payload)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def test_a_subscription_is_created_with_its_secret_shown_once(
    api: httpx.AsyncClient,
) -> None:
    created = await subscribe(
        api,
        event_types=["leads.routed", "leads.scored", "leads.routed"],
        filters={"grades": ["A", "B"], "campaigns": ["spring"]},
        description="Mautic",
    )
    assert str(created["secret"]).startswith("whsec_")
    assert created["status"] == "active"
    assert created["event_types"] == ["leads.routed", "leads.scored"]
    assert created["filters"] == {"grades": ["A", "B"], "campaigns": ["spring"]}

    fetched = (await api.get(f"/v1/subscriptions/{created['id']}")).json()
    assert "secret" not in fetched
    assert fetched["description"] == "Mautic"
    listed = (await api.get("/v1/subscriptions")).json()
    assert [s["id"] for s in listed] == [created["id"]]
    assert "secret" not in listed[0]


@pytest.mark.parametrize(
    ("body", "loc", "needle"),
    [
        ({"url": "ftp://example.test/x"}, ["body", "url"], "scheme"),
        ({"url": "not a url"}, ["body", "url"], "URL"),
        ({"event_types": []}, ["body", "event_types"], "at least 1"),
        ({"event_types": ["leads.deleted"]}, ["body", "event_types", "0"], "leads.ingested"),
        ({"filters": {"grades": ["E"]}}, ["body", "filters", "grades", "0"], "'A'"),
        ({"filters": {"campaigns": [""]}}, ["body", "filters", "campaigns", "0"], "at least 1"),
        ({"secret": "mine"}, ["body", "secret"], "not permitted"),
    ],
)
async def test_bad_subscriptions_are_refused_naming_the_field(
    api: httpx.AsyncClient, body: dict[str, object], loc: list[str], needle: str
) -> None:
    payload = {"url": "https://hooks.example.test/in", "event_types": ["leads.routed"], **body}
    response = await api.post("/v1/subscriptions", json=payload)
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert [str(part) for part in detail["loc"]] == loc
    assert needle in detail["msg"]
    assert (await api.get("/v1/subscriptions")).json() == []


async def test_a_subscription_can_move_and_change_its_filters(api: httpx.AsyncClient) -> None:
    created = await subscribe(api, description="old")
    path = f"/v1/subscriptions/{created['id']}"
    changed = await api.patch(
        path,
        json={"url": "https://new.example.test/in", "filters": {"grades": ["A"]}},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["url"] == "https://new.example.test/in"
    assert body["filters"] == {"grades": ["A"], "campaigns": []}
    assert (body["event_types"], body["description"]) == (["leads.routed"], "old")
    assert "secret" not in body
    refused = await api.patch(path, json={"event_types": ["leads.nope"]})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][:2] == ["body", "event_types"]
    null_url = await api.patch(path, json={"url": None})
    assert null_url.status_code == 422
    assert null_url.json()["detail"][0]["loc"] == ["body", "url"]
    assert (await api.patch(f"/v1/subscriptions/{uuid.uuid4()}", json={})).status_code == 404


async def test_unknown_ids_are_404s_naming_the_path(api: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    for method, path in [
        ("GET", f"/v1/subscriptions/{missing}"),
        ("DELETE", f"/v1/subscriptions/{missing}"),
        ("POST", f"/v1/subscriptions/{missing}/pause"),
        ("POST", f"/v1/subscriptions/{missing}/resume"),
        ("GET", f"/v1/subscriptions/{missing}/deliveries"),
    ]:
        response = await api.request(method, path)
        assert response.status_code == 404, path
        assert response.json()["detail"][0]["loc"] == ["path", "subscription_id"]
    response = await api.get("/v1/deliveries/999")
    assert response.status_code == 404
    assert response.json()["detail"][0]["loc"] == ["path", "delivery_id"]
    # Beyond the column's range: a 422 naming the parameter, not the database's error.
    for method, path in [
        ("GET", "/v1/deliveries/242920803472836796570664960"),
        ("POST", "/v1/deliveries/2147483648/replay"),
    ]:
        response = await api.request(method, path)
        assert response.status_code == 422, path
        assert response.json()["detail"][0]["loc"] == ["path", "delivery_id"]
    assert (await api.get("/v1/subscriptions/nope")).status_code == 422


async def test_pause_resume_and_delete(api: httpx.AsyncClient) -> None:
    created = await subscribe(api)
    paused = (await api.post(f"/v1/subscriptions/{created['id']}/pause")).json()
    assert paused["status"] == "paused"
    assert paused["paused_reason"] == "paused by hand"
    assert paused["paused_at"] is not None
    resumed = (await api.post(f"/v1/subscriptions/{created['id']}/resume")).json()
    assert (resumed["status"], resumed["paused_reason"]) == ("active", None)
    assert (await api.delete(f"/v1/subscriptions/{created['id']}")).status_code == 204
    assert (await api.get(f"/v1/subscriptions/{created['id']}")).status_code == 404


async def test_the_delivery_log_and_replays(
    api: httpx.AsyncClient, runtime: ServiceRuntime
) -> None:
    created = await subscribe(api, event_types=["leads.scored", "leads.routed"])
    subscription_id = uuid.UUID(str(created["id"]))
    lead_id = uuid.uuid4()
    scored = consume(runtime, factories.lead_scored(lead_id=lead_id, grade="A"))
    consume(runtime, factories.lead_routed(lead_id=lead_id, grade="A"))
    consume(runtime, factories.lead_sla(lead_id=lead_id))  # not subscribed

    deliveries = (await api.get(f"/v1/subscriptions/{subscription_id}/deliveries")).json()
    assert [d["event_type"] for d in deliveries] == [
        "leadflow.lead.scored.v1",
        "leadflow.lead.routed.v1",
    ]
    assert {d["status"] for d in deliveries} == {"pending"}
    counts = (await api.get(f"/v1/subscriptions/{subscription_id}")).json()["deliveries"]
    assert counts == {"pending": 2, "delivered": 0, "failed": 0}
    first = deliveries[0]
    detail = (await api.get(f"/v1/deliveries/{first['id']}")).json()
    assert detail["event"]["id"] == scored.id
    assert detail["event"]["type"] == "leadflow.lead.scored.v1"
    assert detail["event"]["data"]["grade"] == "A"
    assert detail["log"] == []
    assert detail["message_id"].startswith("msg_")

    # Settle both as delivered, then replay: one, then all since a time.
    with runtime.db.transaction() as session:
        for delivery in repository.list_deliveries(session, subscription_id=subscription_id):
            delivery.status = "delivered"
            session.add(delivery)
    replayed = (await api.post(f"/v1/deliveries/{first['id']}/replay")).json()
    assert (replayed["status"], replayed["message_id"]) == ("pending", first["message_id"])
    pending = await api.get(
        f"/v1/subscriptions/{subscription_id}/deliveries", params={"status": "pending"}
    )
    assert [d["id"] for d in pending.json()] == [first["id"]]

    since = (await api.get(f"/v1/deliveries/{first['id']}")).json()["created_at"]
    response = await api.post(f"/v1/subscriptions/{subscription_id}/replay", json={"since": since})
    assert response.status_code == 202
    assert response.json() == {"replayed": 2}
    bad = await api.post(
        f"/v1/subscriptions/{subscription_id}/replay", json={"since": "2026-01-01T00:00:00"}
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "since"]
