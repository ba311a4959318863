"""Business hours: working time counted in a rep's own week and time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from services.routing.domain.business_hours import (
    InvalidSchedule,
    WorkingHours,
    WorkRange,
    add_business_time,
    business_time_between,
    is_working_time,
    parse_week,
    week_from_mapping,
    week_to_mapping,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")


def hours(
    zone: str = "Europe/Berlin", week: str = "mon-fri 09:00-17:00", **kw: object
) -> WorkingHours:
    return WorkingHours(week=parse_week(week), time_zone=zone, **kw)  # type: ignore[arg-type]


def local(zone: ZoneInfo, *parts: int) -> datetime:
    year, month, day, hour, minute = parts
    return datetime(year, month, day, hour, minute, tzinfo=zone)


def test_one_business_day_from_friday_afternoon_is_monday_afternoon() -> None:
    friday = local(BERLIN, 2026, 3, 6, 16, 0)
    assert add_business_time(friday, timedelta(hours=8), hours()) == local(
        BERLIN, 2026, 3, 9, 16, 0
    )


def test_a_lead_arriving_on_the_weekend_counts_from_monday_morning() -> None:
    saturday = local(BERLIN, 2026, 3, 7, 11, 30)
    due = add_business_time(saturday, timedelta(hours=8), hours())
    assert due == local(BERLIN, 2026, 3, 9, 17, 0)


def test_one_week_of_business_time_is_five_working_days() -> None:
    tuesday = local(BERLIN, 2026, 3, 10, 10, 0)
    assert add_business_time(tuesday, timedelta(hours=40), hours()) == local(
        BERLIN, 2026, 3, 17, 10, 0
    )


def test_the_same_moment_falls_in_different_days_across_zones() -> None:
    # Friday 23:00 UTC is Saturday 08:00 in Tokyo and Friday 18:00 in New York.
    moment = datetime(2026, 3, 13, 23, 0, tzinfo=UTC)
    tokyo_due = add_business_time(moment, timedelta(hours=8), hours("Asia/Tokyo"))
    new_york_due = add_business_time(moment, timedelta(hours=8), hours("America/New_York"))
    assert tokyo_due == local(TOKYO, 2026, 3, 16, 17, 0)
    assert new_york_due == local(NEW_YORK, 2026, 3, 16, 17, 0)
    assert new_york_due - tokyo_due == timedelta(hours=13)


def test_a_day_with_a_lunch_break_and_a_short_saturday() -> None:
    week = "mon-fri 09:00-12:00,13:00-17:00; sat 10:00-12:00"
    friday = local(BERLIN, 2026, 3, 6, 15, 0)
    # Friday 2h, Saturday 2h, Monday 3h before lunch and 1h after.
    assert add_business_time(friday, timedelta(hours=8), hours(week=week)) == local(
        BERLIN, 2026, 3, 9, 14, 0
    )


def test_a_working_range_that_spans_the_spring_forward_jump_is_an_hour_shorter() -> None:
    # 2026-03-08: New York clocks jump from 02:00 to 03:00.
    night = hours("America/New_York", "sun 00:00-06:00")
    start = local(NEW_YORK, 2026, 3, 8, 0, 0)
    end = local(NEW_YORK, 2026, 3, 8, 6, 0)
    assert business_time_between(start, end, night) == timedelta(hours=5)
    assert add_business_time(start, timedelta(hours=5), night) == end


def test_an_office_day_after_the_clock_change_is_still_eight_hours() -> None:
    monday = local(NEW_YORK, 2026, 3, 9, 9, 0)
    saturday_before = local(NEW_YORK, 2026, 3, 7, 9, 0)
    office = hours("America/New_York")
    assert business_time_between(saturday_before, monday + timedelta(hours=8), office) == (
        timedelta(hours=8)
    )


def test_holidays_do_not_count() -> None:
    easter_monday = date(2026, 4, 6)
    office = hours(holidays=frozenset({easter_monday}))
    friday = local(BERLIN, 2026, 4, 3, 17, 0)
    assert add_business_time(friday, timedelta(hours=1), office) == local(BERLIN, 2026, 4, 7, 10, 0)


def test_working_time_outside_and_inside() -> None:
    office = hours()
    assert is_working_time(local(BERLIN, 2026, 3, 9, 9, 0), office)
    assert not is_working_time(local(BERLIN, 2026, 3, 9, 17, 0), office)
    assert not is_working_time(local(BERLIN, 2026, 3, 8, 12, 0), office)


def test_a_working_range_may_end_at_midnight() -> None:
    late = hours(week="mon 18:00-24:00; tue 00:00-02:00")
    monday = local(BERLIN, 2026, 3, 9, 23, 0)
    assert add_business_time(monday, timedelta(hours=2), late) == local(BERLIN, 2026, 3, 10, 1, 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mon 17:00-09:00", "start < end"),
        ("mon 09:00-25:00", "time of day"),
        ("funday 09:00-17:00", "not a day"),
        ("fri-mon 09:00-17:00", "span of days"),
        ("mon 09:00-12:00,11:00-13:00", "overlap"),
        ("mon 9-17", "time of day"),
        ("", "at least one"),
    ],
)
def test_bad_schedules_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidSchedule, match=message):
        WorkingHours(week=parse_week(text))


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(InvalidSchedule, match="unknown time zone"):
        WorkingHours(time_zone="Mars/Olympus_Mons")


def test_the_mapping_form_round_trips() -> None:
    week = parse_week("mon-fri 09:00-12:00,13:00-17:00; sat 10:00-12:00")
    mapping = week_to_mapping(week)
    assert mapping["sat"] == ["10:00-12:00"]
    assert "sun" not in mapping
    assert week_from_mapping(mapping) == week


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        add_business_time(datetime(2026, 3, 9, 9, 0), timedelta(hours=1), hours())


ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC"]
WEEKS = [
    "mon-fri 09:00-17:00",
    "mon-fri 09:00-12:00,13:00-17:00; sat 10:00-12:00",
    "sun-sun 00:00-24:00",
    "tue 22:00-24:00; wed 00:00-06:00",
]
moments = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
amounts = st.integers(min_value=0, max_value=80 * 60).map(lambda m: timedelta(minutes=m))


@settings(max_examples=150, deadline=None)
@given(
    start=moments,
    amount=amounts,
    zone=st.sampled_from(ZONES),
    week=st.sampled_from(WEEKS),
)
def test_adding_business_time_and_measuring_it_agree(
    start: datetime, amount: timedelta, zone: str, week: str
) -> None:
    schedule = hours(zone, week)
    due = add_business_time(start, amount, schedule)
    assert due >= start
    assert business_time_between(start, due, schedule) == amount
    if amount:
        # The deadline falls in working time, or exactly at the end of a working range.
        just_before = due - timedelta(microseconds=1)
        assert is_working_time(just_before, schedule)


@settings(max_examples=60, deadline=None)
@given(start=moments, first=amounts, second=amounts, zone=st.sampled_from(ZONES))
def test_business_time_adds_up(
    start: datetime, first: timedelta, second: timedelta, zone: str
) -> None:
    schedule = hours(zone)
    assume(first and second)
    stepwise = add_business_time(add_business_time(start, first, schedule), second, schedule)
    assert stepwise == add_business_time(start, first + second, schedule)


def test_a_range_is_checked_on_its_own() -> None:
    with pytest.raises(InvalidSchedule):
        WorkRange(600, 600)
