"""The harness itself: processes on their own databases, replicas sharing a consumer group,
kill -9 by PID and restart, and a stop that leaves no process behind."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest

from shared.testing.kafka_tools import eventually
from tests.conftest import SystemFactory

pytestmark = pytest.mark.e2e


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def scored(client: httpx.AsyncClient, lead_id: str) -> str | None:
    response = await client.get(f"/v1/leads/{lead_id}/score")
    return response.json()["grade"] if response.status_code == 200 else None


async def post_lead(client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/v1/leads",
        json={
            "email": f"h{uuid.uuid4().hex[:8]}@harness.example",
            "touchpoint_type": "demo_request",
        },
    )
    assert response.status_code == 202, response.text
    lead_id: str = response.json()["lead_id"]
    return lead_id


async def test_replicas_share_the_work_survive_a_kill_and_all_stop(
    system_factory: SystemFactory,
) -> None:
    system = system_factory(services=("ingest", "scoring"), replicas={"scoring": 2})
    assert set(system.database_urls) == {"ingest", "scoring"}
    assert all(url.startswith("postgresql") for url in system.database_urls.values())
    ingest = system.async_client("ingest")
    # Both replicas answer from the one database.
    first, second = system.async_client("scoring", 0), system.async_client("scoring", 1)
    lead = await post_lead(ingest)
    await eventually(lambda: scored(first, lead), timeout=60, message="not scored")
    assert await scored(second, lead) == await scored(first, lead)

    # Without an API key, ingest refuses: the harness's key is what let us in.
    async with httpx.AsyncClient(base_url=system.url("ingest")) as anonymous:
        refused = await anonymous.post("/v1/leads", json={"email": "x@y.example"})
    assert refused.status_code == 401

    killed = system.kill("scoring", 0)
    assert not alive(killed)
    assert system.process("scoring", 1).alive
    after_kill = await post_lead(ingest)
    # The surviving replica takes the partitions over.
    await eventually(lambda: scored(second, after_kill), timeout=120, message="not scored")

    restarted = system.restart("scoring", 0)
    assert restarted.pid != killed
    assert restarted.starts == 2
    restarted_client = system.async_client("scoring", 0)
    assert await scored(restarted_client, after_kill) is not None
    assert "--- start 2 of scoring-0" in restarted.log_path.read_text()

    pids = [process.pid for process in system.all_processes()]
    for client in (ingest, first, second, restarted_client):
        await client.aclose()
    codes = system.stop()
    assert set(codes) == {"ingest-0", "scoring-0", "scoring-1"}
    assert all(code is not None for code in codes.values()), codes
    assert not any(alive(pid) for pid in pids)
