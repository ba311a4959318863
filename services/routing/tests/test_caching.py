"""The configuration and round-robin state routing keeps per transaction and across
transactions (services/routing/caching.py), on SQLite and PostgreSQL: a change is seen by
the next lead, whichever way it was made; a rollback forgets what was kept; routing many
leads in one transaction decides exactly as routing them one by one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, text, update
from sqlmodel import col

from services.routing import assigning, caching, repository
from services.routing.models import (
    AssignmentRow,
    ConfigVersionRow,
    NamedAccountRow,
    NurtureProgramRow,
    RepAbsenceRow,
    RepRow,
    SlaPolicyRow,
    TeamRow,
    TerritoryRow,
)
from services.routing.service import DEFINITION, build_definition
from services.routing.tests.support import (
    START,
    FakeClock,
    Recorder,
    absence,
    account,
    program,
    rep,
    route,
    scored,
    seed,
    standard_team,
    team,
    territory,
)
from shared.contracts import LeadRoutedV1
from shared.db import Database
from shared.http import create_app
from shared.service import ServiceRuntime
from shared.testing.pytest_plugin import DatabaseFactory, serve_app, service_settings


def version(database: Database) -> int:
    with database.read() as session:
        found = caching.config_version(session)
    assert found is not None
    return found


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many times the configuration was read from its tables."""
    caching.forget_snapshots()
    calls: list[int] = []
    real = repository.load_config

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(repository, "load_config", counted)
    yield calls
    caching.forget_snapshots()


# ---------------------------------------------------------------- the version


def test_every_write_to_a_configuration_table_moves_the_version(database: Database) -> None:
    """The triggers of migration routing_0005 are on every configuration table (a migration
    that rebuilds one of them on SQLite loses them: see that migration)."""
    rows: list[tuple[Any, Any, Any]] = [
        (territory("de", "DE"), TerritoryRow.territory_id == "de", {"name": "Germany"}),
        (team("dach"), TeamRow.team_id == "dach", {"name": "DACH"}),
        (rep("ana", "dach"), RepRow.rep_id == "ana", {"capacity": 3}),
        (absence("ana", START), RepAbsenceRow.rep_id == "ana", {"note": "away"}),
        (account("beispiel.de", "ana"), NamedAccountRow.domain == "beispiel.de", {"name": "B"}),
        (program("nurture-c", ["C"]), NurtureProgramRow.program_id == "nurture-c", {"name": "C"}),
        (
            SlaPolicyRow(id=1, follow_up_hours={"A": 4}, updated_at=START),
            SlaPolicyRow.id == 1,
            {"max_reassignments": 1},
        ),
    ]
    for row, where, values in rows:
        model = type(row)
        before = version(database)
        seed(database, row)
        inserted = version(database)
        with database.transaction() as session:
            session.execute(update(model).where(where).values(**values))
        updated = version(database)
        with database.transaction() as session:
            session.execute(delete(model).where(where))
        deleted = version(database)
        assert before < inserted < updated < deleted, model.__tablename__
    seed(database, territory("de", "DE"), team("dach"), rep("ana", "dach"))
    before = version(database)
    with database.transaction() as session:
        session.execute(text("UPDATE reps SET capacity = 7"))
    assert version(database) > before


def test_what_is_not_configuration_leaves_the_version(database: Database) -> None:
    standard_team(database)
    before = version(database)
    route(database, scored("A"), START)
    route(database, scored("C"), START)
    assert version(database) == before


# ---------------------------------------------------------------- reading it once


def test_a_transaction_reads_the_configuration_once(database: Database, reads: list[int]) -> None:
    standard_team(database)
    with database.transaction() as session:
        for grade in ("A", "B", "C", "A", "D", "A"):
            assigning.on_lead_scored(session, payload=scored(grade), now=START, emit=Recorder())
    assert len(reads) == 1


def test_an_unchanged_configuration_is_not_read_again(database: Database, reads: list[int]) -> None:
    standard_team(database)
    route(database, scored("A"), START)
    route(database, scored("A"), START)
    route(database, scored("C"), START)
    assert len(reads) == 1


def test_a_change_written_without_the_api_is_seen_by_the_next_lead(
    database: Database, reads: list[int]
) -> None:
    standard_team(database, rep("ana", "dach"))
    assert (route(database, scored("A"), START) or _none()).rep_id == "ana"
    seed(database, team("solo"), rep("ben", "solo"), account("beispiel.de", "ben"))
    routed = route(database, scored("A"), START) or _none()
    assert (routed.rep_id, routed.rule) == ("ben", "named_account")
    with database.transaction() as session:  # plain SQL, as an operator might
        session.execute(text("UPDATE reps SET active = false WHERE rep_id = 'ben'"))
    routed = route(database, scored("A"), START) or _none()
    assert (routed.rep_id, routed.rule) == ("ana", "round_robin")
    assert len(reads) == 3


def test_a_configuration_written_in_the_same_transaction_is_seen_and_kept_for_it_alone(
    database: Database, reads: list[int]
) -> None:
    standard_team(database, rep("ana", "dach"))
    with pytest.raises(RolledBack):
        _change_and_route_then_roll_back(database)
    assert (route(database, scored("A"), START) or _none()).rep_id == "ana"
    assert len(reads) == 2  # the change was never committed: the first read still holds


def _change_and_route_then_roll_back(database: Database) -> None:
    with database.transaction() as session:
        first = assigning.on_lead_scored(session, payload=scored("A"), now=START, emit=Recorder())
        assert (first or _none()).rep_id == "ana"
        session.add(rep("ana-2", "dach"))
        session.get(RepRow, "ana").active = False  # type: ignore[union-attr]
        session.flush()
        routed = assigning.on_lead_scored(session, payload=scored("A"), now=START, emit=Recorder())
        assert (routed or _none()).rep_id == "ana-2"
        raise RolledBack


class RolledBack(Exception):
    pass


def _none() -> Any:
    raise AssertionError("the lead was not routed")


# ---------------------------------------------------------------- round robin


def _sequence(database: Database, grades: str, *, one_transaction: bool) -> list[str | None]:
    seed(database, rep("cleo", "dach", weight=3), rep("dan", "dach", capacity=2))
    leads = [scored(grade) for grade in grades]
    if one_transaction:
        with database.transaction() as session:
            routed = [
                assigning.on_lead_scored(session, payload=lead, now=START, emit=Recorder())
                for lead in leads
            ]
    else:
        routed = [route(database, lead, START) for lead in leads]
    return [row.rep_id if row else None for row in routed]


def test_leads_routed_in_one_transaction_go_where_they_would_one_by_one(
    database: Database, database_factory: DatabaseFactory, db_backend: str
) -> None:
    other = database_factory.create(db_backend, DEFINITION)
    try:
        for each in (database, other):
            standard_team(each)
        grades = "AABACABBADAAABBAAAAB" * 2
        together = _sequence(database, grades, one_transaction=True)
        apart = _sequence(other, grades, one_transaction=False)
    finally:
        database_factory.drop(other)
    assert together == apart
    assert together.count("dan") == 2  # his capacity, inside one transaction too


def test_a_rolled_back_savepoint_forgets_the_round_robin_move(database: Database) -> None:
    standard_team(database)
    with database.transaction() as session:
        savepoint = session.begin_nested()
        first = assigning.on_lead_scored(session, payload=scored("A"), now=START, emit=Recorder())
        savepoint.rollback()
        again = assigning.on_lead_scored(session, payload=scored("A"), now=START, emit=Recorder())
    assert first is not None
    assert again is not None
    assert again.rep_id == first.rep_id


def test_a_rolled_back_savepoint_keeps_the_moves_before_it_and_the_commit_writes_them(
    database: Database,
) -> None:
    standard_team(database)  # ana and ben, of equal weight: they take turns

    def next_rep(session: Any) -> str | None:
        routed = assigning.on_lead_scored(session, payload=scored("A"), now=START, emit=Recorder())
        return routed.rep_id if routed else None

    with database.transaction() as session:
        first = next_rep(session)
        savepoint = session.begin_nested()
        undone = next_rep(session)
        savepoint.rollback()
        third = next_rep(session)
    with database.transaction() as session:
        fourth = next_rep(session)  # read from what the commit wrote
    assert first != undone
    assert third == undone
    assert fourth == first


# ---------------------------------------------------------------- through the API


@pytest.fixture
async def client(database: Database) -> AsyncIterator[httpx.AsyncClient]:
    caching.forget_snapshots()
    definition = build_definition(clock=FakeClock(START))
    runtime = ServiceRuntime(definition, service_settings(definition, database=database))
    app = create_app(runtime, manage_runtime=False)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield http


async def _ok(response: httpx.Response) -> None:
    assert response.status_code < 300, response.text


async def test_a_change_through_the_api_is_seen_by_the_next_lead(
    client: httpx.AsyncClient, database: Database
) -> None:
    for path, body in [
        ("/v1/territories", {"territory_id": "de", "country": "DE"}),
        ("/v1/teams", {"team_id": "dach", "territory_ids": ["de"]}),
        ("/v1/reps", {"rep_id": "ana", "team_id": "dach"}),
        ("/v1/reps", {"rep_id": "ben", "team_id": "dach"}),
    ]:
        await _ok(await client.post(path, json=body))

    def next_lead() -> LeadRoutedV1:
        events = Recorder()
        route(database, scored("A"), START, events)
        [event] = events.of(LeadRoutedV1)
        assert isinstance(event, LeadRoutedV1)
        return event

    assert next_lead().rep is not None

    await _ok(
        await client.put("/v1/reps/ben", json={"rep_id": "ben", "team_id": "dach", "active": False})
    )
    routed = next_lead()
    assert routed.rep is not None
    assert routed.rep.rep_id == "ana"

    await _ok(await client.post("/v1/reps/ana/out-of-office", json={}))
    routed = next_lead()
    assert (routed.outcome, routed.rule) == ("queued", "team_queue")
    assert "ana out_of_office" in routed.explanation

    await _ok(await client.delete("/v1/reps/ana/out-of-office"))
    await _ok(await client.post("/v1/accounts", json={"domain": "beispiel.de", "rep_id": "ana"}))
    routed = next_lead()
    assert (routed.rule, routed.rep and routed.rep.rep_id) == ("named_account", "ana")

    due_before = routed.sla_due_at
    await _ok(await client.put("/v1/sla-policy", json={"follow_up_hours": {"A": 2}}))
    routed = next_lead()
    assert routed.sla_due_at is not None
    assert due_before is not None
    assert routed.sla_due_at < due_before

    await _ok(await client.put("/v1/teams/dach", json={"team_id": "dach", "territory_ids": []}))
    await _ok(await client.delete("/v1/territories/de"))
    await _ok(await client.delete("/v1/accounts/beispiel.de"))
    routed = next_lead()
    assert routed.explanation.startswith("DE")  # no named account any more
    assert "every territory" in routed.explanation

    with database.read() as session:
        stored = session.execute(select(col(ConfigVersionRow.version))).scalar()
    assert stored == version(database)


# ---------------------------------------------------------------- open loads kept


def test_loads_are_counted_once_a_transaction_and_moved_by_its_own_writes(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ana takes one lead at a time: the lead she takes counts at once, the one closed
    in the same transaction frees her at once, and the team's loads are counted once."""
    standard_team(database, rep("ana", "dach", capacity=1))
    counts: list[list[str]] = []
    counted = repository.open_loads

    def counting(session: Any, *, rep_ids: Any) -> dict[str, int]:
        counts.append(sorted(rep_ids))
        return counted(session, rep_ids=rep_ids)

    monkeypatch.setattr(repository, "open_loads", counting)
    with database.transaction() as session:
        first = assigning.on_lead_scored(session, payload=scored("A"), now=START, emit=Recorder())
        assert (first or _none()).rep_id == "ana"
        full = assigning.on_lead_scored(session, payload=scored("A"), now=START, emit=Recorder())
        assert (full or _none()).outcome == "queued"
        (first or _none()).state = "closed"  # as feedback closes it
        freed = assigning.on_lead_scored(session, payload=scored("A"), now=START, emit=Recorder())
        assert (freed or _none()).rep_id == "ana"
    assert counts == [["ana"]]
    with database.read() as session:
        assert repository.open_loads(session, rep_ids=["ana"]) == {"ana": 1}


def test_loads_go_back_with_a_savepoint_rolled_back(database: Database) -> None:
    standard_team(database, rep("ana", "dach", capacity=1))
    with database.transaction() as session:
        assert repository.kept_loads(session, rep_ids=["ana"]) == {"ana": 0}
        with pytest.raises(RolledBack):
            _take_then_roll_back(session)
        assert repository.kept_loads(session, rep_ids=["ana"]) == {"ana": 0}
        again = assigning.on_lead_scored(session, payload=scored("A"), now=START, emit=Recorder())
        assert (again or _none()).rep_id == "ana"


def test_a_new_transaction_counts_the_loads_anew(database: Database) -> None:
    standard_team(database, rep("ana", "dach", capacity=1))
    assert (route(database, scored("A"), START) or _none()).rep_id == "ana"
    with database.transaction() as session:
        session.execute(update(AssignmentRow).values(state="closed"))  # by hand, in SQL
    assert (route(database, scored("A"), START) or _none()).rep_id == "ana"


def _take_then_roll_back(session: Any) -> None:
    with session.begin_nested():
        taken = assigning.on_lead_scored(session, payload=scored("A"), now=START, emit=Recorder())
        assert (taken or _none()).rep_id == "ana"
        assert repository.kept_loads(session, rep_ids=["ana"]) == {"ana": 1}
        raise RolledBack
