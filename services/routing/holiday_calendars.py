"""Public-holiday calendars for reps' business hours, from the ``holidays`` package.

A rep's ``holiday_calendar`` is a country (``DE``) or a country and subdivision
(``DE-BY``, ``US-CA``); their explicit ``holidays`` dates come on top.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from datetime import date
from functools import lru_cache
from typing import Any

import holidays


class UnknownCalendar(ValueError):
    pass


@lru_cache(maxsize=256)
def calendar(code: str) -> Container[Any]:
    """The calendar for ``DE`` or ``DE-BY``; years are filled in as they are asked about."""
    country, _, subdivision = code.upper().partition("-")
    try:
        found: Container[Any] = holidays.country_holidays(country, subdiv=subdivision or None)
    except NotImplementedError as error:
        raise UnknownCalendar(f"no holiday calendar {code!r}: {error}") from None
    return found


class Holidays(Container[date]):
    """Explicit dates and, optionally, a public-holiday calendar."""

    def __init__(self, dates: Iterable[date] = (), code: str | None = None) -> None:
        self.dates = frozenset(dates)
        self.code = code
        self._calendar = calendar(code) if code else None

    def __contains__(self, day: object) -> bool:
        if day in self.dates:
            return True
        return self._calendar is not None and day in self._calendar

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Holidays) and (self.dates, self.code) == (other.dates, other.code)

    def __hash__(self) -> int:
        return hash((self.dates, self.code))

    def __repr__(self) -> str:
        return f"Holidays({sorted(self.dates)!r}, code={self.code!r})"
