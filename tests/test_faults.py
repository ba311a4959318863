"""Faults while leads are in flight: every lead still reaches ``leads.routed`` exactly once.

One flow of ``LEADFLOW_FAULT_LEADS`` leads goes through the five services, each a process of
the harness, on a Kafka broker and a PostgreSQL server of the test's own (the session's are
shared with other tests; these are restarted). While the leads are being posted and flow,
one fault after the other (see :class:`Chaos`):

1. ingest is killed (SIGKILL, by PID) while leads are being posted to it, and restarted;
   the client retries each batch under its ``Idempotency-Key`` until it is accepted;
2. scoring, 3. routing, 4. reporting and 5. delivery are each killed and restarted while
   leads flow through them;
6. the broker is killed and started again on the same ports and data;
7. PostgreSQL is restarted (a fast shutdown: every connection cut).

Then, once every lead is routed:

* every lead submitted has exactly one routing decision on ``leads.routed`` (copies of a
  record under the same event id are fine; a second decision is not), and routing's database
  one assignment per lead; the round robin stayed fair;
* scoring graded every lead once (its score history), and ``leads.scored`` holds one event
  per lead;
* reporting counts every lead once;
* delivery sent every routing decision to the subscriber (at least once: a delivery killed
  mid-send is sent again under the same ``webhook-id``).

The time is measured and printed, never asserted. The issue asks for 10,000 leads in flight
(``make test-faults``); CI runs 1,000, the default, to stay within its budget
(docs/testing.md: the times of both).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shared.kafka.local_broker import LocalKafka
from shared.settings import PlatformSettings
from shared.system import SERVICES
from shared.testing.kafka_tools import eventually
from shared.testing.postgres import LocalPostgres
from tests.conftest import _Factory
from tests.flow import (
    Receiver,
    Submitter,
    check_counted_once,
    check_routed_once,
    check_scored_once,
    configure_routing,
    routed_so_far,
    run_name,
    subscribe,
    wait_all_routed,
)
from tests.system import System

pytestmark = pytest.mark.e2e

# 1,000 in CI; the 10,000 with ``make test-faults``.
LEADS = int(os.environ.get("LEADFLOW_FAULT_LEADS", "1000"))
# A generous bound on the whole test, not an expectation: about 30 leads/s end to end today.
TIMEOUT = 900 + LEADS // 5
# Leads per request: a share of the flow (one per fault, and one after) is ten requests or
# more even for a short flow.
BATCH = max(10, min(100, LEADS // 80))
# How long the flow may make no visible progress from one fault to the next.
STALL = 600


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalKafka]:
    kafka = LocalKafka(
        cache_dir=PlatformSettings().cache_dir, runs_dir=tmp_path / "kafka", partitions=3
    )
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def database_server() -> Iterator[LocalPostgres]:
    with LocalPostgres() as server:
        yield server


@dataclass
class Fault:
    what: str
    submitted: int  # leads submitted when it struck
    routed: int  # leads routed when it struck
    took: float  # seconds until the component was back


@dataclass
class Chaos:
    """The faults, in turn, each in the middle of a share of the flow.

    The leads are released to the submitter in ``len(FAULTS) + 1`` shares: a fault strikes
    once half of its share has been posted, while the rest of the share is still being posted
    and flows through the system, and the next share is released once the component is back.
    So every fault hits a stream in flight, whatever the number of leads, and the last share
    flows after the last fault."""

    system: System
    broker: LocalKafka
    database: LocalPostgres
    submitter: Submitter
    leads: int
    faults: list[Fault] = field(default_factory=list)

    def actions(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            *[(service, self._crash_and_restart(service)) for service in SERVICES],
            ("broker", lambda: self.broker.restart(crash=True)),
            ("postgresql", self.database.restart),
        ]

    def bound(self, share: int, shares: int) -> int:
        """Where share ``share`` (of ``shares``) ends: a whole number of batches."""
        batch = self.submitter.batch
        return min(self.leads, self.leads * share // shares // batch * batch)

    async def run(self) -> None:
        actions = self.actions()
        shares = len(actions) + 1
        for number, (what, action) in enumerate(actions):
            low, high = self.bound(number, shares), self.bound(number + 1, shares)
            self.submitter.allowed = high
            middle = low + (high - low) // 2
            await eventually(
                lambda middle=middle: self.submitter.submitted >= middle,  # type: ignore[misc]
                timeout=STALL,
                interval=0.2,
                message=f"submission stalled before {middle} leads",
            )
            fault = Fault(what, self.submitter.submitted, await routed_so_far(self.system), 0)
            started = time.monotonic()
            await asyncio.to_thread(action)
            fault.took = time.monotonic() - started
            self.faults.append(fault)
        self.submitter.allowed = None

    def _crash_and_restart(self, service: str) -> Callable[[], None]:
        def crash_and_restart() -> None:
            self.system.kill(service)
            time.sleep(1)  # down for a moment: its partitions and requests wait
            self.system.restart(service)

        return crash_and_restart


@pytest.mark.timeout(TIMEOUT)
async def test_every_lead_is_routed_once_through_kills_and_restarts(
    broker: LocalKafka, database_server: LocalPostgres, tmp_path: Path, receiver: Any
) -> None:
    started = time.monotonic()
    factory = _Factory(
        bootstrap_servers=broker.bootstrap_servers,
        postgres_url=database_server.url,
        workdir=tmp_path,
    )
    try:
        system = factory(
            # A delivery killed mid-send is sent again once its lease runs out.
            service_env={"delivery": {"LEADFLOW_DELIVERY_LEASE_SECONDS": "10"}}
        )
        await check_the_flow(system, broker, database_server, receiver, started)
    finally:
        factory.stop_all()


async def check_the_flow(
    system: System,
    broker: LocalKafka,
    database_server: LocalPostgres,
    receiver: tuple[Receiver, str],
    started: float,
) -> None:
    configure_routing(system)
    subscriber, _ = receiver
    subscribe(system, receiver)
    ready = time.monotonic()

    run = run_name("faults")
    submitter = Submitter(
        urls=[system.url("ingest")], api_key=system.api_key, run=run, count=LEADS, batch=BATCH
    )
    chaos = Chaos(system, broker, database_server, submitter, LEADS)
    submitting = asyncio.create_task(submitter.submit())
    await guarded(chaos.run(), submitting)
    lead_ids = await submitting
    submitted = time.monotonic()
    assert len(set(lead_ids)) == LEADS

    await wait_all_routed(system, LEADS, timeout=TIMEOUT)
    routed_at = time.monotonic()

    decisions = await check_routed_once(system, lead_ids)
    await check_scored_once(system, lead_ids)
    await check_counted_once(system, run, decisions)

    routed_ids = {event_id for events in decisions.values() for event_id in events}

    def delivered() -> bool:
        return {event["id"] for event in subscriber.events()} >= routed_ids

    await eventually(delivered, timeout=600, interval=2, message="not every decision delivered")
    assert {event["id"] for event in subscriber.events()} == routed_ids

    report = [
        f"{LEADS} leads, {submitter.retries} batches retried; system up in "
        f"{ready - started:.0f}s, submitted in {submitted - ready:.0f}s, all routed after "
        f"{routed_at - ready:.0f}s, checked after {time.monotonic() - ready:.0f}s",
        *[
            f"  {fault.what:<11} back after {fault.took:.1f}s; struck with {fault.submitted} "
            f"leads submitted, {fault.routed} routed"
            for fault in chaos.faults
        ],
    ]
    print("\n" + "\n".join(report))
    # Every fault struck mid-stream: leads were still being posted, and more were to come.
    assert [fault.what for fault in chaos.faults] == [what for what, _ in chaos.actions()]
    assert all(fault.submitted < LEADS for fault in chaos.faults), chaos.faults


async def guarded(chaos: Awaitable[None], submitting: asyncio.Task[list[str]]) -> None:
    """Run the faults; if the submission fails meanwhile, stop and say why."""
    faults = asyncio.ensure_future(chaos)
    done, _ = await asyncio.wait({faults, submitting}, return_when=asyncio.FIRST_EXCEPTION)
    if submitting in done and submitting.exception() is not None:
        faults.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await faults
        submitting.result()
    await faults
