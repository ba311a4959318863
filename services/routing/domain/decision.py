"""Who gets a lead: the decision, in order, with the rule that made it and who was skipped.

For a lead graded A or B:

1. **named_account**: the company domain is a named account and its owner can take it;
2. **round_robin**: else the team whose territory and vertical match most specifically
   covers it (territory first: postal prefix over region over country over a team that
   covers everywhere; then a team that lists the vertical over one that takes every
   vertical; a tie goes to the lowest team id), and weighted round robin picks among the
   team's reps who can take it;
3. **team_queue**: nobody in that team can take it: the lead waits in the team's queue;
   **no_team**: no team covers it at all.

A rep can take a lead when they are active, not out of office, under their capacity of
open A/B leads, and never had this lead before (on re-assignment). Every rep considered and
passed over is listed with the reason.

Leads graded C or D go to the most specific nurture program for their grade and vertical
(**nurture**).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.routing.domain.model import (
    NURTURE_GRADES,
    LeadFacts,
    NurtureProgram,
    Rep,
    RoutingConfig,
    Team,
    Territory,
    normalize_domain,
    normalize_postal_code,
)
from services.routing.domain.round_robin import Rotation, pick

Outcome = Literal["assigned", "nurture", "queued"]
SkipReason = Literal["had_lead_before", "inactive", "out_of_office", "at_capacity", "unknown_rep"]


@dataclass(frozen=True)
class Skipped:
    rep_id: str
    reason: SkipReason


@dataclass(frozen=True)
class TeamMatch:
    team: Team
    territory: Territory | None
    # (territory level, longest postal prefix, vertical listed): higher is more specific.
    rank: tuple[int, int, int]
    tied_with: tuple[str, ...] = ()

    def describe(self) -> str:
        where = (
            f"territory {self.territory.territory_id} ({_territory_scope(self.territory)})"
            if self.territory
            else "every territory"
        )
        what = "its vertical" if self.rank[2] else "every vertical"
        text = f"team {self.team.team_id} covers it ({where}, {what})"
        if self.tied_with:
            text += f"; as specific as {', '.join(self.tied_with)}, chosen by lowest team id"
        return text


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    rule: str
    explanation: str
    rep_id: str | None = None
    team_id: str | None = None
    program_id: str | None = None
    skipped: tuple[Skipped, ...] = ()
    # The team whose round robin moved, and its new state: to be stored by the caller.
    rotation_team_id: str | None = None
    rotation: Rotation | None = None


# ------------------------------------------------------------------ matching


def _territory_scope(territory: Territory) -> str:
    parts = [territory.country]
    if territory.region:
        parts.append(territory.region)
    if territory.postal_prefixes:
        parts.append("postal " + "|".join(territory.postal_prefixes))
    return " / ".join(parts)


def territory_rank(territory: Territory, lead: LeadFacts) -> tuple[int, int] | None:
    """How specifically ``territory`` covers the lead, or ``None`` when it does not."""
    if not lead.country or lead.country.upper() != territory.country.upper():
        return None
    level = 1
    if territory.region:
        if not lead.region or lead.region.upper() != territory.region.upper():
            return None
        level += 1
    longest = 0
    if territory.postal_prefixes:
        code = normalize_postal_code(lead.postal_code)
        matching = [
            len(prefix)
            for prefix in map(normalize_postal_code, territory.postal_prefixes)
            if prefix and code.startswith(prefix)
        ]
        if not matching:
            return None
        level += 1
        longest = max(matching)
    return level, longest


def _team_rank(
    team: Team, config: RoutingConfig, lead: LeadFacts
) -> tuple[tuple[int, int, int], Territory | None] | None:
    if team.verticals:
        if not lead.vertical or lead.vertical not in team.verticals:
            return None
        vertical = 1
    else:
        vertical = 0
    if not team.territory_ids:
        return (0, 0, vertical), None
    best: tuple[tuple[int, int], Territory] | None = None
    for territory_id in sorted(team.territory_ids):
        territory = config.territories.get(territory_id)
        if territory is None:
            continue
        rank = territory_rank(territory, lead)
        if rank is not None and (best is None or rank > best[0]):
            best = (rank, territory)
    if best is None:
        return None
    (level, prefix), territory = best
    return (level, prefix, vertical), territory


def match_team(lead: LeadFacts, config: RoutingConfig) -> TeamMatch | None:
    """The team that covers the lead most specifically (a tie: the lowest team id)."""
    ranked: list[tuple[tuple[int, int, int], str, Territory | None]] = []
    for team_id in sorted(config.teams):
        found = _team_rank(config.teams[team_id], config, lead)
        if found is not None:
            ranked.append((found[0], team_id, found[1]))
    if not ranked:
        return None
    best_rank = max(rank for rank, _, _ in ranked)
    tops = [(team_id, territory) for rank, team_id, territory in ranked if rank == best_rank]
    team_id, territory = tops[0]
    return TeamMatch(
        team=config.teams[team_id],
        territory=territory,
        rank=best_rank,
        tied_with=tuple(other for other, _ in tops[1:]),
    )


def match_program(grade: str, vertical: str | None, config: RoutingConfig) -> NurtureProgram | None:
    """The nurture program for the grade that lists the vertical, else one for every vertical."""
    candidates = [
        program
        for program in config.programs.values()
        if grade in program.grades and (not program.verticals or vertical in program.verticals)
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda p: (not p.verticals, p.program_id))


def teams_involved(lead: LeadFacts, config: RoutingConfig) -> list[str]:
    """Teams whose round-robin state a decision for this lead may read or move: lock these
    (in this order) before reading the loads and deciding."""
    involved: set[str] = set()
    domain = normalize_domain(lead.domain)
    account = config.accounts.get(domain) if domain else None
    if account and account.rep_id in config.reps:
        involved.add(config.reps[account.rep_id].team_id)
    match = match_team(lead, config)
    if match:
        involved.add(match.team.team_id)
    return sorted(involved)


# ------------------------------------------------------------------ availability


def unavailable_because(
    rep: Rep, *, now: datetime, load: int, excluded: frozenset[str]
) -> SkipReason | None:
    """Why ``rep`` cannot take an A/B lead now, or ``None`` when they can."""
    if rep.rep_id in excluded:
        return "had_lead_before"
    if not rep.active:
        return "inactive"
    if rep.out_of_office(now):
        return "out_of_office"
    if load >= rep.capacity:
        return "at_capacity"
    return None


def _describe_skips(skipped: list[Skipped], loads: Mapping[str, int], config: RoutingConfig) -> str:
    parts = []
    for skip in skipped:
        rep = config.reps.get(skip.rep_id)
        detail: str = skip.reason
        if skip.reason == "at_capacity" and rep:
            detail += f" {loads.get(skip.rep_id, 0)}/{rep.capacity}"
        parts.append(f"{skip.rep_id} {detail}")
    return ", ".join(parts)


# ------------------------------------------------------------------ deciding


def _lead_scope(lead: LeadFacts) -> str:
    parts = [
        lead.country or "no country",
        lead.region or "",
        lead.postal_code or "",
        lead.vertical or "no vertical",
    ]
    return " / ".join(part for part in parts if part)


def decide_nurture(
    lead: LeadFacts, config: RoutingConfig, *, as_grade: str | None = None
) -> Decision:
    grade = as_grade or lead.grade
    program = match_program(grade, lead.vertical, config)
    vertical = lead.vertical or "no vertical"
    if program is None:
        return Decision(
            outcome="nurture",
            rule="nurture",
            explanation=f"grade {grade}: nurture; no program takes grade {grade} and {vertical}",
        )
    scope = "its vertical" if program.verticals else "every vertical"
    return Decision(
        outcome="nurture",
        rule="nurture",
        program_id=program.program_id,
        explanation=f"grade {grade}: nurture program {program.program_id} ({scope})",
    )


def decide(
    lead: LeadFacts,
    *,
    config: RoutingConfig,
    rotations: Mapping[str, Rotation],
    loads: Mapping[str, int],
    now: datetime,
    excluded: frozenset[str] = frozenset(),
) -> Decision:
    """Route one lead. ``loads``: open A/B leads per rep; ``rotations``: the round-robin
    state of the teams from :func:`teams_involved`; ``excluded``: reps who had the lead."""
    if lead.grade in NURTURE_GRADES:
        return decide_nurture(lead, config)

    skipped: list[Skipped] = []
    notes: list[str] = []
    domain = normalize_domain(lead.domain)
    account = config.accounts.get(domain) if domain else None
    if account is not None:
        owner = config.reps.get(account.rep_id)
        reason = (
            unavailable_because(owner, now=now, load=loads.get(owner.rep_id, 0), excluded=excluded)
            if owner
            else "unknown_rep"
        )
        if owner is not None and reason is None:
            return Decision(
                outcome="assigned",
                rule="named_account",
                rep_id=owner.rep_id,
                team_id=owner.team_id,
                explanation=(
                    f"{domain} is a named account of {owner.rep_id} (team {owner.team_id}), "
                    f"who can take it"
                ),
            )
        assert reason is not None
        skipped.append(Skipped(account.rep_id, reason))
        notes.append(f"{domain} is a named account of {account.rep_id}, who is {reason}")

    match = match_team(lead, config)
    if match is None:
        notes.append(f"no team covers {_lead_scope(lead)}")
        return Decision(
            outcome="queued",
            rule="no_team",
            explanation="; ".join(notes),
            skipped=tuple(skipped),
        )
    team_id = match.team.team_id
    notes.append(f"{_lead_scope(lead)}: {match.describe()}")
    weights: dict[str, int] = {}
    members = config.team_reps(team_id)
    for rep in members:
        if any(skip.rep_id == rep.rep_id for skip in skipped):
            continue  # the account owner, already passed over
        reason = unavailable_because(rep, now=now, load=loads.get(rep.rep_id, 0), excluded=excluded)
        if reason is None:
            weights[rep.rep_id] = rep.weight
        else:
            skipped.append(Skipped(rep.rep_id, reason))
    if not weights:
        why = (
            f"nobody in team {team_id} can take it: {_describe_skips(skipped, loads, config)}"
            if members
            else f"team {team_id} has no reps"
        )
        notes.append(why)
        return Decision(
            outcome="queued",
            rule="team_queue",
            team_id=team_id,
            explanation="; ".join(notes),
            skipped=tuple(skipped),
        )
    standing = [skip.rep_id for skip in skipped if skip.reason == "had_lead_before"]
    chosen = pick(rotations.get(team_id, Rotation()), weights, standing=standing)
    rep = config.reps[chosen.rep_id]
    line = (
        f"weighted round robin picked {rep.rep_id} (weight {rep.weight}) "
        f"among {len(weights)} available"
    )
    if chosen.rejoined:
        line += ", joining the rotation at the team's current turn"
    if skipped:
        line += f"; skipped {_describe_skips(skipped, loads, config)}"
    notes.append(line)
    return Decision(
        outcome="assigned",
        rule="round_robin",
        rep_id=rep.rep_id,
        team_id=team_id,
        explanation="; ".join(notes),
        skipped=tuple(skipped),
        rotation_team_id=team_id,
        rotation=chosen.rotation,
    )
