"""End to end: leads accepted by ingest until routed, every service a process of its own.

* throughput: leads posted in batches as fast as ingest takes them; the figure is leads per
  second from the first accepted batch to the last lead seen on ``leads.routed``;
* latency: leads posted one by one at a fixed offered rate; per lead, from ingest's 202 to
  its ``leads.routed`` record seen by a consumer of the bench;
* the physical limit, measured in the same run: a raw aiokafka relay over the same three
  hops (produce, consume and produce twice, consume) with the same payload sizes;
* reporting's rebuild: every topic of the run replayed into its read model.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from bench.runtime_roundtrip import percentile
from shared.kafka.admin import ensure_topics
from shared.testing.kafka_tools import assign_whole_topic
from shared.topics import CATALOG, TopicNames
from tests.system import System

COUNTRIES = ("DE", "GB", "FR", "US", "NL", "AT", "CH", "SE", "ES", "IT")
TITLES = ("VP Sales", "Head of Marketing", "CTO", "Operations Manager", "Analyst", "CFO")
INDUSTRIES = ("Software", "Banking", "Hospital", "Manufacturing", "Retail", "Insurance")
CAMPAIGNS = ("q4-webinar", "directory-2026", "trade-show-berlin", "ebook-ai", "paid-search")


def lead(index: int, run: str) -> dict[str, Any]:
    """A realistic lead, unique per run (dedup would merge repeats into touchpoints)."""
    rng = random.Random(index)
    company = f"Company {index} {run}"
    return {
        "email": f"person.{index}.{run}@company-{index}-{run}.com",
        "first_name": "Alex",
        "last_name": f"Example{index}",
        "phone": f"+4930{rng.randrange(1_000_000, 9_999_999)}",
        "company": company,
        "title": rng.choice(TITLES),
        "industry": rng.choice(INDUSTRIES),
        "employees": rng.choice((12, 80, 450, 2_000, 15_000)),
        "country": rng.choice(COUNTRIES),
        "source": "web_form",
        "campaign": rng.choice(CAMPAIGNS),
        "touchpoint_type": rng.choice(("form_submission", "demo_request", "content_download")),
    }


def _cpu_seconds(stat_path: str, *, with_ended_children: bool = False) -> tuple[str, float]:
    """A process's command and the CPU time it has used so far (Linux /proc), with that of
    its ended children if asked (PostgreSQL's backends come and go)."""
    with open(stat_path) as stat:
        head, _, rest = stat.read().rpartition(")")
    fields = rest.split()
    ticks = sum(int(value) for value in fields[11 : 15 if with_ended_children else 13])
    return head.partition("(")[2], ticks / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    return _cpu_seconds(f"/proc/{pid}/stat")[1]


def machine_busy_seconds() -> float:
    """CPU time every core of the machine has spent not idle so far (Linux /proc)."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_by_command(commands: Iterable[str]) -> dict[str, float]:
    """CPU time so far of every process of each command (``java``: the broker, ``postgres``:
    the server and its backends), with that of their children that ended."""
    totals = dict.fromkeys(commands, 0.0)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            command, seconds = _cpu_seconds(f"/proc/{entry.name}/stat", with_ended_children=True)
        except OSError:
            continue  # gone meanwhile
        if command in totals:
            totals[command] += seconds
    return totals


def service_pids(system: System) -> dict[str, int]:
    """Each service process of the system by name (``routing-0``, a second replica
    ``routing-1``), with its pid."""
    return {
        process.name: process.pid
        for processes in system.processes.values()
        for process in processes
    }


class CpuMeter:
    """CPU spent per lead by each service process, the broker (every JVM on the machine),
    PostgreSQL and the whole machine (the bench itself included) between :meth:`start` and
    :meth:`per_lead`."""

    def __init__(self, system: System) -> None:
        self.pids = service_pids(system)
        self.started: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        now = {name: process_cpu_seconds(pid) for name, pid in self.pids.items()}
        by_command = cpu_seconds_by_command(("java", "postgres"))
        now["broker"], now["postgresql"] = by_command["java"], by_command["postgres"]
        now["machine"] = machine_busy_seconds()
        return now

    def start(self) -> None:
        self.started = self._now()
        self.started_at = time.perf_counter()

    def machine_busy(self) -> float:
        """The share of the machine's cores busy since :meth:`start`, whoever's work it was."""
        elapsed = time.perf_counter() - self.started_at
        busy = machine_busy_seconds() - self.started["machine"]
        return round(busy / (elapsed * (os.cpu_count() or 1)), 2)

    def per_lead(self, leads: int) -> dict[str, float]:
        """Milliseconds of CPU per lead, by process, and for the machine."""
        now = self._now()
        return {name: round((now[name] - self.started[name]) * 1000 / leads, 2) for name in now}


@dataclass
class _Histogram:
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound: cumulative count
    total: float = 0.0

    def minus(self, earlier: _Histogram | None) -> _Histogram:
        if earlier is None:
            return self
        buckets = {bound: n - earlier.buckets.get(bound, 0.0) for bound, n in self.buckets.items()}
        return _Histogram(buckets, self.total - earlier.total)

    @property
    def count(self) -> float:
        return self.buckets.get(math.inf, 0.0)

    def quantile(self, q: float) -> float:
        """As Prometheus' histogram_quantile: linear within the bucket the rank falls in."""
        rank = q * self.count
        lower, below = 0.0, 0.0
        for bound, count in sorted(self.buckets.items()):
            if count >= rank:
                if math.isinf(bound):
                    return lower
                share = (rank - below) / (count - below) if count > below else 1.0
                return lower + (bound - lower) * share
            lower, below = bound, count
        return lower


def _step_name(family: str, labels: dict[str, str]) -> str | None:
    """The services' histograms of a hop's parts (shared.observability.metrics), named."""
    if family == "leadflow_consumer_wait_seconds":
        return f"wait {labels['topic']}"
    if family == "leadflow_consumer_batch_seconds":
        return labels["step"]
    if family == "leadflow_outbox_delay_seconds":
        return "outbox"
    return None


def _step_histograms(exposition: str) -> dict[str, _Histogram]:
    """A service's step histograms from its /metrics text, by name: ``wait <topic>``,
    ``transaction``, ``offset_commit``, ``outbox``."""
    found: dict[str, _Histogram] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            name = _step_name(family.name, sample.labels)
            if name is None:
                continue
            histogram = found.setdefault(name, _Histogram())
            if sample.name.endswith("_bucket"):
                histogram.buckets[float(sample.labels["le"])] = sample.value
            elif sample.name.endswith("_sum"):
                histogram.total = sample.value
    return found


class StepMeter:
    """Where a hop's time went, from the services' own histograms between :meth:`start` and
    :meth:`report`: how long records waited to be handled, each batch's transaction and
    offset commit, and the outbox (row to broker's ack); mean, p50 and p99 in ms (the
    quantiles interpolated within the histograms' buckets)."""

    def __init__(self, system: System) -> None:
        self.urls = {
            process.name: process.url
            for processes in system.processes.values()
            for process in processes
        }
        self.started: dict[str, dict[str, _Histogram]] = {}

    async def _now(self) -> dict[str, dict[str, _Histogram]]:
        async with aiohttp.ClientSession() as client:

            async def scrape(url: str) -> dict[str, _Histogram]:
                async with client.get(f"{url}/metrics") as response:
                    response.raise_for_status()
                    return _step_histograms(await response.text())

            found = await asyncio.gather(*(scrape(url) for url in self.urls.values()))
        return dict(zip(self.urls, found, strict=True))

    async def start(self) -> None:
        self.started = await self._now()

    async def report(self) -> dict[str, dict[str, dict[str, float]]]:
        now = await self._now()
        report: dict[str, dict[str, dict[str, float]]] = {}
        for process, histograms in now.items():
            for name, histogram in sorted(histograms.items()):
                during = histogram.minus(self.started.get(process, {}).get(name))
                if not during.count:
                    continue
                report.setdefault(process, {})[name] = {
                    "mean": round(during.total / during.count * 1000, 1),
                    "p50": round(during.quantile(0.50) * 1000, 1),
                    "p99": round(during.quantile(0.99) * 1000, 1),
                    "count": int(during.count),
                }
        return report


def configure_routing(system: System, reps: int = 40) -> None:
    """One team for everywhere, reps who are always working with room for any load, and a
    nurture program: every lead gets a decision."""
    with system.client("routing") as routing:
        routing.post(
            "/v1/teams", json={"team_id": "everyone", "name": "Everyone"}
        ).raise_for_status()
        hours = {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
        for index in range(reps):
            routing.post(
                "/v1/reps",
                json={
                    "rep_id": f"rep-{index}",
                    "team_id": "everyone",
                    "name": f"Rep {index}",
                    "time_zone": "UTC",
                    "working_hours": hours,
                    "capacity": 100_000,
                },
            ).raise_for_status()
        routing.post(
            "/v1/programs", json={"program_id": "nurture", "grades": ["C", "D"]}
        ).raise_for_status()


@dataclass
class TopicWatcher:
    """Reads a topic from the end as the run starts; notes, for each lead, when its first
    record showed up here (``seen``, :func:`time.perf_counter`) and when it was produced
    (``produced``, the record's timestamp: the relay's clock as it sent it, seconds since the
    epoch; the bench and the services share the machine's clock)."""

    bootstrap_servers: str
    topic: str
    seen: dict[str, float] = field(default_factory=dict)
    produced: dict[str, float] = field(default_factory=dict)

    async def __aenter__(self) -> TopicWatcher:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False
        )
        await self._consumer.start()
        assignment = await assign_whole_topic(self._consumer, self.topic)
        await self._consumer.seek_to_end(*assignment)
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    lead_id = json.loads(record.value)["lead_id"]
                    if lead_id not in self.seen:
                        self.seen[lead_id] = now
                        self.produced[lead_id] = record.timestamp / 1000

    async def wait_for(self, lead_ids: Iterable[str], timeout: float) -> None:
        wanted = set(lead_ids)
        deadline = time.perf_counter() + timeout
        while not wanted <= self.seen.keys():
            if time.perf_counter() > deadline:
                missing = len(wanted - self.seen.keys())
                raise RuntimeError(
                    f"{missing} of {len(wanted)} leads not on {self.topic} in {timeout}s"
                )
            await asyncio.sleep(0.1)

    async def __aexit__(self, *_exc: object) -> None:
        self._task.cancel()
        await self._consumer.stop()


async def throughput(
    system: System, *, leads: int, batch: int = 500, senders: int = 2
) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    batches = [
        [lead(index, run) for index in range(start, min(start + batch, leads))]
        for start in range(0, leads, batch)
    ]
    accepted: list[str] = []
    async with (
        TopicWatcher(system.bootstrap_servers, system.topics.physical("leads.routed")) as watcher,
        system.async_client("ingest", timeout=300) as ingest,
    ):
        cpu = CpuMeter(system)
        cpu.start()
        started = time.perf_counter()
        queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        for item in batches:
            queue.put_nowait(item)

        async def send() -> None:
            while not queue.empty():
                items = queue.get_nowait()
                response = await ingest.post("/v1/leads:batch", json={"leads": items})
                response.raise_for_status()
                accepted.extend(result["lead_id"] for result in response.json()["results"])

        await asyncio.gather(*(send() for _ in range(senders)))
        accepted_at = time.perf_counter()
        await watcher.wait_for(accepted, timeout=3_600)
        finished = max(watcher.seen[lead_id] for lead_id in accepted)
        # Up to the last lead routed: reporting and delivery are still at work then, and
        # count with what they did so far.
        cpu_ms = cpu.per_lead(len(accepted))
        busy = cpu.machine_busy()
    return {
        "leads": len(accepted),
        "accept_per_s": round(len(accepted) / (accepted_at - started)),
        "routed_per_s": round(len(accepted) / (finished - started)),
        "seconds": round(finished - started, 1),
        "cpu_ms_per_lead": cpu_ms,
        "machine_busy": busy,
    }


def load_client(system: System, service: str) -> aiohttp.ClientSession:
    """The client that offers the load: aiohttp, which costs the machine under test a tenth
    of httpx's CPU a request (0.2-0.3 ms against ~3 ms measured here; at 200 requests a
    second httpx alone took more than half a core from the services it measured)."""
    return aiohttp.ClientSession(
        base_url=system.url(service),
        headers=system.headers(service),
        timeout=aiohttp.ClientTimeout(total=600),
    )


async def latency(system: System, *, leads: int, rate: float) -> dict[str, Any]:
    """Accept -> routed per lead, and where it went, hop by hop (p50 and p99 of each, in
    ms): ``ingest`` from the 202 to leads.ingested produced (commit, outbox relay),
    ``scoring`` from there to leads.scored produced (fetch, grade, commit, relay),
    ``routing`` to leads.routed produced, ``reader`` until the bench's consumer had it; and
    inside the hops, each service's steps as its metrics saw them (:class:`StepMeter`); and
    the CPU a lead cost at this rate (:class:`CpuMeter`)."""
    run = uuid.uuid4().hex[:6]
    accepted_at: dict[str, float] = {}
    physical = system.topics.physical
    async with (
        TopicWatcher(system.bootstrap_servers, physical("leads.ingested")) as ingested,
        TopicWatcher(system.bootstrap_servers, physical("leads.scored")) as scored,
        TopicWatcher(system.bootstrap_servers, physical("leads.routed")) as watcher,
        # When ingest answers slower than the rate, requests queue for a connection (their
        # latency counts from the 202, so the figure stays honest) and the rate ingest
        # achieved is reported beside the one offered.
        load_client(system, "ingest") as ingest,
    ):
        steps = StepMeter(system)
        await steps.start()
        cpu = CpuMeter(system)
        cpu.start()
        started = time.perf_counter()

        async def post(index: int) -> None:
            async with ingest.post("/v1/leads", json=lead(index, run)) as response:
                response.raise_for_status()
                accepted_at[(await response.json())["lead_id"]] = time.perf_counter()

        tasks = []
        for index in range(leads):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(index)))
        await asyncio.gather(*tasks)
        accepted_per_s = leads / (max(accepted_at.values()) - started)
        await watcher.wait_for(accepted_at, timeout=600)
        await ingested.wait_for(accepted_at, timeout=60)
        await scored.wait_for(accepted_at, timeout=60)
        cpu_ms_per_lead = cpu.per_lead(leads)
        busy = cpu.machine_busy()
        steps_ms = await steps.report()
        latencies = [(watcher.seen[k] - t) * 1000 for k, t in accepted_at.items()]
        # The wall clock of a perf_counter reading, to set the 202s beside record timestamps.
        to_wall = time.time() - time.perf_counter()
        hops: dict[str, list[float]] = {"ingest": [], "scoring": [], "routing": [], "reader": []}
        for lead_id, accepted in accepted_at.items():
            moments = (
                accepted + to_wall,
                ingested.produced[lead_id],
                scored.produced[lead_id],
                watcher.produced[lead_id],
                watcher.seen[lead_id] + to_wall,
            )
            for hop, since, until in zip(hops, moments[:-1], moments[1:], strict=True):
                hops[hop].append((until - since) * 1000)
    return {
        "leads": leads,
        "offered_per_s": rate,
        "accepted_per_s": round(accepted_per_s),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "hops_p50_ms": {hop: round(percentile(each, 0.50), 1) for hop, each in hops.items()},
        "hops_p99_ms": {hop: round(percentile(each, 0.99), 1) for hop, each in hops.items()},
        "steps_ms": steps_ms,
        # Until the last lead was routed (reporting and delivery may still be reading). At a
        # paced rate batches are small, so each lead bears more of every batch's fixed cost
        # than in the flood (9.2-10 ms a lead at 200 leads/s against 1.7-4 in the flood),
        # ingest's single-lead door the largest part.
        "cpu_ms_per_lead": cpu_ms_per_lead,
        # Measured at 50, 100, 150 and 200 leads/s offered: 0.98-1.0 at each. A service's
        # cost is per cycle (a group commit, a consumer batch, a fetch); cycles come about as
        # often at 50 leads/s as at 200 (scoring and routing fetch every 25 ms either way),
        # with fewer leads in each, and the machine stays full.
        "machine_busy": busy,
    }


async def raw_relay(
    bootstrap_servers: str, *, records: int, sizes: tuple[int, int, int]
) -> dict[str, Any]:
    """Three hops with nothing but aiokafka: what the broker and client allow on this machine."""
    names = TopicNames(f"raw{uuid.uuid4().hex[:8]}")
    topics = [names.physical(spec.name) for spec in CATALOG[:3]]  # ingested, scored, routed
    await ensure_topics(bootstrap_servers, names, CATALOG[:3], partitions=3)
    payloads = [b"x" * size for size in sizes]

    def consumer(topic: str, group: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap_servers,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True, linger_ms=2
    )
    await producer.start()
    relays = [consumer(topics[0], "relay-1"), consumer(topics[1], "relay-2")]
    final = consumer(topics[2], "final")
    for each in (*relays, final):
        await each.start()
    received = 0
    done = asyncio.Event()

    async def relay(source: AIOKafkaConsumer, target: str, payload: bytes) -> None:
        while True:
            batches = await source.getmany(timeout_ms=100, max_records=500)
            futures = [
                await producer.send(target, value=payload, key=record.key)
                for batch in batches.values()
                for record in batch
            ]
            await asyncio.gather(*futures)
            if batches:
                await source.commit()

    async def drain() -> None:
        nonlocal received
        while received < records:
            batches = await final.getmany(timeout_ms=100, max_records=500)
            received += sum(len(batch) for batch in batches.values())
            if batches:
                await final.commit()
        done.set()

    tasks = [
        asyncio.create_task(relay(relays[0], topics[1], payloads[1])),
        asyncio.create_task(relay(relays[1], topics[2], payloads[2])),
        asyncio.create_task(drain()),
    ]
    try:
        await asyncio.sleep(2)  # groups joined
        started = time.perf_counter()
        futures = [
            await producer.send(topics[0], value=payloads[0], key=str(uuid.uuid4()).encode())
            for _ in range(records)
        ]
        await asyncio.gather(*futures)
        await asyncio.wait_for(done.wait(), 600)
        elapsed = time.perf_counter() - started
    finally:
        for task in tasks:
            task.cancel()
        for each in (*relays, final):
            await each.stop()
        await producer.stop()
    return {"records": records, "records_per_s": round(records / elapsed), "payload_bytes": sizes}


async def reporting_rebuild(system: System) -> dict[str, Any]:
    """Replay every topic of the run into reporting's read model (``leadflow reporting
    rebuild``), beside the running consumer, as an operator would."""
    from services.reporting.rebuild import rebuild
    from shared.db import Database

    database = Database(system.database_urls["reporting"])
    try:
        started = time.perf_counter()
        report = await rebuild(
            db=database, bootstrap_servers=system.bootstrap_servers, names=system.topics
        )
        elapsed = time.perf_counter() - started
    finally:
        database.dispose()
    return {
        "records": report.records,
        "seconds": round(elapsed, 1),
        "records_per_s": round(report.records / elapsed),
    }
