"""Conditions compiled into predicates, and described in words for the reasons of a score.

Strings compare case-insensitively and trimmed. Every test is false on a missing value
(``None`` or an empty string) except ``present: false``; ``not`` inverts, so
``not: {field: country, in_list: served}`` holds for a lead whose country is unknown while
``{field: country, not_in: [...]}`` does not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from services.scoring.domain.document import ConditionDoc
from services.scoring.domain.facts import as_number, normalize

T = TypeVar("T")
Predicate = Callable[[T], bool]
GetterFor = Callable[[str], Callable[[T], Any] | None]


def compile_condition(
    condition: ConditionDoc,
    getter_for: GetterFor[T],
    lists: Mapping[str, frozenset[str | int | float]],
) -> Predicate[T]:
    """A predicate for a validated condition (fields and lists are known to exist)."""
    if condition.all is not None:
        parts = [compile_condition(child, getter_for, lists) for child in condition.all]
        return lambda subject: all(part(subject) for part in parts)
    if condition.any is not None:
        parts = [compile_condition(child, getter_for, lists) for child in condition.any]
        return lambda subject: any(part(subject) for part in parts)
    if condition.not_ is not None:
        inner = compile_condition(condition.not_, getter_for, lists)
        return lambda subject: not inner(subject)
    assert condition.field is not None
    getter = getter_for(condition.field)
    assert getter is not None, condition.field
    return _field_test(condition, getter, lists)


def _field_test(
    condition: ConditionDoc,
    getter: Callable[[T], Any],
    lists: Mapping[str, frozenset[str | int | float]],
) -> Predicate[T]:
    if condition.equals is not None:
        target = normalize(condition.equals)
        return lambda subject: normalize(getter(subject)) == target
    if condition.in_ is not None or condition.in_list is not None:
        if condition.in_list is not None:
            members = lists[condition.in_list]
        else:
            members = frozenset(_members(condition.in_ or []))

        def is_in(subject: T) -> bool:
            value = normalize(getter(subject))
            return value is not None and value != "" and value in members

        return is_in
    if condition.not_in is not None:
        excluded = frozenset(_members(condition.not_in))

        def is_not_in(subject: T) -> bool:
            value = normalize(getter(subject))
            return value is not None and value != "" and value not in excluded

        return is_not_in
    if condition.present is not None:
        wanted = condition.present
        return lambda subject: (normalize(getter(subject)) not in (None, "")) == wanted
    if condition.contains_any is not None:
        needles = tuple(needle.strip().casefold() for needle in condition.contains_any)

        def contains(subject: T) -> bool:
            value = getter(subject)
            if value is None:
                return False
            text = str(value).casefold()
            return any(needle in text for needle in needles)

        return contains
    if condition.matches is not None:
        pattern = re.compile(condition.matches, re.IGNORECASE)

        def matches(subject: T) -> bool:
            value = getter(subject)
            return value is not None and pattern.search(str(value)) is not None

        return matches
    low, high = condition.min, condition.max

    def in_range(subject: T) -> bool:
        number = as_number(getter(subject))
        if number is None:
            return False
        return (low is None or number >= low) and (high is None or number <= high)

    return in_range


def _members(values: list[str | int | float | bool]) -> list[str | int | float]:
    return [member for member in (normalize(value) for value in values) if member is not None]


def list_members(values: list[str | int | float | bool]) -> frozenset[str | int | float]:
    """A rulebook list as conditions compare against it."""
    return frozenset(_members(values))


# ---------------------------------------------------------------------------- in words


def describe(condition: ConditionDoc) -> str:
    """The condition in words, for reasons: ``company.employees is between 200 and 5000``."""
    if condition.all is not None:
        return " and ".join(_grouped(child) for child in condition.all)
    if condition.any is not None:
        return " or ".join(_grouped(child) for child in condition.any)
    if condition.not_ is not None:
        return f"not ({describe(condition.not_)})"
    field = condition.field
    if condition.equals is not None:
        return f"{field} is {_word(condition.equals)}"
    if condition.in_ is not None:
        return f"{field} is one of {_words(condition.in_)}"
    if condition.not_in is not None:
        return f"{field} is not one of {_words(condition.not_in)}"
    if condition.in_list is not None:
        return f"{field} is on the {condition.in_list} list"
    if condition.present is not None:
        return f"{field} is {'given' if condition.present else 'not given'}"
    if condition.contains_any is not None:
        return f"{field} contains {' or '.join(repr(n) for n in condition.contains_any)}"
    if condition.matches is not None:
        return f"{field} matches /{condition.matches}/"
    if condition.min is not None and condition.max is not None:
        return f"{field} is between {_word(condition.min)} and {_word(condition.max)}"
    if condition.min is not None:
        return f"{field} is at least {_word(condition.min)}"
    return f"{field} is at most {_word(condition.max)}"


def _grouped(condition: ConditionDoc) -> str:
    text = describe(condition)
    return f"({text})" if condition.all is not None or condition.any is not None else text


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _words(values: list[Any], limit: int = 6) -> str:
    shown = [_word(value) for value in values[:limit]]
    more = len(values) - limit
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")
