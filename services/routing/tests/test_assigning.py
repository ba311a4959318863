"""Routing leads against the database, on SQLite and PostgreSQL: what is stored, what is
emitted, and the round-robin state across restarts and concurrent instances."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
from sqlalchemy import select

from services.routing import repository
from services.routing.domain.round_robin import Rotation, pick
from services.routing.models import AssignmentRow, RotationPassRow, RoutedLeadRow, TeamRotationRow
from services.routing.tests.support import (
    START,
    Recorder,
    absence,
    account,
    assignments,
    feedback,
    rep,
    route,
    scored,
    seed,
    standard_team,
)
from shared import schema_files
from shared.contracts import LeadRoutedV1
from shared.db import Database
from shared.db.rows import new_row
from shared.testing import factories


def valid(event: LeadRoutedV1) -> LeadRoutedV1:
    jsonschema.validate(
        json.loads(event.model_dump_json()), schema_files.load(LeadRoutedV1.schema_name())
    )
    return event


def test_an_a_lead_is_assigned_stored_with_its_reasons_and_published(database: Database) -> None:
    standard_team(
        database,
        rep("ana", "dach", active=False),
        rep("ben", "dach", name="Ben", email="ben@example.com", time_zone="Europe/Berlin"),
    )
    events = Recorder()
    payload = scored("A")
    stored = route(database, payload, START, events)
    assert stored is not None

    [event] = events.of(LeadRoutedV1)
    valid(event)
    assert (event.outcome, event.rule, event.team_id, event.grade, event.attempt) == (
        "assigned",
        "round_robin",
        "dach",
        "A",
        1,
    )
    assert event.rep is not None
    assert (event.rep.rep_id, event.rep.name, event.rep.crm_user_id) == ("ben", "Ben", "crm-ben")
    assert [(s.rep_id, s.reason) for s in event.skipped] == [("ana", "inactive")]
    assert "team dach covers it" in event.explanation
    # One business day in Berlin hours: Tuesday 11:00 local -> Wednesday 11:00 local.
    assert event.sla_due_at == START + timedelta(days=1)

    [row] = assignments(database, payload.lead_id)
    assert (row.id, row.rep_id, row.state, row.sla_status) == (
        event.assignment_id,
        "ben",
        "open",
        "running",
    )
    assert row.skipped == [{"rep_id": "ana", "reason": "inactive"}]
    assert row.explanation == event.explanation
    with database.read() as session:
        lead = session.get(RoutedLeadRow, payload.lead_id)
        assert lead is not None
        assert (lead.state, lead.current_assignment_id, lead.country) == (
            "open",
            row.id,
            "DE",
        )


def test_the_round_robin_continues_where_it_was_after_a_restart(database: Database) -> None:
    standard_team(database, rep("ana", "dach"), rep("ben", "dach"), rep("cy", "dach", weight=2))
    picked = []
    for _ in range(4):
        picked.append(route(database, scored("B"), START).rep_id)  # type: ignore[union-attr]
    # A new process: a fresh engine on the same database.
    restarted = Database(database.url.render_as_string(hide_password=False))
    try:
        for _ in range(4):
            picked.append(route(restarted, scored("B"), START).rep_id)  # type: ignore[union-attr]
    finally:
        restarted.dispose()
    # Exactly the sequence of one uninterrupted rotation.
    rotation, expected = Rotation(), []
    for _ in range(8):
        result = pick(rotation, {"ana": 1, "ben": 1, "cy": 2})
        rotation = result.rotation
        expected.append(result.rep_id)
    assert picked == expected
    assert Counter(picked) == {"cy": 4, "ana": 2, "ben": 2}


def test_capacity_counts_open_leads_and_nobody_free_queues_with_the_reason(
    database: Database,
) -> None:
    standard_team(database, rep("ana", "dach", capacity=1), rep("ben", "dach", capacity=1))
    first, second = scored("A"), scored("B")
    assert route(database, first, START).rep_id == "ana"  # type: ignore[union-attr]
    assert route(database, second, START).rep_id == "ben"  # type: ignore[union-attr]

    events = Recorder()
    third = scored("A")
    route(database, third, START, events)
    [queued] = events.of(LeadRoutedV1)
    valid(queued)
    assert (queued.outcome, queued.rule, queued.team_id, queued.rep) == (
        "queued",
        "team_queue",
        "dach",
        None,
    )
    assert [(s.rep_id, s.reason) for s in queued.skipped] == [
        ("ana", "at_capacity"),
        ("ben", "at_capacity"),
    ]
    assert "ana at_capacity 1/1" in queued.explanation

    # A new score while still nobody is free: it stays queued, no second alert.
    again = Recorder()
    route(
        database,
        scored("A", lead_id=third.lead_id, scored_at=START + timedelta(minutes=5)),
        START,
        again,
    )
    assert again.events == []

    # ana closes her lead: the next score of the queued lead reaches her.
    feedback(database, factories.lead_feedback(lead_id=first.lead_id, status="won"), START)
    later = Recorder()
    route(
        database,
        scored("A", lead_id=third.lead_id, scored_at=START + timedelta(minutes=9)),
        START,
        later,
    )
    [assigned] = later.of(LeadRoutedV1)
    assert (assigned.outcome, assigned.rep.rep_id if assigned.rep else None) == ("assigned", "ana")
    assert assigned.reassignment_of == queued.assignment_id
    assert assigned.explanation.startswith("waiting in a queue: routed again")


def test_a_named_account_goes_to_its_owner_unless_out_of_office(database: Database) -> None:
    standard_team(database, rep("ana", "dach"), rep("ben", "dach"))
    seed(
        database,
        account("beispiel.de", "ben"),
        absence("ben", START + timedelta(hours=1), START + timedelta(days=2)),
    )
    events = Recorder()
    route(database, scored("A"), START, events)
    route(database, scored("A"), START + timedelta(hours=2), events)
    owner, fallback = events.of(LeadRoutedV1)
    assert (owner.rule, owner.rep.rep_id if owner.rep else None) == ("named_account", "ben")
    assert (fallback.rule, fallback.rep.rep_id if fallback.rep else None) == ("round_robin", "ana")
    assert [(s.rep_id, s.reason) for s in fallback.skipped] == [("ben", "out_of_office")]


def test_c_goes_to_nurture_and_a_rise_to_a_pulls_it_out(database: Database) -> None:
    standard_team(database)
    events = Recorder()
    first = scored("C")
    route(database, first, START, events)
    rise = scored(
        "A", lead_id=first.lead_id, previous_grade="C", scored_at=START + timedelta(days=3)
    )
    route(database, rise, START + timedelta(days=3), events)
    nurture, assigned = events.of(LeadRoutedV1)
    valid(nurture)
    assert (nurture.outcome, nurture.program_id, nurture.rule, nurture.rep) == (
        "nurture",
        "nurture-c",
        "nurture",
        None,
    )
    assert nurture.sla_due_at is None
    assert (assigned.outcome, assigned.reassignment_of, assigned.grade) == (
        "assigned",
        nurture.assignment_id,
        "A",
    )
    assert assigned.explanation.startswith("pulled out of nurture: grade rose from C to A")
    old, new = assignments(database, first.lead_id)
    assert (old.state, old.ended_reason, new.state) == ("superseded", "rerouted", "open")


def test_new_scores_of_an_assigned_lead_change_nothing(database: Database) -> None:
    standard_team(database)
    first = scored("B")
    route(database, first, START)
    events = Recorder()
    for grade in ("A", "C", "B"):
        route(
            database,
            scored(grade, lead_id=first.lead_id, scored_at=START + timedelta(hours=1)),
            START,
            events,
        )
    assert events.events == []
    assert len(assignments(database, first.lead_id)) == 1


def test_two_instances_routing_at_once_share_one_fair_rotation(database: Database) -> None:
    standard_team(
        database, rep("ana", "dach", capacity=1000), rep("ben", "dach", weight=3, capacity=1000)
    )
    url = database.url.render_as_string(hide_password=False)
    instances = [Database(url), Database(url)]
    errors: list[BaseException] = []

    def work(instance: Database) -> None:
        try:
            for _ in range(20):
                route(instance, scored("A"), START)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(instance,)) for instance in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for instance in instances:
        instance.dispose()
    assert errors == []
    with database.read() as session:
        counts = repository.open_loads(session, rep_ids=["ana", "ben"])
        rotation = session.get(TeamRotationRow, "dach")
        passes = {
            row.rep_id: row.pass_value for row in session.execute(select(RotationPassRow)).scalars()
        }
    # 40 leads, weights 1:3, each decision saw the previous one's state: exactly 10 and 30,
    # and both reps end level at the team's virtual time.
    assert counts == {"ana": 10, "ben": 30}
    assert rotation is not None
    assert passes["ana"] == passes["ben"] == rotation.virtual_time


def test_an_older_score_arriving_late_is_ignored(database: Database) -> None:
    standard_team(database)
    first = scored("C", scored_at=START + timedelta(hours=1))
    route(database, first, START)
    events = Recorder()
    route(database, scored("A", lead_id=first.lead_id, scored_at=START), START, events)
    assert events.events == []
    with database.read() as session:
        lead = session.get(RoutedLeadRow, first.lead_id)
        assert lead is not None
        assert lead.grade == "C"


def test_a_lead_without_any_team_is_queued_with_no_team(database: Database) -> None:
    standard_team(database)
    events = Recorder()
    route(
        database,
        scored("A", lead={"country": "FR", "region": None, "postal_code": "75001"}),
        START,
        events,
    )
    [event] = events.of(LeadRoutedV1)
    assert (event.outcome, event.rule, event.team_id) == ("queued", "no_team", None)
    assert "no team covers FR" in event.explanation
    assert uuid.UUID(str(event.assignment_id))


def test_a_named_account_owner_at_capacity_is_skipped_whatever_the_domain_spelling(
    database: Database,
) -> None:
    standard_team(database, rep("ana", "dach"), rep("ben", "dach", capacity=1))
    seed(database, account("beispiel.de", "ben"))
    spelled = {"domain": "WWW.Beispiel.DE"}
    first, second = Recorder(), Recorder()
    route(database, scored("A", lead=dict(spelled)), START, first)
    route(database, scored("A", lead=dict(spelled)), START, second)
    [owner] = first.of(LeadRoutedV1)
    [fallback] = second.of(LeadRoutedV1)
    assert (owner.rule, owner.rep.rep_id if owner.rep else None) == ("named_account", "ben")
    assert (fallback.rule, fallback.rep.rep_id if fallback.rep else None) == ("round_robin", "ana")
    assert [(s.rep_id, s.reason) for s in fallback.skipped] == [("ben", "at_capacity")]


def test_the_rows_a_decision_writes_are_the_rows_their_models_build() -> None:
    """Routing builds its assignment and lead rows without SQLModel's constructor
    (shared.db.rows): each gets the defaults the model gives, and lists of its own."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {"id": uuid.uuid4(), "lead_id": uuid.uuid4(), "outcome": "assigned"}
    values |= {"grade": "A", "routed_at": now, "state": "open"}
    built = [new_row(AssignmentRow, **values) for _ in range(2)]
    model = AssignmentRow(**values)
    for row in built:
        assert {name: getattr(row, name) for name in AssignmentRow.model_fields} == {
            name: getattr(model, name) for name in AssignmentRow.model_fields
        }
    assert built[0].skipped is not built[1].skipped
    lead: dict[str, Any] = {"lead_id": uuid.uuid4(), "grade": "B", "scored_at": now}
    lead |= {"updated_at": now}
    assert {
        name: getattr(new_row(RoutedLeadRow, **lead), name) for name in RoutedLeadRow.model_fields
    } == {name: getattr(RoutedLeadRow(**lead), name) for name in RoutedLeadRow.model_fields}
