"""Routing's consumer: leads per second through its handlers, on SQLite and PostgreSQL.

In process, without the broker: records of ``leads.scored`` and ``leads.feedback`` (made
ready before the clock starts) are handed to :meth:`EventConsumer._apply_batch` of routing's
own consumer, batch after batch, as the consumer loop does after a ``getmany``. Each batch
is one transaction: decode, skip duplicates, the handlers (lock, decide, store, emit into the
outbox), the processed-events insert, the commit. What is measured is the cost of routing's
hop minus the broker: the platform's fast path plus routing's handlers.

The configuration is a realistic one (:func:`configure`): 13 teams over territories by
country, region and postal prefix, ~120 reps in their own time zones and working hours
(some with public-holiday calendars, some inactive or out of office, capacities from 10 to
400, weights 1-3), 300 named accounts and nurture programs per grade and vertical. The
stream (:func:`workload`) is mostly new leads with a grade mix of A 15 %, B 25 %, C 35 %,
D 25 % from ten countries (one served by no team), with re-scores of known leads (some
rising from C/D to A/B), feedback on routed leads (contacted, accepted, rejected,
converted) and a little feedback before its lead.

Two batch sizes: ``flood`` (500, what a consumer reads when it is behind) gives the
sustained rate; ``trickle`` (20) the per-transaction cost that matters at a low offered rate.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from shared.cloudevents import Event
from shared.contracts import (
    VERTICALS,
    CompanySnapshot,
    EventPayload,
    LeadScoredV1,
)
from shared.db import Database
from shared.db.migrate import upgrade
from shared.kafka.consumer import EventConsumer, Record
from shared.observability.logs import configure_logging
from shared.outbox import Outbox
from shared.testing import factories
from shared.testing.kafka_tools import consumed

# A Tuesday, 10:00 UTC: inside European working hours, before American ones.
START = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
GRADES = (("A", 0.15), ("B", 0.25), ("C", 0.35), ("D", 0.25))

# (team id, territories, verticals, reps, time zone)
TEAMS: tuple[tuple[str, list[str], list[str], int, str], ...] = (
    ("dach-software", ["de", "at", "ch"], ["software", "it_services"], 14, "Europe/Berlin"),
    ("dach", ["de", "at", "ch"], [], 12, "Europe/Berlin"),
    ("de-south", ["de-by", "de-bw"], [], 8, "Europe/Berlin"),
    ("de-munich", ["de-munich"], [], 4, "Europe/Berlin"),
    ("uk-london", ["gb-london"], [], 8, "Europe/London"),
    ("uk", ["gb"], [], 10, "Europe/London"),
    ("france", ["fr"], [], 8, "Europe/Paris"),
    ("benelux", ["nl", "be"], [], 6, "Europe/Amsterdam"),
    ("nordics", ["se", "dk", "no"], [], 5, "Europe/Stockholm"),
    ("us-west", ["us-ca", "us-wa"], [], 12, "America/Los_Angeles"),
    ("us-east", ["us-ny", "us-ma"], [], 12, "America/New_York"),
    ("us-health", ["us"], ["healthcare", "life_sciences"], 8, "America/Chicago"),
    ("southern-europe", ["es", "it"], [], 6, "Europe/Madrid"),
)
# (territory id, country, region, postal prefixes)
TERRITORIES: tuple[tuple[str, str, str | None, list[str]], ...] = (
    ("de", "DE", None, []),
    ("de-by", "DE", "DE-BY", []),
    ("de-bw", "DE", "DE-BW", []),
    ("de-munich", "DE", "DE-BY", ["80", "81", "85"]),
    ("at", "AT", None, []),
    ("ch", "CH", None, []),
    ("gb", "GB", None, []),
    ("gb-london", "GB", None, ["EC", "WC", "E1", "N1", "SW1", "W1"]),
    ("fr", "FR", None, []),
    ("nl", "NL", None, []),
    ("be", "BE", None, []),
    ("se", "SE", None, []),
    ("dk", "DK", None, []),
    ("no", "NO", None, []),
    ("es", "ES", None, []),
    ("it", "IT", None, []),
    ("us", "US", None, []),
    ("us-ca", "US", "US-CA", []),
    ("us-wa", "US", "US-WA", []),
    ("us-ny", "US", "US-NY", []),
    ("us-ma", "US", "US-MA", []),
)


def _digits(low: int, high: int, suffix: str = "") -> Callable[[random.Random], str]:
    return lambda rng: f"{rng.randrange(low, high)}{suffix}"


# Where leads come from: (country, regions, postal code maker, weight).
LONDON = ("EC1A 1BB", "SW1A 2AA", "M1 1AE", "B1 1AA", "W1A 0AX", "N1 9GU")
PLACES: tuple[tuple[str, tuple[str | None, ...], Callable[[random.Random], str], float], ...] = (
    ("DE", ("DE-BY", "DE-BW", "DE-BE", "DE-NW", "DE-HE"), _digits(10000, 99999), 0.25),
    ("GB", (None,), lambda rng: rng.choice(LONDON), 0.12),
    ("US", ("US-CA", "US-NY", "US-TX", "US-WA", "US-MA", "US-IL"), _digits(10000, 99999), 0.25),
    ("FR", (None,), _digits(10000, 95999), 0.08),
    ("NL", (None,), _digits(1000, 9999, " AB"), 0.06),
    ("AT", (None,), _digits(1000, 9999), 0.04),
    ("CH", (None,), _digits(1000, 9999), 0.04),
    ("SE", (None,), _digits(10000, 99999), 0.04),
    ("ES", (None,), _digits(10000, 52999), 0.06),
    ("BR", (None,), _digits(10000, 99999, "-000"), 0.06),
)
HOURS = (
    {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    {day: ["08:00-12:00", "13:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    {**{day: ["10:00-18:00"] for day in ("mon", "tue", "wed", "thu")}, "fri": ["10:00-14:00"]},
    {**{day: ["09:00-17:00"] for day in ("tue", "wed", "thu", "fri")}, "sat": ["10:00-14:00"]},
)
CALENDARS = {"Europe/Berlin": "DE-BY", "America/Los_Angeles": "US-CA", "Europe/London": "GB"}
NAMED_ACCOUNTS = 300


def configure(database: Database, *, seed: int = 7) -> dict[str, Any]:
    """Write the bench's configuration; answer its size and the named-account domains."""
    from services.routing.models import (
        NamedAccountRow,
        NurtureProgramRow,
        RepAbsenceRow,
        RepRow,
        TeamRow,
        TerritoryRow,
    )

    rng = random.Random(seed)
    stamp: dict[str, Any] = {"created_at": START, "updated_at": START}
    rep_ids: list[str] = []
    domains = [f"account-{index}.example.com" for index in range(NAMED_ACCOUNTS)]
    with database.transaction() as session:
        for territory_id, country, region, prefixes in TERRITORIES:
            session.add(
                TerritoryRow(
                    territory_id=territory_id,
                    country=country,
                    region=region,
                    postal_prefixes=prefixes,
                    **stamp,
                )
            )
        for team_id, territory_ids, verticals, reps, zone in TEAMS:
            session.add(
                TeamRow(team_id=team_id, territory_ids=territory_ids, verticals=verticals, **stamp)
            )
            for index in range(reps):
                rep_id = f"{team_id}-{index:02d}"
                rep_ids.append(rep_id)
                session.add(
                    RepRow(
                        rep_id=rep_id,
                        team_id=team_id,
                        name=f"Rep {rep_id}",
                        email=f"{rep_id}@example.com",
                        crm_user_id=f"crm-{rep_id}",
                        time_zone=zone,
                        working_hours=rng.choice(HOURS),
                        holidays=["2026-04-03"] if rng.random() < 0.2 else [],
                        holiday_calendar=CALENDARS.get(zone) if rng.random() < 0.5 else None,
                        capacity=rng.choice((10, 40, 100, 400)),
                        weight=rng.choice((1, 1, 1, 2, 3)),
                        active=rng.random() > 0.05,
                        **stamp,
                    )
                )
                if rng.random() < 0.08:  # out of office now, or some time later
                    starts = START - timedelta(days=rng.choice((2, -3)))
                    session.add(
                        RepAbsenceRow(
                            rep_id=rep_id,
                            starts_at=starts,
                            ends_at=starts + timedelta(days=7),
                            created_at=START,
                        )
                    )
        for domain in domains:
            session.add(NamedAccountRow(domain=domain, rep_id=rng.choice(rep_ids), **stamp))
        programs = [
            ("nurture-c", ["C"], []),
            ("nurture-d", ["D"], []),
            ("nurture-c-software", ["C"], ["software", "it_services"]),
            ("nurture-healthcare", ["C", "D"], ["healthcare", "life_sciences"]),
            ("nurture-finance", ["C", "D"], ["financial_services", "insurance"]),
        ]
        for program_id, grades, verticals in programs:
            session.add(
                NurtureProgramRow(
                    program_id=program_id, grades=grades, verticals=verticals, **stamp
                )
            )
    return {
        "teams": len(TEAMS),
        "territories": len(TERRITORIES),
        "reps": len(rep_ids),
        "named_accounts": len(domains),
        "programs": len(programs),
        "domains": domains,
    }


def workload(count: int, *, domains: Sequence[str], seed: int = 11) -> list[EventPayload]:
    """``count`` events in the order routing would read them (see the module docstring)."""
    rng = random.Random(seed)
    events: list[EventPayload] = []
    known: list[LeadScoredV1] = []
    sales: list[uuid.UUID] = []
    moment = START - timedelta(hours=1)

    def tick() -> datetime:
        nonlocal moment
        moment += timedelta(milliseconds=50)
        return moment

    def new_lead(index: int) -> LeadScoredV1:
        country, regions, postal, _ = rng.choices(PLACES, weights=[p[3] for p in PLACES])[0]
        grade = rng.choices([g for g, _ in GRADES], weights=[w for _, w in GRADES])[0]
        named = rng.random() < 0.05
        company = CompanySnapshot(
            name=f"Company {index}",
            domain=rng.choice(domains) if named else f"company-{index}-{seed}.com",
            vertical=rng.choice(VERTICALS),
            employees=rng.choice((12, 80, 450, 2_000, 15_000)),
        )
        snapshot = factories.lead_snapshot(
            email=f"person{index}@company-{index}.com",
            country=country,
            region=rng.choice(regions),
            postal_code=postal(rng),
            company=company,
            created_at=moment,
        )
        return factories.lead_scored(grade=grade, lead=snapshot, scored_at=tick())

    index = 0
    while len(events) < count:
        roll = rng.random()
        if roll < 0.10 and sales:
            lead_id = rng.choice(sales)
            status = rng.choices(
                ("contacted", "accepted", "rejected", "converted"), weights=(40, 25, 25, 10)
            )[0]
            reason = (
                rng.choice(("wrong_target", "no_need", "no_timeframe", "bad_data"))
                if status == "rejected"
                else None
            )
            events.append(
                factories.lead_feedback(
                    lead_id=lead_id,
                    status=status,
                    rejection_reason=reason,
                    opportunity_id=f"opp-{index}" if status == "converted" else None,
                    amount=rng.choice((5_000, 25_000, 120_000)) if status == "converted" else None,
                    currency="EUR" if status == "converted" else None,
                    occurred_at=tick(),
                )
            )
        elif roll < 0.15 and known:
            earlier = rng.choice(known)
            grade = rng.choice(("A", "B", "C", "D"))
            payload = earlier.model_copy(
                update={
                    "grade": grade,
                    "previous_grade": earlier.grade,
                    "trigger": rng.choice(("touchpoint", "decay")),
                    "scored_at": tick(),
                }
            )
            events.append(payload)
            if grade in ("A", "B"):
                sales.append(payload.lead_id)
        else:
            index += 1
            payload = new_lead(index)
            if rng.random() < 0.01:  # its feedback overtakes it
                events.append(
                    factories.lead_feedback(
                        lead_id=payload.lead_id, status="contacted", occurred_at=tick()
                    )
                )
            events.append(payload)
            known.append(payload)
            if payload.grade in ("A", "B"):
                sales.append(payload.lead_id)
    return events[:count]


def routing_consumer(database: Database, clock: Callable[[], datetime]) -> EventConsumer:
    from services.routing.handlers import build_handlers
    from services.routing.models import TABLES

    return EventConsumer(
        name="routing-bench",
        service="routing",
        handlers=build_handlers(clock),
        db=database,
        tables=TABLES,
        outbox=Outbox(TABLES, "/leadflow/routing"),
        bootstrap_servers="unused:9092",
    )


def migrated(url: str) -> Database:
    from services.routing.service import DEFINITION

    database = Database(url)
    upgrade(DEFINITION.migrations_dir, database)
    return database


def outcomes(database: Database) -> dict[str, int]:
    from services.routing.models import AssignmentRow

    with database.read() as session:
        rows = session.execute(
            select(col(AssignmentRow.outcome), func.count()).group_by(col(AssignmentRow.outcome))
        ).all()
    return {str(outcome): int(count) for outcome, count in rows}


def run_once(url: str, *, events: int, batch: int, warmup: int = 200) -> dict[str, Any]:
    """Configure a fresh database, route ``warmup`` events untimed, then ``events`` timed."""
    database = migrated(url)
    try:
        config = configure(database)
        payloads = workload(warmup + events, domains=config["domains"])
        stream = consumed([Event(data=payload, source="/bench") for payload in payloads])
        consumer = routing_consumer(database, lambda: START + timedelta(hours=2))
        for start in range(0, warmup, batch):
            _apply(consumer, stream[start : min(start + batch, warmup)])
        timed = stream[warmup:]
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(timed), batch):
            _apply(consumer, timed[start : start + batch])
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        return {
            "events": len(timed),
            "batch": batch,
            "events_per_s": round(len(timed) / elapsed),
            "ms_per_event": round(elapsed * 1000 / len(timed), 3),
            # This process's CPU only (not the database server's): steadier than the wall
            # clock on a machine shared with other work.
            "cpu_ms_per_event": round(cpu * 1000 / len(timed), 3),
            "outcomes": outcomes(database),
            "reps": config["reps"],
        }
    finally:
        database.dispose()


def _apply(consumer: EventConsumer, records: Sequence[Record]) -> None:
    outcome = consumer._apply_batch(records)
    if outcome.failure is not None or outcome.done != len(records):
        raise RuntimeError(f"batch stopped at {outcome.done}: {outcome.failure}")


@contextmanager
def database_url(backend: str, scratch: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{scratch}/routing-{uuid.uuid4().hex[:8]}.db"
        return
    from bench.__main__ import postgres_database

    with postgres_database() as url:
        yield url


def run(
    *, backends: Sequence[str], events: int, repeat: int, batches: Sequence[tuple[str, int]]
) -> list[dict[str, Any]]:
    """Every (backend, batch size) ``repeat`` times, alternating; the median of each."""
    configure_logging(service="bench", level="ERROR", fmt="console")  # no line per lead
    samples: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(repeat):
            for backend in backends:
                for mode, size in batches:
                    with ExitStack() as stack:
                        url = stack.enter_context(database_url(backend, scratch))
                        figures = run_once(url, events=events, batch=size)
                    samples.setdefault((backend, mode), []).append(figures)
                    print(
                        f"  {backend:<10} {mode:<8} batch {size:>3}: "
                        f"{figures['events_per_s']:>6} events/s, "
                        f"{figures['cpu_ms_per_event']:.3f} ms CPU/event",
                        flush=True,
                    )
    rows = []
    for (backend, mode), runs in samples.items():
        rates = [run["events_per_s"] for run in runs]
        cpus = [run["cpu_ms_per_event"] for run in runs]
        rows.append(
            {
                "database": backend,
                "mode": mode,
                "batch": runs[0]["batch"],
                "events": runs[0]["events"],
                "runs": len(runs),
                "events_per_s": round(statistics.median(rates)),
                "min": min(rates),
                "max": max(rates),
                "ms_per_event": round(1000 / statistics.median(rates), 3),
                "cpu_ms_per_event": round(statistics.median(cpus), 3),
                "outcomes": runs[0]["outcomes"],
            }
        )
    return rows


def profile(backend: str = "sqlite", *, events: int = 2_000, batch: int = 500) -> None:
    """``python -m bench.routing [sqlite|postgresql]``: one flood run under cProfile."""
    import cProfile
    import pstats

    configure_logging(service="bench", level="ERROR", fmt="console")
    with tempfile.TemporaryDirectory() as scratch, database_url(backend, scratch) as url:
        profiler = cProfile.Profile()
        profiler.enable()
        figures = run_once(url, events=events, batch=batch)
        profiler.disable()
    print(figures)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)


if __name__ == "__main__":
    import sys

    profile(*sys.argv[1:2])
