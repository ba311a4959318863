"""Two replicas of every service share their topics' partitions with no double effect.

Every service runs as two processes in one consumer group, on PostgreSQL and the real broker
(the Helm chart's default of two replicas, as local processes). A flow of leads is posted to
both ingest processes in turn; then:

* every lead reached ``leads.routed`` with exactly one routing decision (copies of a record
  under one event id are fine; a second decision is not), and routing's database holds one
  assignment per lead;
* scoring graded every lead once: one published score per lead in its history, and one
  ``leads.scored`` event per lead on the topic;
* the round robin stayed fair: three reps of equal weight, within one lead of each other;
* reporting counted every lead once (volume and funnel of the run's campaign, and one
  assignment fact per lead);
* delivery sent each routing decision to the webhook subscriber once.

``LEADFLOW_SCALING_LEADS`` sets the number of leads (default 400).
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from shared.system import SERVICES
from shared.testing.kafka_tools import eventually
from tests.conftest import SystemFactory
from tests.flow import (
    Receiver,
    Submitter,
    check_counted_once,
    check_routed_once,
    check_scored_once,
    configure_routing,
    count_rows,
    group_members,
    run_name,
    subscribe,
    wait_all_routed,
)

pytestmark = pytest.mark.e2e

LEADS = int(os.environ.get("LEADFLOW_SCALING_LEADS", "400"))


# Ten processes to start and a flow to wait for: more than the suite's 300 s per test may be
# needed on a loaded machine (about two minutes on two shared cores).
@pytest.mark.timeout(900)
async def test_two_replicas_of_each_service_share_the_work_with_no_double_effect(
    system_factory: SystemFactory, receiver: tuple[Receiver, str]
) -> None:
    started = time.monotonic()
    system = system_factory(replicas=dict.fromkeys(SERVICES, 2))
    assert all(len(system.processes[name]) == 2 for name in SERVICES)
    configure_routing(system)
    subscriber, _ = receiver
    subscribe(system, receiver, replica=1)

    run = run_name("scale")
    submitter = Submitter(
        urls=[system.url("ingest", 0), system.url("ingest", 1)],
        api_key=system.api_key,
        run=run,
        count=LEADS,
        batch=20,
    )
    lead_ids = await submitter.submit()
    assert len(set(lead_ids)) == LEADS

    await wait_all_routed(system, LEADS, timeout=600)
    flowed = time.monotonic() - started

    decisions = await check_routed_once(system, lead_ids)
    await check_scored_once(system, lead_ids)
    await check_counted_once(system, run, decisions, replica=1)

    # Delivery: each routing decision sent once.
    routed_ids = {event_id for events in decisions.values() for event_id in events}

    def delivered() -> bool:
        done = count_rows(
            system, "delivery", "SELECT count(*) FROM deliveries WHERE status = 'delivered'"
        )
        return done >= len(routed_ids)

    await eventually(delivered, timeout=300, interval=1, message="not every decision delivered")
    sent = Counter(event["id"] for event in subscriber.events())
    assert set(sent) == routed_ids
    assert set(sent.values()) == {1}, [item for item in sent.items() if item[1] > 1][:5]
    webhook_ids = Counter(headers["webhook-id"] for _, headers in subscriber.received)
    assert set(webhook_ids.values()) == {1}

    # Both processes of each consuming service are members of its group, each holding some of
    # its partitions, none held twice: they shared the work.
    for service in ("scoring", "routing", "reporting", "delivery"):
        group = system.topics.group(f"leadflow-{service}")

        async def shared(group: str = group) -> bool:
            members = await group_members(system.bootstrap_servers, group)
            held = list(members.values())
            return len(held) == 2 and all(held) and not set.intersection(*held)

        await eventually(shared, timeout=120, interval=2, message=f"{group} not shared by two")

    # The time is the test's report: measured, never asserted.
    print(
        f"\n{LEADS} leads through two replicas of each service: routed after "
        f"{flowed:.0f}s, checked after {time.monotonic() - started:.0f}s "
        f"({submitter.retries} retried batches)"
    )
