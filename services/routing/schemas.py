"""What the routing API reads and answers: the configuration, lead histories, simulations.

Every configuration entity has one input model (used by JSON bodies and by CSV rows alike)
and an output model with its timestamps.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.routing.domain.business_hours import (
    InvalidSchedule,
    WorkingHours,
    parse_week,
    week_from_mapping,
    week_to_mapping,
    zone,
)
from services.routing.domain.model import normalize_domain, normalize_postal_code
from services.routing.domain.round_robin import MAX_WEIGHT
from services.routing.holiday_calendars import UnknownCalendar, calendar

Id = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$",
        description="Letters, digits, '_', '.', '@' and '-'",
    ),
]
Vertical = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
Grade = Literal["A", "B", "C", "D"]
# A follow-up clock longer than a year of 40-hour weeks is a typo, and a huge one would not
# even make a deadline; one shorter than a minute is a typo too, and a tiny one is no time at
# all once it is a timedelta (microseconds): a policy routing could not load.
MIN_FOLLOW_UP_HOURS = 1 / 60
MAX_FOLLOW_UP_HOURS = 2080
DEFAULT_WEEK = "mon-fri 09:00-17:00"


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TeamIn(Body):
    team_id: Id
    name: str | None = Field(default=None, max_length=200)
    territory_ids: list[Id] = Field(
        default_factory=list, description="Territories covered; none: every territory"
    )
    verticals: list[Vertical] = Field(
        default_factory=list, description="Verticals covered; none: every vertical"
    )


class TerritoryIn(Body):
    territory_id: Id
    name: str | None = Field(default=None, max_length=200)
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    region: str | None = Field(
        default=None, pattern=r"^[A-Z]{2}-[A-Z0-9]{1,3}$", description="ISO 3166-2, e.g. DE-BY"
    )
    postal_prefixes: list[Annotated[str, Field(min_length=1, max_length=16)]] = Field(
        default_factory=list, description="Postal codes starting with any of these"
    )

    @field_validator("postal_prefixes")
    @classmethod
    def _normalized(cls, prefixes: list[str]) -> list[str]:
        return [normalize_postal_code(prefix) for prefix in prefixes]

    @model_validator(mode="after")
    def _region_in_country(self) -> TerritoryIn:
        if self.region and not self.region.startswith(self.country + "-"):
            raise ValueError(f"region {self.region} is not in country {self.country}")
        return self


class RepIn(Body):
    rep_id: Id
    team_id: Id
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    crm_user_id: str | None = Field(default=None, max_length=200)
    time_zone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Berlin")
    working_hours: dict[str, list[str]] = Field(
        default_factory=lambda: week_to_mapping(parse_week(DEFAULT_WEEK)),
        description=(
            'Working ranges per day in local time: {"mon": ["09:00-12:00", "13:00-17:00"]}, '
            'or the text form "mon-fri 09:00-17:00; sat 10:00-12:00"'
        ),
    )
    holidays: list[date] = Field(default_factory=list, description="Dates not worked")
    holiday_calendar: str | None = Field(
        default=None,
        max_length=16,
        description="Public holidays of a country or subdivision: DE, DE-BY, US-CA ...",
    )
    capacity: int = Field(default=25, ge=0, le=100_000, description="Open A/B leads at most")
    weight: int = Field(default=1, ge=1, le=MAX_WEIGHT, description="Share of the round robin")
    active: bool = True

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            zone(name)
        except InvalidSchedule as error:
            raise ValueError(str(error)) from None
        return name

    @field_validator("holiday_calendar")
    @classmethod
    def _known_calendar(cls, code: str | None) -> str | None:
        if not code:
            return None
        try:
            calendar(code)
        except UnknownCalendar as error:
            raise ValueError(str(error)) from None
        return code.upper()

    @field_validator("working_hours", mode="before")
    @classmethod
    def _schedule(cls, value: Any) -> Any:
        try:
            if isinstance(value, str):
                week = parse_week(value)
            elif isinstance(value, dict):
                week = week_from_mapping(_ranges_per_day(value))
            else:
                return value
            WorkingHours(week=week)
        except InvalidSchedule as error:
            raise ValueError(str(error)) from None
        return week_to_mapping(week)


class AccountIn(Body):
    domain: str = Field(min_length=3, max_length=255, description="Company domain, e.g. acme.com")
    rep_id: Id = Field(description="The owner")
    name: str | None = Field(default=None, max_length=200)

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        domain = normalize_domain(value) or ""
        if not re.fullmatch(
            r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+", domain
        ):
            raise ValueError(f"{value!r} is not a domain name")
        return domain


class ProgramIn(Body):
    program_id: Id
    name: str | None = Field(default=None, max_length=200)
    grades: list[Grade] = Field(min_length=1, description="Grades it takes")
    verticals: list[Vertical] = Field(
        default_factory=list, description="Verticals it takes; none: every vertical"
    )


class Stamped(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    created_at: datetime
    updated_at: datetime


class TeamOut(TeamIn, Stamped):
    pass


class TerritoryOut(TerritoryIn, Stamped):
    pass


class RepOut(RepIn, Stamped):
    out_of_office: bool = False


class AccountOut(AccountIn, Stamped):
    pass


class ProgramOut(ProgramIn, Stamped):
    pass


class AbsenceIn(Body):
    starts_at: datetime | None = Field(default=None, description="Default: now")
    ends_at: datetime | None = Field(default=None, description="Default: until switched off")
    note: str | None = Field(default=None, max_length=500)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2026-03-10T09:00:00Z)")
        return value


def _ranges_per_day(value: dict[Any, Any]) -> dict[str, list[str]]:
    """The mapping form's shape, checked before its ranges are read."""
    for day, ranges in value.items():
        if not isinstance(ranges, list) or not all(isinstance(r, str) for r in ranges):
            raise InvalidSchedule(f'{day}: a list of ranges such as ["09:00-12:00", "13:00-17:00"]')
    return value


class AbsenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    rep_id: str
    starts_at: datetime
    ends_at: datetime | None
    note: str | None


class SlaPolicyIn(Body):
    follow_up_hours: dict[Grade, float] = Field(
        description="Business hours to follow up per grade; grades not listed have no clock",
        examples=[{"A": 8, "B": 40}],
    )
    warning_fraction: float = Field(default=0.75, gt=0, lt=1)
    max_reassignments: int = Field(default=2, ge=0, le=20)

    @field_validator("follow_up_hours")
    @classmethod
    def _positive(cls, hours: dict[str, float]) -> dict[str, float]:
        for grade, value in hours.items():
            # ``not (...)``: NaN is neither, and is refused too.
            if not MIN_FOLLOW_UP_HOURS <= value <= MAX_FOLLOW_UP_HOURS:
                raise ValueError(
                    f"follow-up hours of grade {grade} must be at least a minute (1/60) and "
                    f"at most {MAX_FOLLOW_UP_HOURS} (a year of working weeks)"
                )
        return hours


class ConfigChange(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    changed_at: datetime
    actor: str
    entity: str
    entity_id: str
    action: str
    via: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class BulkResult(BaseModel):
    created: int
    updated: int
    unchanged: int


# ---------------------------------------------------------------- lead history


class SkippedOut(BaseModel):
    rep_id: str
    reason: str


class AssignmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    attempt: int
    outcome: str
    grade: str
    rep_id: str | None
    team_id: str | None
    program_id: str | None
    rule: str
    explanation: str
    skipped: list[SkippedOut]
    reassignment_of: uuid.UUID | None
    routed_at: datetime
    state: str
    ended_reason: str | None
    ended_at: datetime | None
    sla_status: str | None
    sla_warn_at: datetime | None
    sla_due_at: datetime | None
    sla_settled_at: datetime | None
    feedback_status: str | None
    rejection_reason: str | None
    opportunity_id: str | None
    amount: Decimal | None
    currency: str | None
    first_feedback_at: datetime | None
    closed_at: datetime | None


class FeedbackOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    event_id: str
    status: str
    rejection_reason: str | None
    note: str | None
    opportunity_id: str | None
    amount: Decimal | None
    currency: str | None
    source: str
    rep_crm_user_id: str | None
    occurred_at: datetime
    received_at: datetime
    assignment_id: uuid.UUID | None = Field(description="Empty while kept for a later assignment")
    applied_at: datetime | None


class LeadRouting(BaseModel):
    lead_id: uuid.UUID
    grade: str
    previous_grade: str | None
    state: str | None
    recycled: bool
    scored_at: datetime
    current_assignment_id: uuid.UUID | None
    assignments: list[AssignmentOut]
    feedback: list[FeedbackOut]


class QueuedLead(BaseModel):
    lead_id: uuid.UUID
    assignment_id: uuid.UUID
    grade: str
    rule: str
    explanation: str
    queued_at: datetime


# ---------------------------------------------------------------- simulation


class ProposedConfig(Body):
    """A configuration to try. A part left out (null) is the live one."""

    teams: list[TeamIn] | None = None
    territories: list[TerritoryIn] | None = None
    reps: list[RepIn] | None = None
    accounts: list[AccountIn] | None = None
    programs: list[ProgramIn] | None = None
    out_of_office: dict[str, list[AbsenceIn]] | None = Field(
        default=None,
        description="Absences per rep id; null: the live absences of reps that exist live",
    )


class SimulationIn(Body):
    config: ProposedConfig = Field(default_factory=ProposedConfig)
    last: int = Field(default=500, ge=1, description="How many of the latest scored leads")
    at: datetime | None = Field(
        default=None, description="When availability is judged (out of office); default now"
    )
    capacity: Literal["from_zero", "current", "ignore"] = Field(
        default="from_zero",
        description=(
            "from_zero: reps start with no open leads and fill up as the simulation assigns; "
            "current: they start with their live open leads; ignore: capacity never binds"
        ),
    )


class Placement(BaseModel):
    outcome: str
    rule: str
    rep_id: str | None
    team_id: str | None
    program_id: str | None


class SimulatedLead(Placement):
    lead_id: uuid.UUID
    grade: str
    explanation: str
    skipped: list[SkippedOut]
    live: Placement | None = Field(description="Where the lead is now, live")
    changed: bool = Field(description="The proposal places it differently from live")


class SimulationOut(BaseModel):
    leads: list[SimulatedLead]
    load: dict[str, int] = Field(description="Leads each rep would receive")
    outcomes: dict[str, int]
    changed: int
