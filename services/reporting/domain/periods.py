"""Quarters, periods and weeks, all in UTC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

QUARTER_PATTERN = re.compile(r"^(\d{4})-Q([1-4])$")


class BadQuarter(ValueError):
    """Not a quarter of the form 2026-Q1."""


@dataclass(frozen=True, slots=True)
class Period:
    """A half-open span of time [start, end); either side may be open."""

    start: datetime | None = None
    end: datetime | None = None

    def contains(self, moment: datetime) -> bool:
        if self.start is not None and moment < self.start:
            return False
        return not (self.end is not None and moment >= self.end)

    def overlap(self, start: datetime, end: datetime) -> timedelta:
        """How much of [start, end) lies in this period."""
        low = max(start, self.start) if self.start is not None else start
        high = min(end, self.end) if self.end is not None else end
        return max(high - low, timedelta(0))

    @property
    def bounded(self) -> bool:
        return self.start is not None or self.end is not None


def parse_quarter(quarter: str) -> tuple[int, int]:
    match = QUARTER_PATTERN.match(quarter)
    if match is None:
        raise BadQuarter(f"{quarter!r} is not a quarter like 2026-Q1")
    return int(match.group(1)), int(match.group(2))


def quarter_bounds(quarter: str) -> tuple[datetime, datetime]:
    """Start and end (exclusive) of a quarter."""
    year, number = parse_quarter(quarter)
    start = datetime(year, 3 * number - 2, 1, tzinfo=UTC)
    end = (
        datetime(year + 1, 1, 1, tzinfo=UTC)
        if number == 4
        else start.replace(month=start.month + 3)
    )
    return start, end


def quarter_period(quarter: str) -> Period:
    return Period(*quarter_bounds(quarter))


def quarter_of(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"


def week_of(moment: datetime) -> date:
    """The Monday (UTC) of the week the moment falls in."""
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())
