"""SLA timers under a controllable clock, on SQLite and PostgreSQL: warning, breach,
re-assignment to a rep who never had the lead, escalation, and several instances."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from services.routing import repository, timers
from services.routing.models import SlaPolicyRow
from services.routing.service import build_definition
from services.routing.tests.support import (
    START,
    FakeClock,
    assignments,
    outbox_events,
    rep,
    route,
    scored,
    seed,
    standard_team,
)
from shared.contracts import LeadRoutedV1, LeadSlaV1
from shared.db import Database
from shared.service import ServiceRuntime
from shared.testing.pytest_plugin import service_settings
from shared.testing.statements import statements_sent


def runtime_for(database: Database, clock: FakeClock) -> ServiceRuntime:
    definition = build_definition(clock=clock)
    url = database.url.render_as_string(hide_password=False)
    return ServiceRuntime(definition, service_settings(definition, database=Database(url)))


def sla_events(database: Database) -> list[tuple[str, str | None]]:
    return [(e.status, e.rep_id) for e in outbox_events(database) if isinstance(e, LeadSlaV1)]


def routed(database: Database) -> list[LeadRoutedV1]:
    return [e for e in outbox_events(database) if isinstance(e, LeadRoutedV1)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)  # Tuesday 10:00 UTC


def test_a_clock_warns_then_breaches_and_the_lead_goes_to_a_rep_who_never_had_it(
    database: Database, clock: FakeClock
) -> None:
    standard_team(database, rep("ana", "dach"), rep("ben", "dach"), rep("cy", "dach"))
    runtime = runtime_for(database, clock)
    lead = scored("A")
    first = route(database, lead, clock())
    assert first is not None
    assert first.rep_id == "ana"
    # One business day (09:00-17:00 UTC): due Wednesday 10:00, warned at 75%, 16:00 Tuesday.
    assert first.sla_due_at == START + timedelta(days=1)
    assert first.sla_warn_at == START + timedelta(hours=6)

    clock.set(START + timedelta(hours=5, minutes=59))
    assert timers.tick(runtime, clock) == 0
    clock.set(START + timedelta(hours=6))
    assert timers.tick(runtime, clock) == 1
    assert sla_events(database) == [("warning", "ana")]
    assert timers.tick(runtime, clock) == 0  # warned once

    clock.set(START + timedelta(days=1))
    assert timers.tick(runtime, clock) == 1
    assert sla_events(database) == [("warning", "ana"), ("breached", "ana"), ("reassigned", "ana")]
    second = routed(database)[-1]
    assert second.rep is not None
    assert (second.rep.rep_id, second.attempt, second.reassignment_of) == ("ben", 2, first.id)
    assert second.explanation.startswith("follow-up SLA of ana breached")
    assert second.sla_due_at == clock() + timedelta(days=1)
    old, new = assignments(database, lead.lead_id)
    assert (old.state, old.sla_status, old.ended_reason) == ("superseded", "breached", "sla_breach")
    assert (new.state, new.sla_status) == ("open", "running")


def test_breaches_reassign_up_to_the_limit_then_escalate_to_the_team(
    database: Database, clock: FakeClock
) -> None:
    standard_team(
        database, rep("ana", "dach"), rep("ben", "dach"), rep("cy", "dach"), rep("dee", "dach")
    )
    seed(
        database,
        SlaPolicyRow(follow_up_hours={"A": 2}, max_reassignments=2, updated_at=START),
    )
    runtime = runtime_for(database, clock)
    lead = scored("A")
    route(database, lead, clock())
    for _ in range(3):
        clock.advance(hours=2)
        assert timers.tick(runtime, clock) == 1
    statuses = [status for status, _ in sla_events(database) if status != "warning"]
    assert statuses == ["breached", "reassigned", "breached", "reassigned", "breached", "escalated"]
    chain = routed(database)  # what the worker published (ana's assignment came before)
    assert [(e.outcome, e.rep.rep_id if e.rep else None, e.attempt) for e in chain] == [
        ("assigned", "ben", 2),
        ("assigned", "cy", 3),
        ("queued", None, 4),
    ]
    escalated = chain[-1]
    assert (escalated.rule, escalated.team_id) == ("escalation", "dach")
    assert "2 re-assignment(s) already made: escalated to the queue of team dach" in (
        escalated.explanation
    )
    clock.advance(days=30)
    assert timers.tick(runtime, clock) == 0  # no clock runs on a queued lead


def test_when_nobody_else_can_take_it_the_breach_escalates_with_the_reasons(
    database: Database, clock: FakeClock
) -> None:
    standard_team(database, rep("ana", "dach"), rep("ben", "dach", active=False))
    runtime = runtime_for(database, clock)
    route(database, scored("B"), clock())
    clock.advance(days=7)
    assert timers.tick(runtime, clock) == 1
    escalated = routed(database)[-1]
    assert (escalated.outcome, escalated.rule) == ("queued", "escalation")
    assert [(s.rep_id, s.reason) for s in escalated.skipped] == [
        ("ana", "had_lead_before"),
        ("ben", "inactive"),
    ]
    assert "nobody else can take it" in escalated.explanation


def test_deadlines_follow_the_reps_time_zone_and_weekends(
    database: Database, clock: FakeClock
) -> None:
    standard_team(database, rep("kei", "dach", time_zone="Asia/Tokyo"))
    clock.set(START.replace(day=13, hour=7))  # Friday 16:00 in Tokyo
    first = route(database, scored("A"), clock())
    assert first is not None
    # 1h on Friday, 7h on Monday (Tokyo): Monday 16:00 JST = 07:00 UTC.
    assert first.sla_due_at == START.replace(day=16, hour=7)


def test_two_instances_never_move_one_clock_twice(database: Database, clock: FakeClock) -> None:
    reps = [rep(f"rep{i}", "dach", capacity=100) for i in range(6)]
    standard_team(database, *reps)
    for _ in range(30):
        route(database, scored("A"), clock())
    clock.advance(days=1)
    instances = [runtime_for(database, clock), runtime_for(database, clock)]
    moved: list[int] = []

    def work(runtime: ServiceRuntime) -> None:
        total = 0
        while (count := timers.tick(runtime, clock)) or total == 0:
            total += count
            if not count:
                break
        moved.append(total)

    threads = [threading.Thread(target=work, args=(runtime,)) for runtime in instances]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    while timers.tick(instances[0], clock):
        pass
    for runtime in instances:
        runtime.db.dispose()
    breaches = [status for status, _ in sla_events(database) if status == "breached"]
    assert len(breaches) == 30
    assert len([e for e in routed(database) if e.attempt == 2]) == 30


def test_the_worker_finds_its_clocks_without_reading_every_open_assignment(
    database: Database, clock: FakeClock
) -> None:
    """Every open assignment has a running clock: the worker's queries (every second) must
    go to the due ones through an index, not read them all."""
    if not database.is_postgresql:
        pytest.skip("the plans are PostgreSQL's")
    standard_team(database, rep("ana", "dach", capacity=10_000))
    for _ in range(3):
        route(database, scored("A"), clock())
    with database.transaction() as session:
        # Many more clocks like the three, none of them due yet (a week away).
        session.execute(
            text(
                "INSERT INTO assignments (id, lead_id, attempt, outcome, grade, rep_id,"
                " team_id, rule, explanation, skipped, routed_at, state, sla_status,"
                " sla_warn_at, sla_due_at)"
                " SELECT gen_random_uuid(), gen_random_uuid(), 1, outcome, grade, rep_id,"
                " team_id, rule, explanation, skipped, routed_at, state, sla_status,"
                " sla_warn_at + interval '7 days', sla_due_at + interval '7 days'"
                " FROM assignments, generate_series(1, 2000)"
            )
        )
    with database.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "ANALYZE assignments"
        )
    clock.advance(days=1)
    with statements_sent(database.engine) as statements, database.transaction() as session:
        due = repository.due_timers(session, now=clock(), limit=100)
        upcoming = repository.next_timer(session)
    assert len(due) == 3  # the three routed, a day later: past their deadline
    assert upcoming is not None
    assert len(statements) == 3
    with database.engine.connect() as connection:
        for statement, parameters in statements:
            plan = "\n".join(
                connection.exec_driver_sql("EXPLAIN " + statement, parameters).scalars()
            )
            assert "Seq Scan" not in plan, plan
            assert "ix_assignments_sla_" in plan, plan


def test_a_public_holiday_calendar_pauses_the_clock(database: Database, clock: FakeClock) -> None:
    standard_team(database, rep("sepp", "dach", holiday_calendar="DE-BY"))
    clock.set(START.replace(month=1, day=5, hour=16))  # Monday; Tuesday 6 January is Epiphany
    first = route(database, scored("A"), clock())
    assert first is not None
    assert first.sla_due_at == START.replace(month=1, day=7, hour=16)


def test_a_queued_lead_is_taken_once_someone_can(database: Database, clock: FakeClock) -> None:
    from services.routing.tests.support import feedback
    from shared.testing import factories

    standard_team(database, rep("ana", "dach", capacity=1))
    runtime = runtime_for(database, clock)
    first, waiting = scored("A"), scored("B")
    route(database, first, clock())
    queued = route(database, waiting, clock())
    assert queued is not None
    assert queued.state == "queued"
    assert timers.drain(runtime, clock) == 0  # ana is still full

    feedback(database, factories.lead_feedback(lead_id=first.lead_id, status="won"), clock())
    clock.advance(minutes=5)
    assert timers.drain(runtime, clock) == 1
    [taken] = routed(database)
    assert taken.rep is not None
    assert (taken.rep.rep_id, taken.reassignment_of, taken.lead_id) == (
        "ana",
        queued.id,
        waiting.lead_id,
    )
    assert taken.explanation.startswith("waited in the queue (team dach)")
    assert timers.drain(runtime, clock) == 0


def test_escalated_leads_stay_in_the_queue_for_the_team(
    database: Database, clock: FakeClock
) -> None:
    standard_team(database, rep("ana", "dach"), rep("ben", "dach"))
    seed(database, SlaPolicyRow(follow_up_hours={"A": 1}, max_reassignments=0, updated_at=START))
    runtime = runtime_for(database, clock)
    route(database, scored("A"), clock())
    clock.advance(hours=1)
    assert timers.tick(runtime, clock) == 1
    assert routed(database)[-1].rule == "escalation"
    assert timers.drain(runtime, clock) == 0  # ben could take it, but it is the team's now
