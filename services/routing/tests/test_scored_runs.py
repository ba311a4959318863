"""A run of ``leads.scored`` records routed together gives what one by one gives: a lead
twice in the run (out of nurture on its rise), feedback that waited for a lead's assignment,
an erased lead, on both databases; and it asks the database for the round robins of all
its teams at once."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from services.routing import repository
from services.routing.handlers import build_handlers
from services.routing.models import TABLES
from services.routing.tests.support import (
    START,
    FakeClock,
    feedback,
    outbox_events,
    rep,
    scored,
    seed,
    standard_team,
    team,
    territory,
)
from shared.cloudevents import Event
from shared.contracts import EventPayload, LeadRoutedV1, LeadScoredV1, LeadSlaV1
from shared.db import Database
from shared.kafka.consumer import HandlerContext
from shared.outbox import Outbox
from shared.testing import factories
from shared.testing.statements import statements_sent

OUTBOX = Outbox(TABLES, source="/leadflow/routing")
Apply = Callable[[Database, FakeClock, Sequence[EventPayload]], None]


def context(session: Any, clock: FakeClock, payload: EventPayload, offset: int) -> HandlerContext:
    event = Event(data=payload, source="/test", time=clock())
    return HandlerContext(session, event, OUTBOX, "leads.scored", 0, offset)


def together(database: Database, clock: FakeClock, payloads: Sequence[EventPayload]) -> None:
    """The run handed to the batch handler in one transaction, as the consumer hands it."""
    batch_handler = build_handlers(clock).get_batch(LeadScoredV1)
    assert batch_handler is not None
    with database.transaction() as session:
        batch_handler([(context(session, clock, each, n), each) for n, each in enumerate(payloads)])


def one_by_one(database: Database, clock: FakeClock, payloads: Sequence[EventPayload]) -> None:
    handler = build_handlers(clock).get(LeadScoredV1)
    assert handler is not None
    for offset, payload in enumerate(payloads):
        with database.transaction() as session:
            handler(context(session, clock, payload, offset), payload)


def story(database: Database, apply: Apply) -> list[tuple[Any, ...]]:
    """Four leads: one nurtured then rising to A in the same run, one whose feedback came
    before its score, one erased before, one plain A. Answers the events, by lead name."""
    clock = FakeClock(START + timedelta(hours=3))
    rising, waited, erased, plain = (uuid.uuid4() for _ in range(4))
    names = {rising: "rising", waited: "waited", erased: "erased", plain: "plain"}
    handle_erasure = build_handlers(clock).get(factories.lead_erased().__class__)
    assert handle_erasure is not None
    gone = factories.lead_erased(lead_id=erased)
    with database.transaction() as session:
        handle_erasure(context(session, clock, gone, 0), gone)
    feedback(
        database,
        factories.lead_feedback(lead_id=waited, status="contacted", occurred_at=START),
        START,
    )
    before = len(outbox_events(database))
    apply(
        database,
        clock,
        [
            scored("C", lead_id=rising, scored_at=START),
            scored("A", lead_id=waited, scored_at=START),
            scored("A", lead_id=erased, scored_at=START),
            scored("A", lead_id=rising, previous_grade="C", scored_at=START + timedelta(hours=1)),
            scored("A", lead_id=plain, scored_at=START + timedelta(hours=2)),
        ],
    )
    with database.read() as session:
        assert repository.pending_feedback(session, lead_id=waited) == []
    told: list[tuple[Any, ...]] = []
    for event in outbox_events(database)[before:]:
        if isinstance(event, LeadRoutedV1):
            rep_id = event.rep.rep_id if event.rep else None
            told.append(("routed", names[event.lead_id], event.outcome, rep_id, event.attempt))
        elif isinstance(event, LeadSlaV1):
            told.append(("sla", names[event.lead_id], event.status))
    return told


def test_a_run_routed_together_gives_what_one_by_one_gives(database: Database) -> None:
    standard_team(database, rep("ana", "dach"))
    by_run = story(database, together)
    assert by_run == story(database, one_by_one)
    assert by_run == [
        ("routed", "rising", "nurture", None, 1),
        ("routed", "waited", "assigned", "ana", 1),
        ("sla", "waited", "met"),  # the feedback that waited, applied at once
        ("routed", "rising", "assigned", "ana", 1),  # out of nurture
        ("routed", "plain", "assigned", "ana", 1),
    ]


def test_a_rep_at_capacity_is_passed_over_within_a_run_as_one_by_one(database: Database) -> None:
    """Loads count the leads assigned by earlier records of the same run."""
    standard_team(database, rep("ana", "dach", capacity=1), rep("ben", "dach", capacity=1))

    def run(apply: Apply) -> list[tuple[str, str | None]]:
        clock = FakeClock(START)
        before = len(outbox_events(database))
        apply(database, clock, [scored("A", lead_id=uuid.uuid4()) for _ in range(3)])
        routed = [e for e in outbox_events(database)[before:] if isinstance(e, LeadRoutedV1)]
        return [(event.outcome, event.rep.rep_id if event.rep else None) for event in routed]

    by_run = run(together)
    assert sorted(by_run) == [("assigned", "ana"), ("assigned", "ben"), ("queued", None)]
    assert run(one_by_one) == [("queued", None)] * 3  # both are at capacity now


def test_a_run_locks_and_writes_the_round_robins_of_all_its_teams_together(
    database: Database,
) -> None:
    """Three teams or one: their round robins are made if new, locked and read with three
    statements, and written back with two at the commit; a new lead's row is written once,
    whole, not inserted and then updated."""
    countries = {"DE": "dach", "FR": "france", "AT": "austria"}
    seed(
        database,
        *(territory(country.lower(), country) for country in countries),
        *(team(name, territory_ids=[c.lower()], verticals=[]) for c, name in countries.items()),
        *(rep(f"{name}-{n}", name) for name in countries.values() for n in (1, 2)),
    )

    def run(teams: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
        by_team = {name: country for country, name in countries.items()}
        location = {"region": None, "postal_code": None}
        leads = [scored("A", lead={"country": by_team[name], **location}) for name in teams]
        before = len(outbox_events(database))
        with statements_sent(database.engine) as sent:
            together(database, FakeClock(START), leads)
        statements = [" ".join(statement.split()) for statement, _ in sent]
        routed = [e for e in outbox_events(database)[before:] if isinstance(e, LeadRoutedV1)]
        return statements, [(e.team_id or "", e.rep.rep_id if e.rep else "") for e in routed]

    def on_round_robins(statements: list[str]) -> list[str]:
        """ "INSERT team_rotations", "SELECT rotation_passes", ...: what touched them."""
        kinds = []
        for statement in statements:
            table = re.search(r"\b(team_rotations|rotation_passes)\b", statement)
            if table:
                kinds.append(f"{statement.split()[0]} {table.group(1)}")
        return kinds

    made = ["INSERT team_rotations", "SELECT team_rotations", "SELECT rotation_passes"]
    runs = (
        (["dach", "france", "austria"] * 2, "INSERT rotation_passes"),  # the reps' first turns
        (["dach"] * 3, "UPDATE rotation_passes"),
        (["france", "austria"] * 2, "UPDATE rotation_passes"),
    )
    for teams, passes_written in runs:
        statements, routed = run(teams)
        assert [team_id for team_id, _ in routed] == teams
        assert all(rep_id.startswith(f"{team_id}-") for team_id, rep_id in routed)
        assert on_round_robins(statements) == [*made, "UPDATE team_rotations", passes_written]
        assert not [s for s in statements if s.startswith("UPDATE routed_leads")], statements
