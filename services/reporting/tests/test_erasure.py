"""leads.erased on both databases: no fact and no figure moves, whether the erasure comes
after the lead's events, before them (topics are not ordered), or in the middle of a
replay; the lead is remembered as erased."""

from __future__ import annotations

from services.reporting import repository
from services.reporting.models import ERASURES
from services.reporting.tests import scenario
from services.reporting.tests.test_read_model import apply_all, read_model
from shared.cloudevents import Event
from shared.contracts import EventPayload
from shared.db import Database
from shared.testing import factories


def erasures(*names: str) -> list[Event[EventPayload]]:
    return [
        Event(data=factories.lead_erased(lead_id=scenario.LEADS[name]), source="/leadflow/ingest")
        for name in names
    ]


def test_erasure_moves_no_fact_and_no_figure(database: Database) -> None:
    events = scenario.events()
    apply_all(database, events)
    before = read_model(database)

    apply_all(database, erasures("L1", "L4", "L7"))
    assert read_model(database) == before
    with database.read() as session:
        assert all(ERASURES.is_erased(session, scenario.LEADS[n]) for n in ("L1", "L4", "L7"))
        assert not ERASURES.is_erased(session, scenario.LEADS["L2"])

    apply_all(database, events)  # a replay of every topic after the erasure
    assert read_model(database) == before


def test_an_erasure_read_before_the_lead_changes_nothing_either(database: Database) -> None:
    events = scenario.events()
    apply_all(database, events)
    expected = read_model(database)
    with database.transaction() as session:
        repository.clear_facts(session=session)

    half = len(events) // 2
    apply_all(database, [*erasures("L2", "L3"), *events[:half], *erasures("L5"), *events[half:]])
    assert read_model(database) == expected
