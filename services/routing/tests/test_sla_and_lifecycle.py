"""The SLA clock and what new scores and feedback do to a known lead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.routing.domain.business_hours import WorkingHours, parse_week
from services.routing.domain.lifecycle import (
    feedback_effect,
    feedback_target,
    on_rescore,
)
from services.routing.domain.sla import SlaPolicy, on_breach, start_clock

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_grade_a_clock_runs_one_business_day_and_warns_at_three_quarters() -> None:
    friday = datetime(2026, 3, 6, 16, 0, tzinfo=BERLIN)
    clock = start_clock(friday, "A", WorkingHours(time_zone="Europe/Berlin"), SlaPolicy())
    assert clock is not None
    assert clock.due_at == datetime(2026, 3, 9, 16, 0, tzinfo=BERLIN)
    assert clock.warn_at == datetime(2026, 3, 9, 14, 0, tzinfo=BERLIN)


def test_a_grade_b_clock_runs_a_working_week() -> None:
    monday = datetime(2026, 3, 9, 9, 0, tzinfo=BERLIN)
    clock = start_clock(monday, "B", WorkingHours(time_zone="Europe/Berlin"), SlaPolicy())
    assert clock is not None
    assert clock.due_at == datetime(2026, 3, 13, 17, 0, tzinfo=BERLIN)


def test_the_policy_is_configurable_and_grades_without_a_time_have_no_clock() -> None:
    policy = SlaPolicy(follow_up={"A": timedelta(hours=2)}, warning_fraction=0.5)
    hours = WorkingHours(week=parse_week("mon-sun 00:00-24:00"))
    start = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    clock = start_clock(start, "A", hours, policy)
    assert clock is not None
    assert (clock.warn_at, clock.due_at) == (start + timedelta(hours=1), start + timedelta(hours=2))
    assert start_clock(start, "B", hours, policy) is None
    assert start_clock(start, "C", hours, SlaPolicy()) is None


@pytest.mark.parametrize(
    "bad",
    [
        {"warning_fraction": 1.0},
        {"max_reassignments": -1},
        {"follow_up": {"A": timedelta(0)}},
    ],
)
def test_a_bad_policy_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        SlaPolicy(**bad)  # type: ignore[arg-type]


def test_breaches_reassign_up_to_the_limit_then_escalate() -> None:
    policy = SlaPolicy(max_reassignments=2)
    assert [on_breach(attempt, policy) for attempt in (1, 2, 3)] == [
        "reassign",
        "reassign",
        "escalate",
    ]
    assert on_breach(1, SlaPolicy(max_reassignments=0)) == "escalate"


def test_a_new_lead_is_routed_and_an_assigned_one_stays_with_its_rep() -> None:
    assert on_rescore(
        None, grade="C", previous_grade=None, recycled=False, trigger="touchpoint"
    ).route
    assert not on_rescore(
        "open", grade="A", previous_grade="B", recycled=False, trigger="touchpoint"
    ).route
    assert not on_rescore(
        "closed", grade="A", previous_grade="A", recycled=False, trigger="rescore"
    ).route


def test_a_grade_rise_pulls_a_lead_out_of_nurture() -> None:
    action = on_rescore("nurturing", grade="A", previous_grade="C", recycled=False, trigger="decay")
    assert action.route
    assert action.why == "pulled out of nurture: grade rose from C to A"
    assert not on_rescore(
        "nurturing", grade="D", previous_grade="C", recycled=False, trigger="touchpoint"
    ).route


def test_a_recycled_lead_comes_back_only_on_a_new_touchpoint() -> None:
    assert not on_rescore(
        "nurturing", grade="A", previous_grade="A", recycled=True, trigger="decay"
    ).route
    assert on_rescore(
        "nurturing", grade="A", previous_grade="A", recycled=True, trigger="touchpoint"
    ).route


def test_a_queued_lead_is_tried_again() -> None:
    assert on_rescore(
        "queued", grade="B", previous_grade="B", recycled=False, trigger="decay"
    ).route


def test_feedback_waits_until_the_lead_has_a_rep_or_a_queue() -> None:
    assert feedback_target(None) == "keep"
    assert feedback_target("nurturing") == "keep"
    assert feedback_target("open") == "apply"
    assert feedback_target("queued") == "apply"


DUE = datetime(2026, 3, 9, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "reason", "closes", "recycle"),
    [
        ("contacted", None, False, False),
        ("accepted", None, False, False),
        ("rejected", "wrong_target", True, False),
        ("rejected", "no_timeframe", True, True),
        ("converted", None, True, False),
        ("won", None, True, False),
        ("lost", None, True, False),
    ],
)
def test_every_disposition_stops_the_clock(
    status: str, reason: str | None, closes: bool, recycle: bool
) -> None:
    effect = feedback_effect(
        status=status,
        rejection_reason=reason,
        occurred_at=DUE - timedelta(minutes=1),
        clock_running=True,
        due_at=DUE,
    )
    assert effect.stops_clock
    assert effect.sla_met is True
    assert (effect.closes, effect.recycle_to_nurture) == (closes, recycle)


def test_late_feedback_is_not_met_and_feedback_without_a_clock_says_nothing() -> None:
    late = feedback_effect(
        status="contacted",
        rejection_reason=None,
        occurred_at=DUE + timedelta(seconds=1),
        clock_running=True,
        due_at=DUE,
    )
    assert late.sla_met is False
    idle = feedback_effect(
        status="won", rejection_reason=None, occurred_at=DUE, clock_running=False, due_at=DUE
    )
    assert (idle.stops_clock, idle.sla_met, idle.closes) == (False, None, True)
