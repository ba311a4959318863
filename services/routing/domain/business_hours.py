"""Business hours: a rep's working week in their own time zone, and time counted in it.

A schedule is a set of working ranges per weekday, in local wall-clock minutes
(``0 <= start < end <= 1440``), in an IANA time zone, minus holidays (explicit dates or a
public-holiday calendar, anything that answers ``day in holidays``). Durations are
real elapsed time inside those ranges: on the night clocks spring forward, a 09:00-17:00
day that contains the jump is still 8 hours, and a range that spans it is one hour shorter.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
# add_business_time refuses to search further than this for working time.
MAX_SEARCH_DAYS = 3 * 366


class InvalidSchedule(ValueError):
    """A working-hours description that cannot be used."""


@dataclass(frozen=True, order=True)
class WorkRange:
    """One working range of a day, in local minutes since midnight; ``end`` may be 1440."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= MINUTES_PER_DAY:
            raise InvalidSchedule(
                f"a working range must satisfy 00:00 <= start < end <= 24:00, "
                f"got {format_minute(self.start)}-{format_minute(self.end)}"
            )


def _default_week() -> tuple[tuple[WorkRange, ...], ...]:
    office = (WorkRange(9 * 60, 17 * 60),)
    return (office, office, office, office, office, (), ())


@dataclass(frozen=True)
class WorkingHours:
    """A working week: ``week[0]`` is Monday's ranges, ``week[6]`` Sunday's."""

    week: tuple[tuple[WorkRange, ...], ...] = field(default_factory=_default_week)
    time_zone: str = "UTC"
    # Dates not worked: a set, or any calendar that answers ``day in holidays``.
    holidays: Container[date] = field(default=frozenset(), hash=False)

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise InvalidSchedule("a working week has 7 days")
        for day, ranges in zip(DAY_NAMES, self.week, strict=True):
            ordered = sorted(ranges)
            for before, after in itertools.pairwise(ordered):
                if after.start < before.end:
                    raise InvalidSchedule(f"working ranges overlap on {day}")
        zone(self.time_zone)  # raises InvalidSchedule for an unknown zone
        if not any(self.week):
            raise InvalidSchedule("a working week needs at least one working range")

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.time_zone)

    def weekly_minutes(self) -> int:
        return sum(r.end - r.start for ranges in self.week for r in ranges)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(f"unknown time zone {name!r}") from None


# ------------------------------------------------------------------ text form


_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_PART = re.compile(r"^([a-z]+)(?:-([a-z]+))?\s+(.+)$")


def parse_minute(text: str) -> int:
    match = _TIME.match(text.strip())
    if not match:
        raise InvalidSchedule(f"{text!r} is not a time of day (HH:MM)")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes >= 60 or hours > 24 or (hours == 24 and minutes):
        raise InvalidSchedule(f"{text!r} is not a time of day (HH:MM)")
    return hours * 60 + minutes


def format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_range(text: str) -> WorkRange:
    start, separator, end = text.strip().partition("-")
    if not separator:
        raise InvalidSchedule(f"{text!r} is not a range (HH:MM-HH:MM)")
    return WorkRange(parse_minute(start), parse_minute(end))


def _day_index(name: str) -> int:
    try:
        return DAY_NAMES.index(name)
    except ValueError:
        raise InvalidSchedule(f"{name!r} is not a day ({', '.join(DAY_NAMES)})") from None


def parse_week(text: str) -> tuple[tuple[WorkRange, ...], ...]:
    """``"mon-fri 09:00-12:00,13:00-17:00; sat 10:00-14:00"``: days (or a span of days), then
    comma-separated ranges; parts separated by semicolons. Days not named do not work."""
    days: list[list[WorkRange]] = [[] for _ in DAY_NAMES]
    for part in filter(None, (p.strip().lower() for p in text.split(";"))):
        match = _PART.match(part)
        if not match:
            raise InvalidSchedule(f"{part!r} is not 'day[-day] HH:MM-HH:MM[,HH:MM-HH:MM]'")
        first = _day_index(match.group(1))
        last = _day_index(match.group(2)) if match.group(2) else first
        if last < first:
            raise InvalidSchedule(f"{part!r}: a span of days runs from Monday to Sunday")
        ranges = [parse_range(r) for r in match.group(3).split(",")]
        for index in range(first, last + 1):
            days[index].extend(ranges)
    return tuple(tuple(sorted(day)) for day in days)


def week_from_mapping(mapping: Mapping[str, list[str]]) -> tuple[tuple[WorkRange, ...], ...]:
    """``{"mon": ["09:00-17:00"], ...}``: days not named do not work."""
    days: list[tuple[WorkRange, ...]] = [() for _ in DAY_NAMES]
    for name, ranges in mapping.items():
        days[_day_index(name.lower())] = tuple(sorted(parse_range(r) for r in ranges))
    return tuple(days)


def week_to_mapping(week: tuple[tuple[WorkRange, ...], ...]) -> dict[str, list[str]]:
    return {
        DAY_NAMES[index]: [f"{format_minute(r.start)}-{format_minute(r.end)}" for r in ranges]
        for index, ranges in enumerate(week)
        if ranges
    }


# ------------------------------------------------------------------ counting


def _at(day: date, minute: int, tz: ZoneInfo) -> datetime:
    day = day + timedelta(days=minute // MINUTES_PER_DAY)
    minute %= MINUTES_PER_DAY
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=tz)
    return local.astimezone(UTC)


def _intervals_from(hours: WorkingHours, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Working intervals in UTC, in order, from the local day of ``start`` on (unclipped)."""
    tz = hours.zone
    day = start.astimezone(tz).date() - timedelta(days=1)  # a range may end after midnight UTC
    for offset in range(MAX_SEARCH_DAYS):
        current = day + timedelta(days=offset)
        if current in hours.holidays:
            continue
        for work in sorted(hours.week[current.weekday()]):
            begin, end = _at(current, work.start, tz), _at(current, work.end, tz)
            if end > begin:
                yield begin, end


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass timezone-aware values")
    return moment.astimezone(UTC)


def add_business_time(start: datetime, amount: timedelta, hours: WorkingHours) -> datetime:
    """The moment ``amount`` of working time after ``start`` has passed.

    A zero amount answers ``start`` itself. A start outside working hours counts from the
    next working range, so a result always lies inside (or at the end of) a working range.
    """
    start = _aware(start)
    if amount < timedelta(0):
        raise ValueError("amount must not be negative")
    if amount == timedelta(0):
        return start
    remaining = amount
    for begin, end in _intervals_from(hours, start):
        if end <= start:
            continue
        since = max(begin, start)
        available = end - since
        if remaining <= available:
            return since + remaining
        remaining -= available
    raise InvalidSchedule(f"no working time found within {MAX_SEARCH_DAYS} days")


def business_time_between(start: datetime, end: datetime, hours: WorkingHours) -> timedelta:
    """Working time in ``[start, end)``; zero when ``end <= start``."""
    start, end = _aware(start), _aware(end)
    total = timedelta(0)
    if end <= start:
        return total
    for begin, finish in _intervals_from(hours, start):
        if begin >= end:
            break
        if finish <= start:
            continue
        total += min(finish, end) - max(begin, start)
    return total


def is_working_time(moment: datetime, hours: WorkingHours) -> bool:
    moment = _aware(moment)
    for begin, end in _intervals_from(hours, moment):
        if begin > moment:
            return False
        if begin <= moment < end:
            return True
    return False
