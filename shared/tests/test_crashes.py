"""A consumer killed at the worst moments, and one stopped with SIGTERM, lose nothing and
do nothing twice. The consumer is a separate process; the kill is a real SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from shared.cloudevents import Event
from shared.db import Database
from shared.testing import factories
from shared.testing.kafka_tools import committed_offsets, eventually, produce
from shared.testing.probe.models import Effect
from shared.topics import TopicNames

pytestmark = pytest.mark.kafka
GROUP = "leadflow-probe"


class ConsumerProcess:
    def __init__(
        self,
        *,
        bootstrap: str,
        names: TopicNames,
        database: Database,
        kill: str = "none",
        max_batch: int = 500,
    ) -> None:
        command = [
            sys.executable,
            "-m",
            "shared.testing.probe.run_consumer",
            "--bootstrap",
            bootstrap,
            "--namespace",
            names.namespace,
            "--database-url",
            database.url.render_as_string(hide_password=False),
            "--kill",
            kill,
            "--max-batch",
            str(max_batch),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    async def wait(self, timeout: float = 60.0) -> int:
        return await asyncio.to_thread(self.process.wait, timeout)

    def terminate(self) -> None:
        os.kill(self.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def output(self) -> str:
        out, err = self.process.communicate(timeout=10)
        return out.decode() + err.decode()[-3000:]


@pytest.fixture
def processes() -> Iterator[list[ConsumerProcess]]:
    started: list[ConsumerProcess] = []
    yield started
    for process in started:
        process.stop()


def effect_total(database: Database) -> int:
    with database.read() as session:
        return int(session.execute(select(func.count()).select_from(Effect)).scalar_one())


def effects_of(database: Database, event_id: str) -> int:
    with database.read() as session:
        return int(
            session.execute(
                select(func.count()).select_from(Effect).where(Effect.event_id == event_id)  # type: ignore[arg-type]
            ).scalar_one()
        )


async def committed_total(bootstrap: str, names: TopicNames) -> int:
    return sum((await committed_offsets(bootstrap, names.group(GROUP))).values())


async def test_killed_after_its_database_commit_it_rereads_and_still_has_one_effect(
    database: Database,
    topic_names: TopicNames,
    kafka_bootstrap_servers: str,
    processes: list[ConsumerProcess],
) -> None:
    event = Event(data=factories.lead_ingested(), source="/test")
    await produce(kafka_bootstrap_servers, topic_names.physical("leads.ingested"), [event])

    crashing = ConsumerProcess(
        bootstrap=kafka_bootstrap_servers,
        names=topic_names,
        database=database,
        kill="after_db_commit",
    )
    processes.append(crashing)
    assert await crashing.wait() == -signal.SIGKILL, crashing.output()
    assert effects_of(database, event.id) == 1  # the database commit happened
    assert await committed_total(kafka_bootstrap_servers, topic_names) == 0  # the offset did not

    survivor = ConsumerProcess(
        bootstrap=kafka_bootstrap_servers, names=topic_names, database=database
    )
    processes.append(survivor)
    await eventually(
        lambda: committed_total(kafka_bootstrap_servers, topic_names),
        timeout=60,
        message="the record was not re-read and committed",
    )
    assert effects_of(database, event.id) == 1
    survivor.terminate()
    assert await survivor.wait() == 0, survivor.output()


async def test_killed_before_its_database_commit_it_loses_nothing(
    database: Database,
    topic_names: TopicNames,
    kafka_bootstrap_servers: str,
    processes: list[ConsumerProcess],
) -> None:
    event = Event(data=factories.lead_ingested(), source="/test")
    await produce(kafka_bootstrap_servers, topic_names.physical("leads.ingested"), [event])

    crashing = ConsumerProcess(
        bootstrap=kafka_bootstrap_servers,
        names=topic_names,
        database=database,
        kill="before_db_commit",
    )
    processes.append(crashing)
    assert await crashing.wait() == -signal.SIGKILL, crashing.output()
    assert effects_of(database, event.id) == 0  # rolled back with the process
    assert await committed_total(kafka_bootstrap_servers, topic_names) == 0

    survivor = ConsumerProcess(
        bootstrap=kafka_bootstrap_servers, names=topic_names, database=database
    )
    processes.append(survivor)
    await eventually(
        lambda: effects_of(database, event.id) == 1, timeout=60, message="the record was lost"
    )
    await eventually(lambda: committed_total(kafka_bootstrap_servers, topic_names))
    survivor.terminate()
    assert await survivor.wait() == 0
    assert effects_of(database, event.id) == 1

    # Its logs are JSON lines; those written while handling carry the event and lead ids.
    lines = [json.loads(line) for line in survivor.output().splitlines() if line.startswith("{")]
    handled = [line for line in lines if line["event"] == "probe effect recorded"]
    assert handled == [
        {
            "event": "probe effect recorded",
            "script": None,
            "service": "probe",
            "event_id": event.id,
            "lead_id": str(event.data.lead_id),
            "level": "info",
            "logger": "shared.testing.probe.service",
            "timestamp": handled[0]["timestamp"],
        }
    ]


async def test_sigterm_finishes_the_batch_in_hand_commits_and_exits_cleanly(
    database: Database,
    topic_names: TopicNames,
    kafka_bootstrap_servers: str,
    processes: list[ConsumerProcess],
) -> None:
    lead_id = uuid.uuid4()  # one partition, so the committed offset counts the records
    events = [
        Event(data=factories.lead_ingested(lead_id=lead_id, probe="slow:60"), source="/t")
        for _ in range(40)
    ]
    await produce(kafka_bootstrap_servers, topic_names.physical("leads.ingested"), events)

    first = ConsumerProcess(
        bootstrap=kafka_bootstrap_servers, names=topic_names, database=database, max_batch=5
    )
    processes.append(first)
    await eventually(lambda: effect_total(database) >= 8, timeout=60)
    first.terminate()
    assert await first.wait() == 0, first.output()
    handled = effect_total(database)
    assert handled < len(events), "stopped too late to prove anything"
    # Everything handled was committed, and nothing was committed that was not handled.
    assert await committed_total(kafka_bootstrap_servers, topic_names) == handled

    second = ConsumerProcess(
        bootstrap=kafka_bootstrap_servers, names=topic_names, database=database
    )
    processes.append(second)
    await eventually(lambda: effect_total(database) == len(events), timeout=60)

    async def all_committed() -> bool:
        return await committed_total(kafka_bootstrap_servers, topic_names) == len(events)

    await eventually(all_committed)
    second.terminate()
    assert await second.wait() == 0, second.output()
    assert all(effects_of(database, event.id) == 1 for event in events)
