"""The read model: filled from every topic, in any order, idempotently, and rebuildable."""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col
from typer.testing import CliRunner

from services.reporting import repository
from services.reporting.cli import app as reporting_cli
from services.reporting.domain.filters import Filters
from services.reporting.domain.leads import build_leads
from services.reporting.domain.report import report
from services.reporting.handlers import handlers
from services.reporting.models import TABLES, FeedbackFact, GradeFact
from services.reporting.rebuild import OUTBOX, RebuildReport, _apply_records, apply_event, rebuild
from services.reporting.service import DEFINITION
from services.reporting.tests import scenario
from shared.cloudevents import Event
from shared.contracts import EventPayload
from shared.db import Database
from shared.kafka.consumer import HandlerContext
from shared.service import ServiceDefinition, ServiceRuntime
from shared.testing import factories
from shared.testing.kafka_tools import (
    ConsumedRecord,
    consumed,
    eventually,
    produce,
    produce_raw,
)
from shared.testing.pytest_plugin import DatabaseFactory, env, running_runtime, service_settings
from shared.topics import TopicNames, topic_for


def apply_all(database: Database, events: list[Event[EventPayload]]) -> None:
    with database.transaction() as session:
        for event in events:
            apply_event(session, event)


def read_model(database: Database) -> dict[str, Any]:
    """The fact rows and every figure: what two read models must agree on."""
    with database.read() as session:
        rows = repository.fact_rows(session=session)
        facts = repository.load_facts(session=session)
    figures = report(facts, scenario.COSTS, scenario.TARGETS, Filters(), as_of=scenario.AS_OF)
    return {"rows": rows, "figures": asdict(figures)}


def orders(events: list[Event[EventPayload]]) -> dict[str, list[Event[EventPayload]]]:
    """The same events in interleavings the topics could deliver them in."""
    by_topic = sorted(events, key=lambda e: topic_for(type(e.data)).name)
    feedback_first = sorted(
        events,
        key=lambda e: ["feedback", "sla", "routed", "scored", "ingested"].index(
            topic_for(type(e.data)).name.split(".")[1]
        ),
    )
    shuffled = list(events)
    random.Random(3).shuffle(shuffled)
    return {
        "as produced": events,
        "reversed": list(reversed(events)),
        "topic by topic": by_topic,
        "feedback first, ingested last": feedback_first,
        "shuffled": shuffled,
    }


def test_every_interleaving_gives_the_same_read_model(database: Database) -> None:
    events = scenario.events()
    results = {}
    for name, ordered in orders(events).items():
        with database.transaction() as session:
            repository.clear_facts(session=session)
        apply_all(database, ordered)
        results[name] = read_model(database)
    expected = results.pop("as produced")
    for name, result in results.items():
        assert result == expected, name
    # And it is the read model of the hand-computed scenario.
    with database.read() as session:
        assert build_leads(repository.load_facts(session=session)) == build_leads(scenario.facts())


def test_an_event_applied_twice_leaves_one_fact(database: Database) -> None:
    events = scenario.events()
    apply_all(database, events)
    before = read_model(database)
    # Redelivered under the same ids, and re-published under new ones (same touchpoints,
    # same assignments): the facts with natural keys stay single.
    apply_all(database, events)
    republished = [
        Event(data=e.data, source="/again")
        for e in events
        if topic_for(type(e.data)).name in ("leads.ingested", "leads.routed")
    ]
    apply_all(database, republished)
    assert read_model(database) == before


def expected_read_model(
    factory: DatabaseFactory, backend: str, events: list[Event[EventPayload]]
) -> dict[str, Any]:
    """The read model of the events applied straight into a fresh database."""
    fresh = factory.create(backend, DEFINITION)
    try:
        apply_all(fresh, events)
        return read_model(fresh)
    finally:
        factory.drop(fresh)


def _count(database: Database, table: Any) -> int:
    with database.read() as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.kafka
async def test_the_live_read_model_and_its_rebuilds_agree(
    service_definition: ServiceDefinition,
    database: Database,
    *,
    database_factory: DatabaseFactory,
    db_backend: str,
    topic_names: TopicNames,
    kafka_bootstrap_servers: str,
) -> None:
    events = scenario.events()
    by_topic: dict[str, list[Event[EventPayload]]] = {}
    for event in events:
        by_topic.setdefault(topic_for(type(event.data)).name, []).append(event)
    settings = service_settings(
        service_definition,
        database=database,
        topic_names=topic_names,
        bootstrap_servers=kafka_bootstrap_servers,
    )
    runtime = ServiceRuntime(service_definition, settings)
    # Followed up at last: L5 stops waiting. Arrives after the rebuild below.
    late = Event(
        data=factories.lead_feedback(
            lead_id=scenario.LEADS["L5"], status="contacted", occurred_at=scenario.at(1, 12, 9)
        ),
        source="/late",
    )
    async with running_runtime(runtime):
        # Feedback first, the ingested events last: the worst order the topics allow.
        for topic in ("leads.feedback", "leads.sla", "leads.routed", "leads.scored"):
            await produce(kafka_bootstrap_servers, topic_names.physical(topic), by_topic[topic])
        await produce(
            kafka_bootstrap_servers,
            topic_names.physical("leads.ingested"),
            by_topic["leads.ingested"],
        )
        # Then the feedback again, as a relay re-sending after a crash would, and a record
        # that is no CloudEvent at all (the live consumer dead-letters it).
        feedback = topic_names.physical("leads.feedback")
        await produce(kafka_bootstrap_servers, feedback, by_topic["leads.feedback"])
        await produce_raw(kafka_bootstrap_servers, feedback, b"{not an event")
        await eventually(
            lambda: _count(database, TABLES.processed_events) == len(events),
            message="not every event was consumed",
        )
        assert _count(database, FeedbackFact) == len(by_topic["leads.feedback"])
        live = read_model(database)
        assert live == expected_read_model(database_factory, db_backend, events)

        # In place, with the live consumer running: the same database, emptied and replayed.
        report_ = await rebuild(
            db=database, bootstrap_servers=kafka_bootstrap_servers, names=topic_names
        )
        # Every record of the five topics: the redelivered feedback, the malformed one.
        assert report_.records == len(events) + len(by_topic["leads.feedback"]) + 1
        assert report_.skipped == 1
        assert read_model(database) == live

        # The live consumer's offsets were left alone: it goes on from where it was.
        await produce(kafka_bootstrap_servers, feedback, [late])
        await eventually(
            lambda: _count(database, TABLES.processed_events) == len(events) + 1,
            message="the late event was not consumed",
        )
    events.append(late)
    live = read_model(database)
    assert live == expected_read_model(database_factory, db_backend, events)
    assert live["figures"]["follow_up"]["waiting"] == 0

    # From the command line, into a database that never saw a live consumer.
    empty = database_factory.create(db_backend, service_definition)
    try:
        with env(
            LEADFLOW_REPORTING_DATABASE_URL=empty.url.render_as_string(hide_password=False),
            KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers,
            LEADFLOW_TOPIC_NAMESPACE=topic_names.namespace,
        ):
            result = CliRunner().invoke(reporting_cli, ["rebuild"])
        assert result.exit_code == 0, result.output
        assert f"{report_.records + 1} records read" in result.output
        assert read_model(empty) == live
    finally:
        database_factory.drop(empty)


def apply_in_runs(database: Database, events: list[Event[EventPayload]]) -> None:
    """Consecutive events of a type handed to its batch handler together, in one
    transaction, as the consumer hands a run of records."""
    with database.transaction() as session:
        for _, run in itertools.groupby(events, key=lambda event: type(event.data)):
            batch = list(run)
            batch_handler = handlers.get_batch(type(batch[0].data))
            assert batch_handler is not None
            contexts = [HandlerContext(session, e, OUTBOX, "", 0, n) for n, e in enumerate(batch)]
            batch_handler([(context, context.event.data) for context in contexts])


def test_runs_of_records_give_the_read_model_one_by_one_gives(database: Database) -> None:
    events = sorted(scenario.events(), key=lambda e: topic_for(type(e.data)).name)
    apply_all(database, events)
    one_by_one = read_model(database)
    with database.transaction() as session:
        repository.clear_facts(session=session)
    # Each event twice in its run (a fact reaching the model by two roads): counted once.
    apply_in_runs(database, [each for event in events for each in (event, event)])
    assert read_model(database) == one_by_one
    assert len(one_by_one["rows"]) > 0


def test_a_rebuild_run_with_a_refused_event_skips_that_one_alone(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run goes through the batch handler in one savepoint; when that fails, each event
    in a savepoint of its own: the refused one is skipped, the others applied."""
    grades = [Event(data=factories.lead_scored(grade=g), source="/t") for g in "ABCD"]
    refused = grades[2].id
    add_facts = repository.add_facts

    def refusing(*, session: Any, model: Any, rows: Any) -> None:
        if any(row["event_id"] == refused for row in rows):
            raise ValueError("refused")
        add_facts(session=session, model=model, rows=rows)

    monkeypatch.setattr(repository, "add_facts", refusing)
    records = [*consumed(grades), ConsumedRecord("leads.scored", 0, 4, None, b"{", [])]
    report_ = RebuildReport()
    with database.transaction() as session:
        _apply_records(session, records, TopicNames(""), report_)
    assert (report_.records, report_.applied, report_.skipped) == (5, 3, 2)
    with database.read() as session:
        kept = session.execute(select(col(GradeFact.event_id))).scalars().all()
    assert sorted(kept) == sorted(event.id for event in grades if event.id != refused)
