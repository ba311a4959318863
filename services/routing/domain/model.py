"""The routing configuration and the facts of a lead, as plain immutable values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Literal, TypeVar
from uuid import UUID

from services.routing.domain.business_hours import WorkingHours

Grade = Literal["A", "B", "C", "D"]
SALES_GRADES: frozenset[str] = frozenset({"A", "B"})
NURTURE_GRADES: frozenset[str] = frozenset({"C", "D"})


@dataclass(frozen=True)
class Absence:
    """Out of office from ``starts_at`` until ``ends_at`` (open-ended when ``None``)."""

    starts_at: datetime
    ends_at: datetime | None = None

    def covers(self, now: datetime) -> bool:
        return self.starts_at <= now and (self.ends_at is None or now < self.ends_at)


@dataclass(frozen=True)
class Rep:
    rep_id: str
    team_id: str
    name: str | None = None
    email: str | None = None
    crm_user_id: str | None = None
    hours: WorkingHours = field(default_factory=WorkingHours)
    # How many open A/B leads the rep may hold at once.
    capacity: int = 25
    # Share of the team's round robin, relative to the other reps' weights.
    weight: int = 1
    active: bool = True
    absences: tuple[Absence, ...] = ()

    def __post_init__(self) -> None:
        if self.capacity < 0:
            raise ValueError("capacity must not be negative")
        if self.weight < 1:
            raise ValueError("weight must be at least 1")

    def out_of_office(self, now: datetime) -> bool:
        return any(absence.covers(now) for absence in self.absences)


@dataclass(frozen=True)
class Territory:
    """A country, optionally narrowed to a region (ISO 3166-2) and postal-code prefixes."""

    territory_id: str
    country: str
    region: str | None = None
    postal_prefixes: tuple[str, ...] = ()
    name: str | None = None


@dataclass(frozen=True)
class Team:
    """Covers the listed territories (none: everywhere) and verticals (none: every one)."""

    team_id: str
    name: str | None = None
    territory_ids: tuple[str, ...] = ()
    verticals: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NamedAccount:
    domain: str
    rep_id: str
    name: str | None = None


@dataclass(frozen=True)
class NurtureProgram:
    """Takes leads of the listed grades and verticals (no verticals: every one)."""

    program_id: str
    grades: frozenset[str] = NURTURE_GRADES
    verticals: frozenset[str] = frozenset()
    name: str | None = None


K = TypeVar("K")
V = TypeVar("V")


def _frozen(values: Mapping[K, V]) -> Mapping[K, V]:
    return MappingProxyType(dict(values))


@dataclass(frozen=True)
class RoutingConfig:
    """Everything routing decides by. ``accounts`` maps a company domain to its owner."""

    teams: Mapping[str, Team] = field(default_factory=dict)
    reps: Mapping[str, Rep] = field(default_factory=dict)
    territories: Mapping[str, Territory] = field(default_factory=dict)
    accounts: Mapping[str, NamedAccount] = field(default_factory=dict)
    programs: Mapping[str, NurtureProgram] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        *,
        teams: tuple[Team, ...] | list[Team] = (),
        reps: tuple[Rep, ...] | list[Rep] = (),
        territories: tuple[Territory, ...] | list[Territory] = (),
        accounts: tuple[NamedAccount, ...] | list[NamedAccount] = (),
        programs: tuple[NurtureProgram, ...] | list[NurtureProgram] = (),
    ) -> RoutingConfig:
        return cls(
            teams=_frozen({t.team_id: t for t in teams}),
            reps=_frozen({r.rep_id: r for r in reps}),
            territories=_frozen({t.territory_id: t for t in territories}),
            accounts=_frozen({normalize_domain(a.domain) or a.domain: a for a in accounts}),
            programs=_frozen({p.program_id: p for p in programs}),
        )

    def team_reps(self, team_id: str) -> list[Rep]:
        return sorted(
            (rep for rep in self.reps.values() if rep.team_id == team_id),
            key=lambda rep: rep.rep_id,
        )


@dataclass(frozen=True)
class LeadFacts:
    """What routing needs to know about a lead, taken from its latest score."""

    lead_id: UUID
    grade: Grade
    country: str | None = None
    region: str | None = None
    postal_code: str | None = None
    vertical: str | None = None
    domain: str | None = None


def normalize_domain(domain: str | None) -> str | None:
    if not domain:
        return None
    cleaned = domain.strip().lower().removeprefix("www.").rstrip(".")
    return cleaned or None


def normalize_postal_code(code: str | None) -> str:
    return "".join(code.split()).upper() if code else ""
