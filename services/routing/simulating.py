"""``POST /v1/routing:simulate``: a proposed configuration over the latest scored leads.

Reads only: the live configuration fills the parts the proposal leaves out, and nothing
is written, so the live rules and the round-robin state stay as they are.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from services.routing import repository
from services.routing.assigning import facts_of
from services.routing.config_store import Invalid
from services.routing.domain.business_hours import WorkingHours, week_from_mapping
from services.routing.domain.model import (
    Absence,
    NamedAccount,
    NurtureProgram,
    Rep,
    RoutingConfig,
    Team,
    Territory,
)
from services.routing.domain.simulation import simulate
from services.routing.holiday_calendars import Holidays
from services.routing.models import AssignmentRow
from services.routing.schemas import (
    Placement,
    ProposedConfig,
    RepIn,
    SimulatedLead,
    SimulationIn,
    SimulationOut,
    SkippedOut,
)


def _rep(body: RepIn, absences: tuple[Absence, ...]) -> Rep:
    return Rep(
        rep_id=body.rep_id,
        team_id=body.team_id,
        name=body.name,
        email=body.email,
        crm_user_id=body.crm_user_id,
        hours=WorkingHours(
            week=week_from_mapping(body.working_hours),
            time_zone=body.time_zone,
            holidays=Holidays(body.holidays, body.holiday_calendar),
        ),
        capacity=body.capacity,
        weight=body.weight,
        active=body.active,
        absences=absences,
    )


def proposed_config(session: Session, proposal: ProposedConfig, now: datetime) -> RoutingConfig:
    live = repository.load_config(session, all_accounts=True)
    teams = (
        [
            Team(t.team_id, t.name, tuple(t.territory_ids), frozenset(t.verticals))
            for t in proposal.teams
        ]
        if proposal.teams is not None
        else list(live.teams.values())
    )
    territories = (
        [
            Territory(t.territory_id, t.country, t.region, tuple(t.postal_prefixes), t.name)
            for t in proposal.territories
        ]
        if proposal.territories is not None
        else list(live.territories.values())
    )
    if proposal.reps is not None:
        reps = []
        for rep in proposal.reps:
            if proposal.out_of_office is not None:
                absences = tuple(
                    Absence(a.starts_at or now, a.ends_at)
                    for a in proposal.out_of_office.get(rep.rep_id, [])
                )
            else:
                existing = live.reps.get(rep.rep_id)
                absences = existing.absences if existing else ()
            reps.append(_rep(rep, absences))
    else:
        reps = list(live.reps.values())
    accounts = (
        [NamedAccount(a.domain, a.rep_id, a.name) for a in proposal.accounts]
        if proposal.accounts is not None
        else list(live.accounts.values())
    )
    programs = (
        [
            NurtureProgram(p.program_id, frozenset(p.grades), frozenset(p.verticals), p.name)
            for p in proposal.programs
        ]
        if proposal.programs is not None
        else list(live.programs.values())
    )
    _check_references(teams, territories, reps, accounts)
    return RoutingConfig.of(
        teams=teams, reps=reps, territories=territories, accounts=accounts, programs=programs
    )


def _check_references(
    teams: list[Team], territories: list[Territory], reps: list[Rep], accounts: list[NamedAccount]
) -> None:
    territory_ids = {t.territory_id for t in territories}
    team_ids = {t.team_id for t in teams}
    rep_ids = {r.rep_id for r in reps}
    for index, team in enumerate(teams):
        for position, territory_id in enumerate(team.territory_ids):
            if territory_id not in territory_ids:
                raise Invalid(
                    422,
                    f"body.config.teams.{index}.territory_ids.{position}",
                    f"no territory {territory_id!r} in the proposal",
                )
    for index, rep in enumerate(reps):
        if rep.team_id not in team_ids:
            raise Invalid(
                422, f"body.config.reps.{index}.team_id", f"no team {rep.team_id!r} in the proposal"
            )
    for index, account in enumerate(accounts):
        if account.rep_id not in rep_ids:
            raise Invalid(
                422,
                f"body.config.accounts.{index}.rep_id",
                f"no rep {account.rep_id!r} in the proposal",
            )


def _placement(row: AssignmentRow | None) -> Placement | None:
    if row is None:
        return None
    return Placement(
        outcome=row.outcome,
        rule=row.rule,
        rep_id=row.rep_id,
        team_id=row.team_id,
        program_id=row.program_id,
    )


def run(session: Session, *, body: SimulationIn, now: datetime, max_leads: int) -> SimulationOut:
    at = body.at or now
    config = proposed_config(session, body.config, at)
    if body.last > max_leads:
        raise Invalid(422, "body.last", f"at most {max_leads} leads per simulation")
    rows = repository.recent_leads(session, limit=body.last)
    initial = (
        repository.open_loads(session, rep_ids=config.reps.keys())
        if body.capacity == "current"
        else {}
    )
    result = simulate(
        [facts_of(row) for row in rows],
        config=config,
        now=at,
        initial_loads=initial,
        count_loads=body.capacity != "ignore",
    )
    leads = []
    changed = 0
    for row, simulated in zip(rows, result.leads, strict=True):
        decision = simulated.decision
        current = (
            session.get(AssignmentRow, row.current_assignment_id)
            if row.current_assignment_id
            else None
        )
        live = _placement(current)
        mine = Placement(
            outcome=decision.outcome,
            rule=decision.rule,
            rep_id=decision.rep_id,
            team_id=decision.team_id,
            program_id=decision.program_id,
        )
        differs = live is None or (live.outcome, live.rep_id, live.team_id, live.program_id) != (
            mine.outcome,
            mine.rep_id,
            mine.team_id,
            mine.program_id,
        )
        changed += differs
        leads.append(
            SimulatedLead(
                **mine.model_dump(),
                lead_id=row.lead_id,
                grade=row.grade,
                explanation=decision.explanation,
                skipped=[SkippedOut(rep_id=s.rep_id, reason=s.reason) for s in decision.skipped],
                live=live,
                changed=differs,
            )
        )
    return SimulationOut(
        leads=leads, load=dict(result.load), outcomes=dict(result.outcomes), changed=changed
    )
