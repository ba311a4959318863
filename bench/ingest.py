"""Ingest alone, as a process of its own on the real broker, on SQLite and PostgreSQL.

* accept: leads posted to ``POST /v1/leads:batch`` (500 a batch, two senders) as fast as
  ingest takes them; leads per second from the first request to the last 202, and to the
  last ``leads.ingested`` record on the broker (the outbox relay runs in the same process
  and is part of the cost). The leads are a mix: most with a company domain, some with a
  free-mail address and only a company name (the fuzzy account match), some repeats of a
  person already sent (merged as a touchpoint);
* single: the same mix posted one lead a request to ``POST /v1/leads`` by ``senders``
  concurrent clients (a web form's door under load); leads per second and each request's
  latency, p50/p95/p99;
* import: a generated dirty CSV file (``services/ingest/tests/dirty.py``: semicolons,
  Windows-1252, bad emails, duplicates ...) posted to ``POST /v1/imports``; rows per second
  from the post to ``GET /v1/imports/{id}`` saying done.

``existing_leads``: before any of it, that many leads are written straight to ingest's table
(other people, other phones) and the table analyzed, as in a service that has been taking
leads for a while; each look-up then searches a table of that size.

Each figure is measured ``runs`` times on the same process (fresh leads each time) and the
median reported beside every run.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from bench.pipeline import CAMPAIGNS, COUNTRIES, INDUSTRIES, TITLES, load_client
from bench.runtime_roundtrip import percentile
from services.ingest.models import Lead
from services.ingest.tests.dirty import dirty_csv
from shared.db.bulk import insert_rows
from shared.db.rows import table_of
from shared.ids import new_uuid
from shared.testing.kafka_tools import assign_whole_topic
from tests.system import System

FREE_MAIL = ("gmail.com", "yahoo.de", "outlook.com", "web.de")
LEGAL_FORMS = ("GmbH", "Ltd.", "Inc", "AG", "Corporation", "")


def lead(index: int, run: str) -> dict[str, Any]:
    """A lead of the mix: 70 % company domain, 20 % free mail and a company name (one of a
    few thousand companies, written in several ways), 10 % a repeat of an earlier one."""
    rng = random.Random(f"{run}-{index}")
    kind = rng.random()
    if kind >= 0.9 and index > 0:
        # A repeat: the same person again, another campaign (a touchpoint).
        again = lead(rng.randrange(index), run)
        again["campaign"] = rng.choice(CAMPAIGNS)
        again["touchpoint_type"] = "content_download"
        return again
    if kind >= 0.7:
        company = rng.randrange(3_000)
        email = f"person.{index}.{run}@{rng.choice(FREE_MAIL)}"
        name = f"Northwind {company} Trading {rng.choice(LEGAL_FORMS)}".strip()
    else:
        email = f"person.{index}.{run}@company-{index}-{run}.com"
        name = f"Company {index} {run}"
    return {
        "email": email,
        "first_name": "Alex",
        "last_name": f"Example{index}",
        "phone": f"+4930{rng.randrange(1_000_000, 9_999_999)}",
        "company": name,
        "title": rng.choice(TITLES),
        "industry": rng.choice(INDUSTRIES),
        "employees": rng.choice((12, 80, 450, 2_000, 15_000)),
        "country": rng.choice(COUNTRIES),
        "source": "web_form",
        "campaign": rng.choice(CAMPAIGNS),
        "touchpoint_type": rng.choice(("form_submission", "demo_request", "content_download")),
        "utm": {"source": "linkedin", "medium": "paid_social"},
        "consent": {"email_marketing": True},
    }


async def _published(consumer: AIOKafkaConsumer, partitions: list[Any]) -> int:
    ends = await consumer.end_offsets(partitions)
    return sum(ends.values())


async def accept(
    system: System, *, leads: int, batch: int = 500, senders: int = 2
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    items = [lead(index, run) for index in range(leads)]
    batches = [items[start : start + batch] for start in range(0, leads, batch)]
    counts = {"created": 0, "merged": 0, "rejected": 0}
    consumer = AIOKafkaConsumer(bootstrap_servers=system.bootstrap_servers)
    await consumer.start()
    try:
        partitions = await assign_whole_topic(consumer, system.topics.physical("leads.ingested"))
        before = await _published(consumer, partitions)
        async with system.async_client("ingest", timeout=600) as ingest:
            queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
            for each in batches:
                queue.put_nowait(each)

            async def send() -> None:
                while not queue.empty():
                    response = await ingest.post(
                        "/v1/leads:batch", json={"leads": queue.get_nowait()}
                    )
                    response.raise_for_status()
                    for key in counts:
                        counts[key] += response.json()[key]

            started = time.perf_counter()
            await asyncio.gather(*(send() for _ in range(senders)))
            accepted_at = time.perf_counter()
        events = counts["created"] + counts["merged"]
        deadline = accepted_at + 600
        while await _published(consumer, partitions) - before < events:
            if time.perf_counter() > deadline:
                raise RuntimeError("the outbox did not drain in 600 s")
            await asyncio.sleep(0.05)
        published_at = time.perf_counter()
    finally:
        await consumer.stop()
    return {
        "leads": leads,
        **counts,
        "accept_per_s": round(leads / (accepted_at - started)),
        "published_per_s": round(events / (published_at - started)),
        "ms_per_batch": round((accepted_at - started) * 1000 / len(batches) * senders),
    }


async def single(system: System, *, leads: int, senders: int = 16) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for index in range(leads):
        queue.put_nowait(lead(index, run))
    latencies: list[float] = []
    async with load_client(system, "ingest") as ingest:

        async def send() -> None:
            while not queue.empty():
                item = queue.get_nowait()
                sent = time.perf_counter()
                async with ingest.post("/v1/leads", json=item) as response:
                    response.raise_for_status()
                    await response.read()
                latencies.append(time.perf_counter() - sent)

        started = time.perf_counter()
        await asyncio.gather(*(send() for _ in range(senders)))
        finished = time.perf_counter()
    return {
        "leads": leads,
        "senders": senders,
        "accept_per_s": round(leads / (finished - started)),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
    }


async def import_file(system: System, *, rows: int) -> dict[str, Any]:
    data, expected = dirty_csv(rows, seed=random.randrange(1_000_000))
    async with system.async_client("ingest", timeout=600) as ingest:
        started = time.perf_counter()
        response = await ingest.post(
            "/v1/imports",
            params={"source": "directory", "campaign": "bench"},
            content=data,
            headers={"content-type": "text/csv"},
        )
        response.raise_for_status()
        import_id = response.json()["import_id"]
        stored_at = time.perf_counter()
        deadline = started + 3_600
        while True:
            report = (await ingest.get(f"/v1/imports/{import_id}", params={"limit": 0})).json()
            if report["status"] in ("done", "failed"):
                break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"import not done in an hour: {report}")
            await asyncio.sleep(0.1)
        done_at = time.perf_counter()
    if report["processed_rows"] != expected["rows"]:
        raise RuntimeError(f"import processed {report['processed_rows']} of {expected['rows']}")
    return {
        "rows": rows,
        "bytes": len(data),
        "created": report["created"],
        "merged": report["merged"],
        "rejected": report["rejected"],
        "store_s": round(stored_at - started, 2),
        "rows_per_s": round(rows / (done_at - started)),
    }


def fill_leads(system: System, *, count: int, batch: int = 50_000) -> float:
    """``count`` leads in ingest's table, none of them a person or phone of the bench's
    leads or files; then ANALYZE (on PostgreSQL). Returns the seconds it took."""
    started = time.perf_counter()
    database = system.database("ingest")
    now = datetime.now(UTC)
    try:
        for first in range(0, count, batch):
            rows = [
                {
                    "id": new_uuid(),
                    "email": f"existing{n}@long-ago.example",
                    "phone": f"+1999{n:09d}",
                    "first_name": "Existing",
                    "last_name": f"Lead {n}",
                    "attributes": {},
                    "free_mail": False,
                    "consent": {},
                    "crm_ids": {},
                    "source": "directory",
                    "touchpoint_count": 1,
                    "created_at": now - timedelta(seconds=n),
                    "updated_at": now,
                }
                for n in range(first, min(first + batch, count))
            ]
            with database.transaction() as session:
                insert_rows(session, table_of(Lead), rows)
        if not database.is_sqlite:
            with database.transaction() as session:
                session.connection().exec_driver_sql("ANALYZE leads")
    finally:
        database.dispose()
    return time.perf_counter() - started


def _median(runs: list[dict[str, Any]], key: str) -> int:
    values: list[float] = [run[key] for run in runs]
    return round(statistics.median(values))


def measure(
    *,
    bootstrap_servers: str,
    backend: str,
    postgres_url: str | None,
    workdir: Path,
    leads: int,
    rows: int,
    runs: int,
    sections: tuple[str, ...] = ("accept", "single", "import"),
    existing_leads: int = 0,
) -> dict[str, Any]:
    """Start ingest alone on ``backend``, run each measurement ``runs`` times."""
    system = System(
        bootstrap_servers=bootstrap_servers,
        postgres_url=postgres_url,
        backend=backend,
        workdir=workdir,
        services=("ingest",),
        fast=False,
    )
    accepts: list[dict[str, Any]] = []
    singles: list[dict[str, Any]] = []
    imports: list[dict[str, Any]] = []
    with system:
        pid = system.process("ingest").pid
        print(f"ingest on {backend}: pid {pid}, {system.url('ingest')}", flush=True)
        if existing_leads:
            seconds = fill_leads(system, count=existing_leads)
            print(f"  {existing_leads} existing leads written in {seconds:.0f} s", flush=True)
        for index in range(runs):
            if "accept" in sections:
                accepts.append(asyncio.run(accept(system, leads=leads)))
                print(f"  accept run {index + 1}: {accepts[-1]}", flush=True)
            if "single" in sections:
                singles.append(asyncio.run(single(system, leads=min(leads, 2_000))))
                print(f"  single run {index + 1}: {singles[-1]}", flush=True)
            if "import" in sections:
                imports.append(asyncio.run(import_file(system, rows=rows)))
                print(f"  import run {index + 1}: {imports[-1]}", flush=True)
    figures: dict[str, Any] = {"database": backend, "existing_leads": existing_leads}
    if accepts:
        figures.update(
            leads=leads,
            accept_per_s=_median(accepts, "accept_per_s"),
            published_per_s=_median(accepts, "published_per_s"),
            accept_runs=[run["accept_per_s"] for run in accepts],
        )
    if singles:
        figures.update(
            single_leads=singles[0]["leads"],
            single_per_s=_median(singles, "accept_per_s"),
            single_p50_ms=_median(singles, "p50_ms"),
            single_p99_ms=_median(singles, "p99_ms"),
            single_runs=[run["accept_per_s"] for run in singles],
        )
    if imports:
        figures.update(
            rows=rows,
            import_rows_per_s=_median(imports, "rows_per_s"),
            import_runs=[run["rows_per_s"] for run in imports],
        )
    return figures
