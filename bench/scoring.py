"""Scoring's two hot paths, on SQLite and PostgreSQL.

* **consumer**: ``leads.ingested`` events through scoring's consumer *in process*: the
  records (encoded CloudEvents, as the broker hands them over) go through
  ``EventConsumer._apply_batch`` in batches of the runtime's fetch size (500), so the figure
  is the handler's cost plus the platform's transaction (idempotency rows, the outbox
  insert, the commit), without the broker. The stream is realistic: 60 % new leads, 40 % a
  new touchpoint on a known lead (some on a lead of the same batch), event times over the
  last weeks, each lead's touchpoints in order. Every event is scored and publishes one
  ``leads.scored`` (checked).
* **activation**: re-scoring every open lead on ``POST /v1/rulebooks/{version}:activate``,
  with the service running (API on 127.0.0.1, workers, the outbox relay on the real
  broker): from just before the request to the broker's acknowledgement of the last
  changed grade (the largest ``published_at`` of the outbox rows it added). The projection
  is seeded directly: leads, their one to four touchpoints and their current scores (graded
  by the engine with the default rulebook, version 1) are written with multi-row inserts;
  5 % of the leads are closed. Version 2 is the default with higher fit bands, so a share
  of the grades changes and is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, insert, select, update

from bench.results import record, table
from services.scoring import rulebook_store
from services.scoring.domain.engine import score_lead
from services.scoring.domain.facts import TouchpointFacts
from services.scoring.handlers import handlers
from services.scoring.models import (
    TABLES,
    LeadRecord,
    RescoreJob,
    ScoreRecord,
    TouchpointRecord,
)
from services.scoring.rescoring import score_row
from services.scoring.rulebooks import default_source
from services.scoring.service import DEFINITION
from services.scoring.settings import ScoringSettings
from shared.cloudevents import Event
from shared.contracts import CompanySnapshot, LeadIngestedV1, LeadSnapshot, Touchpoint, Utm
from shared.db import Database
from shared.db.migrate import upgrade
from shared.http import create_app
from shared.kafka.admin import ensure_topics
from shared.outbox import Outbox
from shared.service import ServiceRuntime
from shared.settings import PlatformSettings
from shared.testing.kafka_tools import consumed, in_process_consumer
from shared.testing.pytest_plugin import serve_app
from shared.topics import TopicNames

BATCH = 500  # the runtime's fetch size (consumer_max_batch)

TITLES = (
    ("CEO", "c_level", "executive"),
    ("CTO", "c_level", "it"),
    ("VP Sales", "vp", "sales"),
    ("VP Engineering", "vp", "engineering"),
    ("Head of Marketing", "director", "marketing"),
    ("IT Director", "director", "it"),
    ("Operations Manager", "manager", "operations"),
    ("Finance Manager", "manager", "finance"),
    ("Analyst", "individual", "finance"),
    ("Engineer", "individual", "engineering"),
    ("Student", None, None),
)
VERTICALS = ("software", "financial_services", "manufacturing", "retail", "education", None)
COUNTRIES = ("DE", "GB", "US", "FR", "NL", "AT", "CH", "SE", "BR", "IN", "CN", None)
EMPLOYEES = (5, 30, 80, 150, 450, 2_000, 15_000, None)
TYPES = (
    ("form_submission", 30),
    ("content_download", 20),
    ("email_click", 15),
    ("webinar_registration", 8),
    ("webinar_attendance", 6),
    ("demo_request", 6),
    ("pricing_request", 4),
    ("contact_request", 3),
    ("directory_listing", 5),
    ("list_import", 3),
)
CAMPAIGNS = ("q4-webinar", "directory-2026", "trade-show-berlin", "ebook-ai", "paid-search")


def snapshot(rng: random.Random, index: int, created_at: datetime) -> LeadSnapshot:
    title, seniority, department = rng.choice(TITLES)
    free_mail = rng.random() < 0.1
    domain = "gmail.com" if free_mail else f"company-{index}.example"
    return LeadSnapshot(
        email=f"person.{index}@{domain}",
        first_name="Alex",
        last_name=f"Example{index}",
        phone=f"+4930{rng.randrange(1_000_000, 9_999_999)}" if rng.random() < 0.7 else None,
        title=title,
        seniority=seniority,
        department=department,
        company=CompanySnapshot(
            name=f"Company {index}",
            domain=None if free_mail else domain,
            vertical=rng.choice(VERTICALS),
            employees=rng.choice(EMPLOYEES),
        ),
        country=rng.choice(COUNTRIES),
        city="Berlin",
        free_mail=free_mail,
        source="web_form",
        campaign=rng.choice(CAMPAIGNS),
        created_at=created_at,
    )


def touchpoint(rng: random.Random, at: datetime) -> Touchpoint:
    kinds, weights = zip(*TYPES, strict=True)
    campaign = rng.choice(CAMPAIGNS)
    return Touchpoint(
        touchpoint_id=uuid.uuid4(),
        type=rng.choices(kinds, weights)[0],
        door=rng.choice(("form", "api", "webhook", "import")),
        source="web_form",
        campaign=campaign,
        utm=Utm(source="linkedin", medium="paid_social", campaign=campaign),
        occurred_at=at,
    )


# ---------------------------------------------------------------------------- the consumer


def ingested_stream(count: int, *, seed: int = 7) -> list[Event[LeadIngestedV1]]:
    """``count`` events in time order: new leads, and touchpoints on known ones (a recent
    lead more often than an old one, now and then one of the same batch)."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=21)
    step = (now - start) / max(count, 1)
    known: list[tuple[uuid.UUID, LeadSnapshot, int]] = []
    events = []
    for index in range(count):
        at = start + step * index
        if known and rng.random() < 0.4:
            # Mostly the last few hundred leads (they are active now), sometimes any.
            recent = rng.random() < 0.7
            pick = rng.randrange(max(0, len(known) - 300), len(known)) if recent else None
            position = pick if pick is not None else rng.randrange(len(known))
            lead_id, lead, touchpoints = known[position]
            touchpoints += 1
            known[position] = (lead_id, lead, touchpoints)
            payload = LeadIngestedV1(
                lead_id=lead_id,
                change="merged",
                merged_on="email",
                lead=lead,
                touchpoint=touchpoint(rng, at),
                touchpoint_count=touchpoints,
            )
        else:
            lead_id = uuid.uuid4()
            lead = snapshot(rng, index, at)
            known.append((lead_id, lead, 1))
            payload = LeadIngestedV1(
                lead_id=lead_id,
                change="created",
                lead=lead,
                touchpoint=touchpoint(rng, at),
                touchpoint_count=1,
            )
        events.append(Event(data=payload, source="/leadflow/ingest", time=at))
    return events


def consumer_throughput(database_url: str, events: list[Event[LeadIngestedV1]]) -> dict[str, Any]:
    """Leads per second through scoring's consumer, in process (see the module's doc)."""
    database = Database(database_url)
    upgrade(DEFINITION.migrations_dir, database)
    consumer = in_process_consumer(
        "scoring",
        handlers=handlers,
        database=database,
        tables=TABLES,
        outbox=Outbox(TABLES, source="/leadflow/scoring"),
    )
    records = consumed(events)
    # Warm up (the default rulebook is installed and compiled) on leads of their own.
    warm = consumed(ingested_stream(50, seed=99), partition=1)
    try:
        consumer._apply_batch(warm)
        outbox_before = _outbox_rows(database)
        seconds = []
        started, cpu_started = time.perf_counter(), time.process_time()
        for first in range(0, len(records), BATCH):
            batch = records[first : first + BATCH]
            began = time.perf_counter()
            outcome = consumer._apply_batch(batch)
            seconds.append(time.perf_counter() - began)
            if outcome.failure is not None or outcome.done != len(batch):
                raise RuntimeError(f"batch failed: {outcome}")
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        emitted = _outbox_rows(database) - outbox_before
    finally:
        database.dispose()
    if emitted != len(events):
        raise RuntimeError(f"{emitted} leads.scored for {len(events)} touchpoints")
    return {
        "events": len(events),
        "seconds": round(elapsed, 2),
        "leads_per_s": round(len(events) / elapsed),
        # This process's CPU time (SQLite's work included, PostgreSQL's server not): on a
        # shared machine, less noisy than the wall clock.
        "cpu_s": round(cpu, 2),
        "leads_per_cpu_s": round(len(events) / cpu),
        "batch_p50_ms": round(statistics.median(seconds) * 1000, 1),
        "batch_max_ms": round(max(seconds) * 1000, 1),
    }


def _outbox_rows(database: Database) -> int:
    with database.read() as session:
        return int(session.execute(select(func.count()).select_from(TABLES.outbox)).scalar_one())


# ---------------------------------------------------------------------------- activation


def seed_projection(database: Database, leads: int, *, seed: int = 11) -> dict[str, Any]:
    """``leads`` leads with their touchpoints and current scores (default rulebook)."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    with database.transaction() as session:
        active = rulebook_store.ensure_active(session=session, now=now)
        rulebook = rulebook_store.compiled(active)
    started = time.perf_counter()
    chunk = 5_000
    touchpoints_total = 0
    for first in range(0, leads, chunk):
        lead_rows: list[dict[str, Any]] = []
        touch_rows: list[dict[str, Any]] = []
        score_rows: list[dict[str, Any]] = []
        for index in range(first, min(first + chunk, leads)):
            lead_id = uuid.uuid4()
            created = now - timedelta(days=rng.uniform(1, 90))
            lead = snapshot(rng, index, created)
            count = rng.choice((1, 1, 1, 2, 2, 3, 4))
            facts = []
            for number in range(count):
                at = created + (now - created) * (number / count)
                tp = touchpoint(rng, at)
                facts.append(TouchpointFacts.from_contract(tp))
                touch_rows.append(
                    {
                        "touchpoint_id": tp.touchpoint_id,
                        "lead_id": lead_id,
                        "type": tp.type,
                        "door": tp.door,
                        "source": tp.source,
                        "campaign": tp.campaign,
                        "reference": tp.reference,
                        "utm_source": tp.utm.source,
                        "utm_medium": tp.utm.medium,
                        "utm_campaign": tp.utm.campaign,
                        "utm_term": tp.utm.term,
                        "utm_content": tp.utm.content,
                        "occurred_at": tp.occurred_at,
                    }
                )
            closed = rng.random() < 0.05
            lead_rows.append(
                {
                    "lead_id": lead_id,
                    "snapshot": lead.model_dump(mode="json"),
                    "touchpoint_count": count,
                    "company_domain": lead.company.domain,
                    "account_id": None,
                    "closed": closed,
                    "status": "won" if closed else None,
                    "created_at": created,
                    "updated_at": now,
                }
            )
            score = score_lead(rulebook, lead, facts, now=now)
            score_rows.append(
                score_row(
                    lead_id=lead_id,
                    score=score,
                    trigger="touchpoint",
                    touchpoint_id=facts[-1].touchpoint_id,
                    next_check_at=None if closed else score.next_check_at,
                )
            )
            touchpoints_total += count
        with database.transaction() as session:
            session.execute(insert(LeadRecord), lead_rows)
            session.execute(insert(TouchpointRecord), touch_rows)
            session.execute(insert(ScoreRecord), score_rows)
    return {
        "seeded_leads": leads,
        "seeded_touchpoints": touchpoints_total,
        "seed_s": round(time.perf_counter() - started, 1),
    }


def stricter_rulebook() -> str:
    """Version 2: the default with higher fit bands (a share of the grades moves down)."""
    source = default_source()
    old = "fit_bands: {high: 60, medium: 35, low: null}"
    assert old in source
    return source.replace("name: default", "name: bench-stricter", 1).replace(
        old, "fit_bands: {high: 65, medium: 40, low: null}"
    )


async def activation(
    *, bootstrap_servers: str, database_url: str, leads: int, batch_size: int | None = None
) -> dict[str, Any]:
    """Seconds from the activation request to the last changed grade published."""
    database = Database(database_url)
    upgrade(DEFINITION.migrations_dir, database)
    seeded = seed_projection(database, leads)
    with database.transaction() as session:
        version = rulebook_store.create(
            session=session,
            source=stricter_rulebook(),
            media="yaml",
            now=datetime.now(UTC),
        ).version
        # The relay must not spend the measured time on anything else.
        session.execute(update(TABLES.outbox).values(published_at=datetime.now(UTC)))
    names = TopicNames(f"benchscoring{uuid.uuid4().hex[:8]}")
    await ensure_topics(bootstrap_servers, names)
    overrides: dict[str, Any] = {
        "database_url": database_url,
        "platform": PlatformSettings(
            kafka_bootstrap_servers=bootstrap_servers, topic_namespace=names.namespace
        ),
        "outbox_poll_interval_ms": 200,
    }
    if batch_size is not None:
        overrides["rescore_batch_size"] = batch_size
    settings = ScoringSettings(**overrides)
    runtime = ServiceRuntime(DEFINITION, settings)
    async with serve_app(create_app(runtime)) as url, httpx.AsyncClient(base_url=url) as client:
        await asyncio.sleep(1.0)  # the producer connected, the workers idle
        requested = datetime.now(UTC)
        started, cpu_started = time.perf_counter(), time.process_time()
        answer = await client.post(f"/v1/rulebooks/{version}:activate", timeout=60)
        answer.raise_for_status()
        job_id = answer.json()["rescore"]["job_id"]
        job = await asyncio.to_thread(_wait_until_published, database, job_id, 3_600)
        waited = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    with database.read() as session:
        last_published = session.execute(
            select(func.max(TABLES.outbox.c.published_at)).where(
                TABLES.outbox.c.created_at >= requested
            )
        ).scalar_one()
    database.dispose()
    end = last_published or job.finished_at or requested
    seconds = max((end - requested).total_seconds(), 0.001)
    rescore_seconds = ((job.finished_at or end) - job.created_at).total_seconds()
    return {
        "leads": leads,
        "open_leads": job.leads_rescored,
        "grades_changed": job.grades_changed,
        "seconds": round(seconds, 2),
        "leads_per_s": round(job.leads_rescored / seconds),
        "rescore_s": round(rescore_seconds, 2),
        # The service's process (API, workers, relay; SQLite's work included): CPU seconds.
        "cpu_s": round(cpu, 2),
        "observed_s": round(waited, 2),
        **seeded,
    }


def _wait_until_published(database: Database, job_id: int, timeout: float) -> RescoreJob:
    deadline = time.monotonic() + timeout
    outbox = TABLES.outbox
    while time.monotonic() < deadline:
        with database.read() as session:
            job = session.get(RescoreJob, job_id)
            assert job is not None
            pending = session.execute(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            ).scalar_one()
        if job.status == "done" and not pending:
            return job
        if job.status == "superseded":
            raise RuntimeError("the re-scoring job was superseded")
        time.sleep(0.25)
    raise RuntimeError("re-scoring did not finish in time")


# ---------------------------------------------------------------------------- the section


def run(
    *,
    bootstrap_servers: str,
    backends: list[str],
    postgres_database: Callable[[], contextlib.AbstractContextManager[str]],
    events: int,
    leads: int,
    runs: int = 1,
) -> dict[str, Any]:
    """Both measurements on each backend, ``runs`` times each; medians are reported."""
    stream = ingested_stream(events)
    rows: list[dict[str, Any]] = []
    for backend in backends:
        for _ in range(runs):
            with _database(backend, postgres_database) as url:
                figures = consumer_throughput(url, stream)
            rows.append({"database": backend, "path": "consumer", **figures})
            print(table(rows[-1:], list(rows[-1])), flush=True)
        for _ in range(runs):
            with _database(backend, postgres_database) as url:
                figures = asyncio.run(
                    activation(bootstrap_servers=bootstrap_servers, database_url=url, leads=leads)
                )
            rows.append({"database": backend, "path": "activation", **figures})
            print(table(rows[-1:], list(rows[-1])), flush=True)
    summary = []
    for backend in backends:
        for path in ("consumer", "activation"):
            mine = [row for row in rows if row["database"] == backend and row["path"] == path]
            if not mine:
                continue
            size = mine[0].get("events") or mine[0].get("leads")
            summary.append(
                {
                    "database": backend,
                    "path": path,
                    "what": (
                        f"{size:,} leads.ingested through the consumer"
                        if path == "consumer"
                        else f"re-scoring {size:,} leads on rulebook activation"
                    ),
                    "size": size,
                    "runs": len(mine),
                    "seconds": statistics.median(row["seconds"] for row in mine),
                    "min_s": min(row["seconds"] for row in mine),
                    "max_s": max(row["seconds"] for row in mine),
                    "leads_per_s": statistics.median(row["leads_per_s"] for row in mine),
                    "cpu_s": round(statistics.median(row["cpu_s"] for row in mine), 2),
                }
            )
    figures = {"method": __doc__, "runs": rows, "summary": summary}
    record("scoring", figures)
    return figures


@contextlib.contextmanager
def _database(
    backend: str, postgres_database: Callable[[], contextlib.AbstractContextManager[str]]
) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as scratch:
            yield f"sqlite:///{scratch}/scoring.db"
    else:
        with postgres_database() as url:
            yield url


SUMMARY_COLUMNS = ["database", "what", "runs", "seconds", "min_s", "max_s", "leads_per_s", "cpu_s"]
