"""Queries of the routing service. Keyword-only arguments; nothing here commits.

Locks: routing one lead takes, in this order, the lead's row and then the round-robin rows
of the teams involved (sorted by team id), all ``FOR UPDATE`` on PostgreSQL, so several
instances of the service route, re-assign and apply feedback without losing an update. On
SQLite a write transaction holds the whole database (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Insert, Select, bindparam, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from services.routing import caching
from services.routing.domain.business_hours import WorkingHours, week_from_mapping
from services.routing.domain.model import (
    Absence,
    NamedAccount,
    NurtureProgram,
    Rep,
    RoutingConfig,
    Team,
    Territory,
    normalize_domain,
)
from services.routing.domain.round_robin import Rotation
from services.routing.domain.sla import SlaPolicy
from services.routing.holiday_calendars import Holidays
from services.routing.models import (
    LOAD_OUTCOME,
    LOAD_STATE,
    AssignmentRow,
    FeedbackRow,
    NamedAccountRow,
    NurtureProgramRow,
    RepAbsenceRow,
    RepRow,
    RotationPassRow,
    RoutedLeadRow,
    SlaPolicyRow,
    TeamRotationRow,
    TeamRow,
    TerritoryRow,
)
from shared.db.clauses import among_parameter, dialect_of
from shared.db.rows import table_of

# ---------------------------------------------------------------- configuration


def working_hours_of(row: RepRow) -> WorkingHours:
    days = Holidays((date.fromisoformat(day) for day in row.holidays), row.holiday_calendar)
    if row.working_hours:
        return WorkingHours(
            week=week_from_mapping(row.working_hours), time_zone=row.time_zone, holidays=days
        )
    return WorkingHours(time_zone=row.time_zone, holidays=days)


def rep_of(row: RepRow, absences: Iterable[RepAbsenceRow] = ()) -> Rep:
    return Rep(
        rep_id=row.rep_id,
        team_id=row.team_id,
        name=row.name,
        email=row.email,
        crm_user_id=row.crm_user_id,
        hours=working_hours_of(row),
        capacity=row.capacity,
        weight=row.weight,
        active=row.active,
        absences=tuple(Absence(a.starts_at, a.ends_at) for a in absences),
    )


def team_of(row: TeamRow) -> Team:
    return Team(
        team_id=row.team_id,
        name=row.name,
        territory_ids=tuple(row.territory_ids),
        verticals=frozenset(row.verticals),
    )


def territory_of(row: TerritoryRow) -> Territory:
    return Territory(
        territory_id=row.territory_id,
        country=row.country,
        region=row.region,
        postal_prefixes=tuple(row.postal_prefixes),
        name=row.name,
    )


def program_of(row: NurtureProgramRow) -> NurtureProgram:
    return NurtureProgram(
        program_id=row.program_id,
        grades=frozenset(row.grades),
        verticals=frozenset(row.verticals),
        name=row.name,
    )


def load_config(
    session: Session, *, domain: str | None = None, all_accounts: bool = False
) -> RoutingConfig:
    """The live configuration; named accounts only for ``domain`` unless ``all_accounts``."""
    absences: dict[str, list[RepAbsenceRow]] = {}
    for absence in session.execute(select(RepAbsenceRow)).scalars():
        absences.setdefault(absence.rep_id, []).append(absence)
    accounts_query = select(NamedAccountRow)
    if not all_accounts:
        wanted = normalize_domain(domain)
        if wanted is None:
            accounts_query = accounts_query.where(col(NamedAccountRow.domain) == "")
        else:
            accounts_query = accounts_query.where(col(NamedAccountRow.domain) == wanted)
    return RoutingConfig.of(
        teams=[team_of(row) for row in _all(session, TeamRow)],
        reps=[rep_of(row, absences.get(row.rep_id, ())) for row in _all(session, RepRow)],
        territories=[territory_of(row) for row in _all(session, TerritoryRow)],
        accounts=[
            NamedAccount(domain=row.domain, rep_id=row.rep_id, name=row.name)
            for row in session.execute(accounts_query).scalars()
        ],
        programs=[program_of(row) for row in _all(session, NurtureProgramRow)],
    )


def routing_config(session: Session) -> RoutingConfig:
    """The configuration with every named account, read once per transaction and kept
    across transactions while it is unchanged (:mod:`services.routing.caching`)."""
    cache = caching.of(session)
    if cache.config is None:
        _read_config(session, cache)
    assert cache.config is not None
    return cache.config


def routing_policy(session: Session) -> SlaPolicy:
    """The SLA policy, kept like :func:`routing_config`."""
    cache = caching.of(session)
    if cache.policy is None:
        _read_config(session, cache)
    assert cache.policy is not None
    return cache.policy


def _read_config(session: Session, cache: caching.TransactionCache) -> None:
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    version = caching.config_version(session)  # before the rows: they are at least as new
    kept = caching.kept(engine)
    if version is not None and kept is not None and kept.version == version:
        cache.config, cache.policy = kept.config, kept.policy
        return
    cache.config = load_config(session, all_accounts=True)
    cache.policy = load_policy(session)
    if version is not None and not cache.wrote_config:
        caching.keep(engine, caching.Snapshot(version, cache.config, cache.policy))


def _all(session: Session, model: type[Any]) -> list[Any]:
    return list(session.execute(select(model)).scalars())


def load_policy(session: Session) -> SlaPolicy:
    row = session.get(SlaPolicyRow, 1)
    if row is None:
        return SlaPolicy()
    return policy_of(row)


def policy_of(row: SlaPolicyRow) -> SlaPolicy:
    return SlaPolicy(
        follow_up={grade: timedelta(hours=hours) for grade, hours in row.follow_up_hours.items()},
        warning_fraction=row.warning_fraction,
        max_reassignments=row.max_reassignments,
    )


# ---------------------------------------------------------------- leads


def lock_lead(
    session: Session, *, lead_id: uuid.UUID, skip_locked: bool = False
) -> RoutedLeadRow | None:
    """The lead's row, locked until the transaction ends (``skip_locked``: ``None`` when
    another transaction holds it, on PostgreSQL)."""
    query = _LOCK_LEAD_SKIP_LOCKED if skip_locked else _LOCK_LEAD
    return session.execute(query, {"lead_id": lead_id}).scalars().first()


# Built once: the statements run for every lead (building one costs more than running it).
_LOCK_LEAD = (
    select(RoutedLeadRow)
    .where(col(RoutedLeadRow.lead_id) == bindparam("lead_id"))
    .with_for_update()
)
_LOCK_LEAD_SKIP_LOCKED = _LOCK_LEAD.with_for_update(skip_locked=True)
_LEAD_FEEDBACK = (
    select(FeedbackRow)
    .where(col(FeedbackRow.lead_id) == bindparam("lead_id"))
    .order_by(col(FeedbackRow.occurred_at), col(FeedbackRow.id))
)
_OPEN_LOADS = (
    select(col(AssignmentRow.rep_id), func.count())
    .where(
        col(AssignmentRow.rep_id).in_(bindparam("rep_ids", expanding=True)),
        col(AssignmentRow.state) == LOAD_STATE,
        col(AssignmentRow.outcome) == LOAD_OUTCOME,
    )
    .group_by(col(AssignmentRow.rep_id))
)


# Those of every batch, the same way: its ids a parameter (shared.db.clauses.among_parameter).
@functools.cache
def _pending_feedback_of(dialect: str) -> Select[Any]:
    return (
        select(FeedbackRow)
        .where(
            among_parameter(dialect, col(FeedbackRow.lead_id), "lead_ids"),
            col(FeedbackRow.assignment_id).is_(None),
        )
        .order_by(col(FeedbackRow.occurred_at), col(FeedbackRow.id))
    )


@functools.cache
def _lock_leads(dialect: str) -> Select[Any]:
    return (
        select(RoutedLeadRow)
        .where(among_parameter(dialect, col(RoutedLeadRow.lead_id), "lead_ids"))
        .order_by(col(RoutedLeadRow.lead_id))
        .with_for_update()
    )


@functools.cache
def _new_rotation(dialect: str) -> Insert:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(TeamRotationRow).on_conflict_do_nothing()


@functools.cache
def _lock_rotations(dialect: str) -> Select[str, int]:
    return (
        select(col(TeamRotationRow.team_id), col(TeamRotationRow.virtual_time))
        .where(among_parameter(dialect, col(TeamRotationRow.team_id), "team_ids"))
        .order_by(col(TeamRotationRow.team_id))
        .with_for_update()
    )


@functools.cache
def _rotation_passes(dialect: str) -> Select[str, str, int]:
    return select(
        col(RotationPassRow.team_id), col(RotationPassRow.rep_id), col(RotationPassRow.pass_value)
    ).where(among_parameter(dialect, col(RotationPassRow.team_id), "team_ids"))


# On the table, not the model: the ORM's bulk update of many rows by a WHERE is not allowed.
_ROTATIONS = table_of(TeamRotationRow)
_MOVE_ROTATION = (
    _ROTATIONS.update()
    .where(_ROTATIONS.c.team_id == bindparam("b_team"))
    .values(virtual_time=bindparam("b_time"), updated_at=bindparam("b_at"))
)


def lead_assignments(session: Session, *, lead_id: uuid.UUID) -> list[AssignmentRow]:
    query = (
        select(AssignmentRow)
        .where(col(AssignmentRow.lead_id) == lead_id)
        .order_by(col(AssignmentRow.routed_at), col(AssignmentRow.attempt))
    )
    return list(session.execute(query).scalars())


def lead_feedback(session: Session, *, lead_id: uuid.UUID) -> list[FeedbackRow]:
    return list(session.execute(_LEAD_FEEDBACK, {"lead_id": lead_id}).scalars())


def pending_feedback(session: Session, *, lead_id: uuid.UUID) -> list[FeedbackRow]:
    """The lead's feedback that waits for its assignment, in the order it happened."""
    return pending_feedback_of(session, lead_ids=[lead_id]).get(lead_id, [])


def pending_feedback_of(
    session: Session, *, lead_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[FeedbackRow]]:
    """:func:`pending_feedback` of many leads in one query, by lead."""
    if not lead_ids:
        return {}
    query = _pending_feedback_of(dialect_of(session))
    pending: dict[uuid.UUID, list[FeedbackRow]] = {}
    for feedback in session.execute(query, {"lead_ids": list(lead_ids)}).scalars():
        pending.setdefault(feedback.lead_id, []).append(feedback)
    return pending


def lock_leads(
    session: Session, *, lead_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, RoutedLeadRow]:
    """:func:`lock_lead` of many leads in one query, locked in key order (two transactions
    with leads in common wait for each other, never deadlock)."""
    if not lead_ids:
        return {}
    query = _lock_leads(dialect_of(session))
    found = session.execute(query, {"lead_ids": list(lead_ids)}).scalars()
    return {lead.lead_id: lead for lead in found}


def reps_who_had(session: Session, *, lead_id: uuid.UUID) -> frozenset[str]:
    query = select(col(AssignmentRow.rep_id)).where(
        col(AssignmentRow.lead_id) == lead_id, col(AssignmentRow.rep_id).is_not(None)
    )
    return frozenset(str(rep) for rep in session.execute(query).scalars())


def kept_loads(session: Session, *, rep_ids: Collection[str]) -> dict[str, int]:
    """:func:`open_loads`, each rep counted once per transaction and then kept up to date by
    the transaction's own changes (:mod:`services.routing.caching`): a decision needs every
    team member's load, and counting them for every lead grew with the open leads."""
    kept = caching.of(session).loads
    missing = sorted(set(rep_ids) - kept.keys())
    if missing:
        session.flush()  # this transaction's pending assignments count
        counted = open_loads(session, rep_ids=missing)
        kept.update({rep_id: counted.get(rep_id, 0) for rep_id in missing})
    return {rep_id: kept[rep_id] for rep_id in rep_ids}


def open_loads(session: Session, *, rep_ids: Iterable[str]) -> dict[str, int]:
    """Open A/B leads per rep: assigned to them and not yet closed or handed on."""
    wanted = sorted(set(rep_ids))
    if not wanted:
        return {}
    rows = session.execute(_OPEN_LOADS, {"rep_ids": wanted}).all()
    return {str(rep): int(count) for rep, count in rows}


def recent_leads(session: Session, *, limit: int) -> list[RoutedLeadRow]:
    query = (
        select(RoutedLeadRow)
        .order_by(col(RoutedLeadRow.scored_at).desc(), col(RoutedLeadRow.lead_id))
        .limit(limit)
    )
    rows = list(session.execute(query).scalars())
    rows.reverse()  # oldest first: the order they were routed in
    return rows


# ---------------------------------------------------------------- round robin


def lock_rotations(
    session: Session, *, team_ids: Collection[str], now: datetime
) -> dict[str, Rotation]:
    """The round-robin state of the teams, locked in team id order until the commit
    (read once per transaction: the lock keeps everyone else from moving it meanwhile).
    The teams not yet locked are locked together, three statements however many they are:
    a team each cost three round trips, most of what routing a small batch asked of the
    database. A team's state is made the first time it is locked."""
    cache = caching.of(session)
    locked = cache.rotations
    missing = sorted(set(team_ids) - locked.keys())
    if missing:
        dialect = dialect_of(session)
        session.execute(
            _new_rotation(dialect),
            [{"team_id": team_id, "virtual_time": 0, "updated_at": now} for team_id in missing],
        )
        times = dict(session.execute(_lock_rotations(dialect), {"team_ids": missing}).all())
        passes: dict[str, dict[str, int]] = {team_id: {} for team_id in missing}
        for team_id, rep_id, value in session.execute(
            _rotation_passes(dialect), {"team_ids": missing}
        ):
            passes[team_id][rep_id] = value
        for team_id in missing:
            rotation = Rotation(virtual_time=times[team_id], passes=passes[team_id])
            locked[team_id] = cache.stored[team_id] = rotation
    return {team_id: locked[team_id] for team_id in sorted(set(team_ids))}


def save_rotation(
    session: Session, *, team_id: str, before: Rotation, after: Rotation, now: datetime
) -> None:
    """Move a locked team's round robin from ``before`` to ``after``: written before the
    transaction commits (:func:`write_rotations`), once however often it moved."""
    cache = caching.of(session)
    cache.stored.setdefault(team_id, before)
    cache.rotations[team_id] = after
    cache.moved_at[team_id] = now


_PASSES = table_of(RotationPassRow)
_UPDATE_PASS = (
    _PASSES.update()
    .where(_PASSES.c.team_id == bindparam("b_team"), _PASSES.c.rep_id == bindparam("b_rep"))
    .values(pass_value=bindparam("b_value"))
)


def write_rotations(session: Session, cache: caching.TransactionCache) -> None:
    """Write the round robins moved in this transaction: what changed since they were read,
    every team's in the same few statements."""
    moves: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for team_id, now in sorted(cache.moved_at.items()):
        before, after = cache.stored[team_id], cache.rotations[team_id]
        moves.append({"b_team": team_id, "b_time": after.virtual_time, "b_at": now})
        gone = [rep for rep in before.passes if rep not in after.passes]
        if gone:  # a rep who left the team (rare): a statement of its own
            session.execute(
                delete(RotationPassRow).where(
                    col(RotationPassRow.team_id) == team_id, col(RotationPassRow.rep_id).in_(gone)
                )
            )
        for rep_id, value in after.passes.items():
            if rep_id not in before.passes:
                added.append({"team_id": team_id, "rep_id": rep_id, "pass_value": value})
            elif before.passes[rep_id] != value:
                changed.append({"b_team": team_id, "b_rep": rep_id, "b_value": value})
        cache.stored[team_id] = after
    if moves:
        session.execute(_MOVE_ROTATION, moves)
    if added:
        session.execute(_PASSES.insert(), added)
    if changed:
        session.execute(_UPDATE_PASS, changed)
    cache.moved_at.clear()


# ---------------------------------------------------------------- SLA timers


def due_timers(session: Session, *, now: datetime, limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(assignment id, lead id) of running clocks whose warning or deadline has come."""
    query = (
        select(col(AssignmentRow.id), col(AssignmentRow.lead_id))
        .where(
            or_(
                (col(AssignmentRow.sla_status) == "running")
                & (col(AssignmentRow.sla_warn_at) <= now),
                (col(AssignmentRow.sla_status).in_(("running", "warned")))
                & (col(AssignmentRow.sla_due_at) <= now),
            )
        )
        .order_by(col(AssignmentRow.sla_warn_at))
        .limit(limit)
    )
    return [(row[0], row[1]) for row in session.execute(query).all()]


def next_timer(session: Session) -> datetime | None:
    """When the earliest running clock next needs attention."""
    warn = session.execute(
        select(func.min(col(AssignmentRow.sla_warn_at))).where(
            col(AssignmentRow.sla_status) == "running"
        )
    ).scalar()
    due = session.execute(
        select(func.min(col(AssignmentRow.sla_due_at))).where(
            col(AssignmentRow.sla_status).in_(("running", "warned"))
        )
    ).scalar()
    moments = [m for m in (warn, due) if m is not None]
    return min(moments) if moments else None


def queued_leads(
    session: Session, *, rules: Sequence[str], limit: int
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(assignment id, lead id) of leads waiting in a queue under these rules, oldest first."""
    query = (
        select(col(AssignmentRow.id), col(AssignmentRow.lead_id))
        .where(col(AssignmentRow.state) == "queued", col(AssignmentRow.rule).in_(rules))
        .order_by(col(AssignmentRow.routed_at))
        .limit(limit)
    )
    return [(row[0], row[1]) for row in session.execute(query).all()]
