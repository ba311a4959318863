"""The decay scheduler: a lead is re-scored when decay moves it across a grade line, at the
time stored for it, so the schedule survives restarts."""

from __future__ import annotations

import math
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from datetime import UTC, datetime, timedelta

import pytest

from services.scoring import repository, rulebook_store
from services.scoring.domain.engine import CROSSING_MARGIN
from services.scoring.models import ScoreRecord
from services.scoring.rulebooks import default_source
from services.scoring.tests.support import Clock, handle, published, rows
from services.scoring.workers import decay_page
from shared.cloudevents import Event, decode
from shared.contracts import LeadIngestedV1, LeadScoredV1
from shared.db import Database
from shared.service import ServiceDefinition, ServiceRuntime
from shared.testing import factories
from shared.testing.kafka_tools import produce, read_topic
from shared.testing.pytest_plugin import running_runtime, service_settings
from shared.topics import TopicNames

T0 = datetime(2030, 3, 2, 9, 0, tzinfo=UTC)
# Default rulebook: a demo request's 40 points are in market (high) for 14 days, then decay
# (half-life 30 days) takes them below the medium band's 15 after 30 * log2(40/15) days:
# a high-fit lead goes from A to B then.
CROSSING = T0 + timedelta(days=30 * math.log2(40 / 15)) + CROSSING_MARGIN


def demo(lead_id: uuid.UUID, at: datetime) -> LeadIngestedV1:
    return factories.lead_ingested(
        lead_id=lead_id, touchpoint=factories.touchpoint(type="demo_request", occurred_at=at)
    )


@pytest.fixture
def runtime(service_definition: ServiceDefinition, database: Database) -> ServiceRuntime:
    runtime = ServiceRuntime(
        service_definition, service_settings(service_definition, database=database)
    )
    runtime.state["clock"] = Clock(T0)
    return runtime


def test_decay_republishes_a_lead_when_it_crosses_a_grade_line(
    runtime: ServiceRuntime, database: Database
) -> None:
    lead_id = uuid.uuid4()
    handle(database, demo(lead_id, T0), time=T0)
    [score] = rows(database, ScoreRecord)
    assert score.grade == "A"
    assert abs(score.next_check_at - CROSSING) < timedelta(milliseconds=1)

    clock: Clock = runtime.state["clock"]
    clock.now = CROSSING - timedelta(minutes=1)
    assert decay_page(runtime) == 0  # not due yet
    clock.now = CROSSING + timedelta(hours=5)
    assert decay_page(runtime) == 1
    assert decay_page(runtime) == 0

    touch, decayed = published(database)
    assert (decayed.grade, decayed.previous_grade, decayed.trigger) == ("B", "A", "decay")
    assert decayed.touchpoint_id is None
    assert decayed.scored_at == clock.now
    assert decayed.engagement_score < 15
    assert decayed.lead == touch.lead
    [score] = rows(database, ScoreRecord)
    assert (score.grade, score.trigger, score.next_check_at) == ("B", "decay", None)


def test_a_check_that_finds_no_change_reschedules_without_publishing(
    runtime: ServiceRuntime, database: Database
) -> None:
    lead_id = uuid.uuid4()
    handle(database, demo(lead_id, T0), time=T0)
    with database.transaction() as session:
        repository.set_next_check(session=session, lead_id=lead_id, at=T0 + timedelta(days=1))
    runtime.state["clock"].now = T0 + timedelta(days=2)
    assert decay_page(runtime) == 1
    assert len(published(database)) == 1
    [score] = rows(database, ScoreRecord)
    assert (score.grade, score.trigger) == ("A", "decay")
    assert abs(score.next_check_at - CROSSING) < timedelta(milliseconds=1)


def test_due_leads_are_taken_a_page_at_a_time(
    service_definition: ServiceDefinition, database: Database
) -> None:
    settings = service_settings(service_definition, database=database, decay_batch_size=2)
    runtime = ServiceRuntime(service_definition, settings)
    runtime.state["clock"] = Clock(CROSSING)
    for _ in range(3):
        handle(database, demo(uuid.uuid4(), T0), time=T0)
    assert [decay_page(runtime), decay_page(runtime), decay_page(runtime)] == [2, 1, 0]
    assert sorted(e.trigger for e in published(database)) == ["decay"] * 3 + ["touchpoint"] * 3


@pytest.mark.kafka
async def test_the_schedule_survives_a_restart(
    service_definition: ServiceDefinition,
    database: Database,
    topic_names: TopicNames,
    kafka_bootstrap_servers: str,
) -> None:
    settings = service_settings(
        service_definition,
        database=database,
        topic_names=topic_names,
        bootstrap_servers=kafka_bootstrap_servers,
        decay_poll_interval_ms=50,
    )
    scored_topic = topic_names.physical("leads.scored")
    lead_id = uuid.uuid4()
    first = ServiceRuntime(service_definition, settings)
    first.state["clock"] = Clock(T0)
    async with running_runtime(first):
        event = Event(data=demo(lead_id, T0), source="/leadflow/ingest", time=T0)
        await produce(kafka_bootstrap_servers, topic_names.physical("leads.ingested"), [event])
        [scored] = await read_topic(kafka_bootstrap_servers, scored_topic, count=1)
        first.state["clock"].now = CROSSING - timedelta(seconds=2)
        # The scheduler looks many times and finds nothing due before the line.
        assert len(await read_topic(kafka_bootstrap_servers, scored_topic, count=2, timeout=1)) == 1

    # The service is down while the line is crossed; the next one picks the lead up.
    second = ServiceRuntime(service_definition, settings)
    second.state["clock"] = Clock(CROSSING + timedelta(days=3))
    async with running_runtime(second):
        records = await read_topic(kafka_bootstrap_servers, scored_topic, count=2)
    events = [decode(r.headers, r.value).data for r in records]
    scored_events = sorted(
        (e for e in events if isinstance(e, LeadScoredV1)), key=lambda e: e.scored_at
    )
    assert [(e.grade, e.trigger) for e in scored_events] == [("A", "touchpoint"), ("B", "decay")]
    assert scored_events[1].scored_at == CROSSING + timedelta(days=3)
    assert decode(scored.headers, scored.value).time == T0


def test_a_page_waits_for_an_activation_in_progress_and_scores_with_its_version(
    runtime: ServiceRuntime, database: Database
) -> None:
    """An activation holds the rulebook lock until it commits. A decay page that read the
    version it replaces meanwhile would publish grades by that one, each published again
    by the re-scoring job right after."""
    if not database.is_postgresql:
        pytest.skip("SQLite has one writer at a time: nothing runs beside an activation")
    handle(database, demo(uuid.uuid4(), T0), time=T0)
    runtime.state["clock"].now = CROSSING + timedelta(hours=5)
    with database.transaction() as session:
        source = default_source().replace("name: default", "name: second", 1)
        record = rulebook_store.create(session=session, source=source, media="yaml", now=T0)
        rulebook_store.activate(session=session, record=record, now=T0)
        with ThreadPoolExecutor(1) as pool:
            page = pool.submit(decay_page, runtime)
            with pytest.raises(FuturesTimeout):
                page.result(timeout=1.0)  # waiting for the activation's lock
            session.commit()
            assert page.result(timeout=30) == 1
    [score] = rows(database, ScoreRecord)
    assert (score.trigger, score.rulebook_version) == ("decay", 2)
