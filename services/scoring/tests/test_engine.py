"""The rule engine, pure: fit, engagement, caps, decay, in-market, the matrix, reasons, and
when a grade next changes by itself. Examples first, then properties."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, get_args

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from services.scoring.domain.document import GRADES, parse_source
from services.scoring.domain.engine import (
    CROSSING_MARGIN,
    GRADE_RANK,
    Rulebook,
    Score,
    compile_rulebook,
    decay_factor,
    grade_for,
    score_lead,
)
from services.scoring.domain.facts import TouchpointFacts
from services.scoring.rulebooks import default_source
from services.scoring.tests.builders import rulebook, touch
from shared.contracts import TOUCHPOINT_TYPES, VERTICALS, CompanySnapshot, LeadSnapshot, Seniority
from shared.testing import factories

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
DEFAULT = compile_rulebook(parse_source(default_source()), version=1)


def lead(**overrides: Any) -> LeadSnapshot:
    return factories.lead_snapshot(created_at=NOW - 10 * DAY, **overrides)


def fit_only(*rules: dict[str, Any], **fit: Any) -> Rulebook:
    return rulebook(fit={"rules": list(rules), **fit})


def fit_of(book: Rulebook, snapshot: LeadSnapshot) -> float:
    return score_lead(book, snapshot, [], now=NOW).fit_score


def sums_by_category(score: Score, kind: str) -> dict[str, float]:
    totals: dict[str, float] = {}
    for reason in score.reasons:
        if reason.kind == kind:
            totals[reason.category] = totals.get(reason.category, 0.0) + reason.points
    return totals


# ---------------------------------------------------------------------------- fit


@pytest.mark.parametrize(
    ("condition", "overrides", "matches"),
    [
        ({"field": "company.vertical", "equals": "SOFTWARE"}, {}, True),
        ({"field": "company.vertical", "equals": "retail"}, {}, False),
        ({"field": "country", "in": ["de", "gb"]}, {}, True),
        ({"field": "country", "in": ["de"]}, {}, False),
        ({"field": "country", "not_in": ["de"]}, {}, True),
        ({"field": "country", "not_in": ["de"]}, {"country": None}, False),
        ({"not": {"field": "country", "in": ["de"]}}, {"country": None}, True),
        ({"field": "company.employees", "min": 200, "max": 240}, {}, True),
        ({"field": "company.employees", "min": 241}, {}, False),
        ({"field": "company.employees", "max": 239}, {}, False),
        ({"field": "title", "present": True}, {}, True),
        ({"field": "title", "present": True}, {"title": "  "}, False),
        ({"field": "title", "present": False}, {"title": None}, True),
        ({"field": "title", "contains_any": ["head of", "ENGINEERING"]}, {}, True),
        ({"field": "title", "contains_any": ["sales"]}, {}, False),
        ({"field": "title", "matches": r"^vp\b"}, {}, True),
        ({"field": "title", "matches": r"^cto$"}, {}, False),
        ({"field": "free_mail", "equals": True}, {"free_mail": True}, True),
        ({"field": "free_mail", "equals": True}, {}, False),
        ({"field": "email_domain", "equals": "analytical-engines.co.uk"}, {}, True),
        ({"field": "attributes.budget", "min": 10000}, {"attributes": {"budget": "25000"}}, True),
        ({"field": "attributes.budget", "min": 10000}, {"attributes": {"budget": "lots"}}, False),
        (
            {"field": "attributes.partner", "equals": True},
            {"attributes": {"partner": "TRUE"}},
            True,
        ),
        ({"field": "attributes.tier", "equals": 1}, {"attributes": {"tier": True}}, False),
        ({"field": "attributes.missing", "equals": "x"}, {}, False),
        ({"field": "crm_ids.hubspot", "present": True}, {"crm_ids": {"hubspot": "651"}}, True),
        (
            {"all": [{"field": "seniority", "equals": "vp"}, {"field": "country", "equals": "GB"}]},
            {},
            True,
        ),
        (
            {"all": [{"field": "seniority", "equals": "vp"}, {"field": "country", "equals": "DE"}]},
            {},
            False,
        ),
        (
            {
                "any": [
                    {"field": "seniority", "equals": "c_level"},
                    {"field": "city", "in": ["London"]},
                ]
            },
            {},
            True,
        ),
    ],
)
def test_each_test_of_a_fit_condition(
    condition: dict[str, Any], overrides: dict[str, Any], matches: bool
) -> None:
    book = fit_only({"id": "r", "points": 7, "when": condition})
    score = score_lead(book, lead(**overrides), [], now=NOW)
    assert score.fit_score == (7 if matches else 0)
    assert ("r" in score.matched_rules) == matches


def test_company_fields_lists_and_money() -> None:
    account = uuid.uuid4()
    book = rulebook(
        lists={"accounts": [str(account).upper()], "domains": ["Analytical-Engines.co.uk"]},
        fit={
            "rules": [
                {
                    "id": "account",
                    "points": 30,
                    "when": {"field": "company.account_id", "in_list": "accounts"},
                },
                {
                    "id": "domain",
                    "points": 20,
                    "when": {"field": "company.domain", "in_list": "domains"},
                },
                {
                    "id": "revenue",
                    "points": 5,
                    "when": {"field": "company.annual_revenue", "min": 1e6},
                },
            ]
        },
    )
    company = CompanySnapshot(
        domain="analytical-engines.co.uk", account_id=account, annual_revenue=Decimal("2500000.50")
    )
    assert fit_of(book, lead(company=company)) == 55
    assert fit_of(book, lead(company=CompanySnapshot())) == 0


def test_points_by_value_looks_the_value_up() -> None:
    book = fit_only(
        {
            "id": "seniority",
            "why": "Seniority",
            "field": "seniority",
            "points_by_value": {"c_level": 25, "vp": 20, "individual": 0},
        }
    )
    vp = score_lead(book, lead(seniority="vp"), [], now=NOW)
    assert vp.fit_score == 20
    [reason] = vp.reasons
    assert (reason.rule, reason.kind, reason.points) == ("seniority", "fit", 20)
    assert reason.why == "Seniority: seniority is vp"
    individual = score_lead(book, lead(seniority="individual"), [], now=NOW)
    assert individual.fit_score == 0
    assert individual.reasons == ()  # no points, no reason ...
    assert "seniority" in individual.matched_rules  # ... but it matched (back-tests count it)
    unknown = score_lead(book, lead(seniority=None), [], now=NOW)
    assert "seniority" not in unknown.matched_rules


def test_points_by_value_can_be_guarded_by_a_condition() -> None:
    book = fit_only(
        {
            "id": "it_seniority",
            "field": "seniority",
            "points_by_value": {"vp": 20},
            "when": {"field": "department", "equals": "it"},
        }
    )
    assert fit_of(book, lead(seniority="vp", department="it")) == 20
    assert fit_of(book, lead(seniority="vp", department="sales")) == 0


def test_negative_points_and_an_explained_reason() -> None:
    book = fit_only(
        {"id": "free_mail", "points": -15, "when": {"field": "free_mail", "equals": True}},
        {"id": "base", "points": 10},
    )
    score = score_lead(book, lead(free_mail=True), [], now=NOW)
    assert score.fit_score == -5
    assert [(r.rule, r.points, r.why) for r in score.reasons] == [
        ("free_mail", -15, "free_mail is true"),
        ("base", 10, "every lead"),
    ]


def test_a_group_cap_limits_what_its_rules_add_and_says_so() -> None:
    book = fit_only(
        {"id": "vp", "points": 20, "group": "role", "when": {"field": "seniority", "equals": "vp"}},
        {
            "id": "eng",
            "points": 15,
            "group": "role",
            "when": {"field": "department", "present": True},
        },
        {
            "id": "penalty",
            "points": -40,
            "group": "role",
            "when": {"field": "city", "equals": "Paris"},
        },
        {"id": "other", "points": 5},
        caps={"role": 25},
    )
    score = score_lead(book, lead(), [], now=NOW)
    assert score.fit_score == 30
    cap = score.reasons[-1]
    assert (cap.rule, cap.points) == ("fit.caps.role", -10)
    assert cap.why == "the role rules add up to 35, capped at 25"
    # The cap limits the group's total: a penalty in the group counts against it.
    assert fit_of(book, lead(city="Paris")) == 20 + 15 - 40 + 5


def test_fit_is_kept_within_its_bounds_with_a_reason() -> None:
    book = fit_only({"id": "big", "points": 150}, min=0, max=100)
    score = score_lead(book, lead(), [], now=NOW)
    assert score.fit_score == 100
    assert [(r.rule, r.points) for r in score.reasons] == [("big", 150), ("fit.max", -50)]
    low = fit_only({"id": "bad", "points": -30}, min=0, max=100)
    assert [(r.rule, r.points) for r in score_lead(low, lead(), [], now=NOW).reasons] == [
        ("bad", -30),
        ("fit.min", 30),
    ]


def test_categories_score_each_product_line_and_the_best_one_grades_the_lead() -> None:
    book = rulebook(
        categories=[{"id": "crm", "name": "CRM"}, {"id": "analytics"}],
        fit={
            "rules": [
                {"id": "vp", "points": 40, "when": {"field": "seniority", "equals": "vp"}},
                {
                    "id": "software",
                    "points": 20,
                    "categories": ["analytics"],
                    "when": {"field": "company.vertical", "equals": "software"},
                },
            ]
        },
        engagement={
            "rules": [
                {
                    "id": "demo",
                    "points": 25,
                    "categories": ["crm"],
                    "when": {"field": "type", "equals": "demo_request"},
                }
            ]
        },
    )
    score = score_lead(book, lead(), [touch("demo_request", NOW)], now=NOW)
    crm, analytics = score.categories
    assert (crm.category, crm.fit_score, crm.engagement_score, crm.grade) == ("crm", 40, 25, "C")
    assert (analytics.fit_score, analytics.engagement_score, analytics.grade) == (60, 0, "B")
    assert (score.grade, score.category, score.fit_score, score.engagement_score) == (
        "B",
        "analytics",
        60,
        0,
    )
    assert {(r.rule, r.category) for r in score.reasons} == {
        ("vp", "crm"),
        ("vp", "analytics"),
        ("software", "analytics"),
        ("demo", "crm"),
    }
    assert score.signature == ("C", "B")


def test_a_tie_between_categories_goes_to_the_first_declared() -> None:
    book = rulebook(categories=[{"id": "one"}, {"id": "two"}])
    assert score_lead(book, lead(), [], now=NOW).category == "one"


# ---------------------------------------------------------------------------- engagement


def test_points_per_touchpoint_type_and_campaign_add_up() -> None:
    book = rulebook(
        engagement={
            "rules": [
                {
                    "id": "webinar",
                    "points": 10,
                    "when": {"field": "type", "equals": "webinar_attendance"},
                },
                {"id": "launch", "points": 5, "when": {"field": "campaign", "in": ["q3-launch"]}},
                {"id": "paid", "points": 1, "when": {"field": "utm.medium", "equals": "CPC"}},
            ]
        }
    )
    touchpoints = [
        touch("webinar_attendance", NOW, campaign="q3-launch", utm_medium="cpc"),
        touch("webinar_attendance", NOW, campaign="other"),
        touch("email_click", NOW, campaign="q3-launch"),
    ]
    score = score_lead(book, lead(), touchpoints, now=NOW)
    assert score.engagement_score == 10 + 5 + 1 + 10 + 5
    reasons = {r.rule: r for r in score.reasons}
    assert reasons["webinar"].points == 20
    assert reasons["webinar"].why.startswith("type is webinar_attendance: 2 touchpoints")


def test_a_daily_cap_counts_each_utc_day_apart() -> None:
    book = rulebook(
        engagement={
            "rules": [
                {
                    "id": "click",
                    "points": 3,
                    "daily_cap": 7,
                    "when": {"field": "type", "equals": "email_click"},
                }
            ]
        }
    )
    day_one = datetime(2030, 6, 1, 0, 30, tzinfo=UTC)
    touchpoints = [touch("email_click", day_one + timedelta(hours=h)) for h in range(4)]
    touchpoints.append(touch("email_click", datetime(2030, 6, 2, 0, 0, tzinfo=UTC)))
    score = score_lead(book, lead(), touchpoints, now=datetime(2030, 6, 2, 1, tzinfo=UTC))
    assert score.engagement_score == 7 + 3
    [reason] = score.reasons
    assert "5 touchpoints" in reason.why
    assert "(2 over the daily cap of 7)" in reason.why


def test_engagement_decays_by_its_half_life() -> None:
    book = rulebook(engagement={"half_life_days": 10, "rules": [{"id": "any", "points": 40}]})
    touchpoints = [touch("form_submission", NOW)]
    assert score_lead(book, lead(), touchpoints, now=NOW).engagement_score == 40
    assert score_lead(book, lead(), touchpoints, now=NOW + 10 * DAY).engagement_score == 20
    assert score_lead(book, lead(), touchpoints, now=NOW + 25 * DAY).engagement_score == 7.07
    reason = score_lead(book, lead(), touchpoints, now=NOW + 10 * DAY).reasons[0]
    assert reason.why.endswith("40 points, 20 after decay")
    # A touchpoint dated after now (clock skew) keeps its points; it does not grow them.
    assert score_lead(book, lead(), touchpoints, now=NOW - DAY).engagement_score == 40


def test_without_a_half_life_nothing_decays() -> None:
    book = rulebook(engagement={"rules": [{"id": "any", "points": 40}]})
    score = score_lead(book, lead(), [touch("x", NOW - 900 * DAY)], now=NOW)
    assert score.engagement_score == 40
    assert score.next_check_at is None


def test_engagement_is_kept_within_its_bounds() -> None:
    book = rulebook(
        engagement={
            "max": 50,
            "min": 0,
            "rules": [
                {"id": "demo", "points": 40},
                {
                    "id": "unsubscribe",
                    "points": -100,
                    "when": {"field": "type", "equals": "unsubscribe"},
                },
            ],
        }
    )
    high = score_lead(book, lead(), [touch("a", NOW), touch("b", NOW)], now=NOW)
    assert high.engagement_score == 50
    assert high.reasons[-1].rule == "engagement.max"
    low = score_lead(book, lead(), [touch("unsubscribe", NOW)], now=NOW)
    assert low.engagement_score == 0


def in_market_book(**in_market: Any) -> Rulebook:
    return rulebook(
        engagement={
            "half_life_days": 30,
            "in_market": {"window_days": 14, "min_band": "high", **in_market},
            "rules": [
                {
                    "id": "demo",
                    "points": 5,
                    "in_market": True,
                    "when": {"field": "type", "equals": "demo_request"},
                },
                {"id": "click", "points": 5},
            ],
        }
    )


def test_an_in_market_signal_lifts_engagement_for_its_window() -> None:
    book = in_market_book()
    demo = [touch("demo_request", NOW)]
    score = score_lead(book, lead(), demo, now=NOW + 13 * DAY)
    [category] = score.categories
    assert category.engagement_score < 20
    assert category.engagement_band == "high"
    assert category.grade == "C"  # low fit, high engagement
    assert category.in_market_until == NOW + 14 * DAY
    assert score.reasons[-1].rule == "engagement.in_market"
    assert score.reasons[-1].points == 0
    after = score_lead(book, lead(), demo, now=NOW + 14 * DAY)
    assert after.categories[0].engagement_band == "low"
    assert after.grade == "D"
    # A touchpoint of a rule that is not in-market lifts nothing.
    assert score_lead(book, lead(), [touch("email_click", NOW)], now=NOW).grade == "D"


def test_the_grade_matrix() -> None:
    book = rulebook()
    assert [
        grade_for(book, fit, engagement)
        for fit, engagement in [(50, 20), (50, 19.99), (49.99, 20), (-10, -10)]
    ] == ["A", "B", "C", "D"]
    assert grade_for(book, 0, 0, in_market=True) == "D"  # no in-market band in this rulebook
    assert grade_for(in_market_book(), 0, 0, in_market=True) == "C"


# ---------------------------------------------------------------------------- next change


def test_the_next_check_is_when_decay_crosses_a_grade_line() -> None:
    book = rulebook(
        fit={"rules": [{"id": "fits", "points": 60}]},
        engagement={"half_life_days": 30, "rules": [{"id": "demo", "points": 40}]},
    )
    touchpoints = [touch("demo_request", NOW)]
    score = score_lead(book, lead(), touchpoints, now=NOW)
    assert score.grade == "A"
    # 40 halves to the band's 20 after exactly one half-life.
    assert score.next_check_at == NOW + 30 * DAY + CROSSING_MARGIN
    later = score_lead(book, lead(), touchpoints, now=score.next_check_at)
    assert later.grade == "B"
    assert later.next_check_at is None  # the lowest band: nothing left to cross
    # Nothing changes before the crossing.
    assert score_lead(book, lead(), touchpoints, now=NOW + 30 * DAY - DAY).grade == "A"


def test_the_next_check_skips_band_lines_that_do_not_change_the_grade() -> None:
    book = rulebook(
        fit={"rules": [{"id": "fits", "points": 60}]},
        engagement={"half_life_days": 10, "rules": [{"id": "demo", "points": 80}]},
        grades={
            "fit_bands": {"high": 50, "low": None},
            "engagement_bands": {"hot": 40, "warm": 20, "cold": None},
            "matrix": {
                "high": {"hot": "A", "warm": "A", "cold": "B"},
                "low": {"hot": "C", "warm": "D", "cold": "D"},
            },
        },
    )
    score = score_lead(book, lead(), [touch("demo_request", NOW)], now=NOW)
    # hot -> warm after 10 days leaves an A; warm -> cold after 20 days makes a B.
    assert score.next_check_at == NOW + 20 * DAY + CROSSING_MARGIN


def test_the_next_check_waits_for_an_in_market_window_to_close() -> None:
    book = in_market_book()
    score = score_lead(book, lead(), [touch("demo_request", NOW)], now=NOW)
    assert score.grade == "C"
    assert score.next_check_at == NOW + 14 * DAY + CROSSING_MARGIN


def test_a_touchpoint_from_the_future_is_a_check_point() -> None:
    book = rulebook(engagement={"half_life_days": 30, "rules": [{"id": "any", "points": 50}]})
    ahead = NOW + timedelta(minutes=5)
    score = score_lead(book, lead(), [touch("demo_request", ahead)], now=NOW)
    assert score.next_check_at == ahead


# ---------------------------------------------------------------------------- the default


def test_the_default_rulebook_sends_a_fitting_engaged_lead_to_sales() -> None:
    vp = lead()  # VP Engineering, software, 240 people, London, phone given
    score = score_lead(DEFAULT, vp, [touch("form_submission", NOW)], now=NOW)
    assert (score.fit_score, score.engagement_score, score.grade) == (70, 5, "B")
    demo = score_lead(DEFAULT, vp, [touch("demo_request", NOW)], now=NOW)
    assert demo.grade == "A"
    student = lead(
        seniority="individual",
        department=None,
        free_mail=True,
        phone=None,
        country="BR",
        company=CompanySnapshot(),
    )
    assert score_lead(DEFAULT, student, [touch("content_download", NOW)], now=NOW).grade == "D"
    purchased = score_lead(DEFAULT, vp, [touch("list_import", NOW)], now=NOW)
    assert purchased.engagement_score == 0
    assert "purchased_list" in purchased.matched_rules


def test_the_default_rulebook_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        score_lead(DEFAULT, lead(), [], now=datetime(2030, 1, 1))


# ---------------------------------------------------------------------------- properties

SENIORITIES = [*get_args(Seniority), None]
COUNTRIES = ["US", "GB", "DE", "NO", "BR", "JP", None]

leads = st.builds(
    lambda seniority, employees, vertical, country, free_mail, phone: lead(
        seniority=seniority,
        country=country,
        free_mail=free_mail,
        phone=phone,
        company=CompanySnapshot(employees=employees, vertical=vertical),
    ),
    st.sampled_from(SENIORITIES),
    st.none() | st.integers(0, 50_000),
    st.none() | st.sampled_from(VERTICALS),
    st.sampled_from(COUNTRIES),
    st.booleans(),
    st.sampled_from([None, "+442079460958"]),
)
ages = st.floats(0, 200 * 86_400, allow_nan=False)
touchpoint_lists = st.lists(
    st.builds(
        lambda kind, age: touch(kind, NOW - timedelta(seconds=age)),
        st.sampled_from(TOUCHPOINT_TYPES),
        ages,
    ),
    max_size=25,
)


@given(touchpoint_lists, st.floats(0.5, 90), st.floats(0, 400 * 86_400))
def test_engagement_halves_with_each_half_life(
    touchpoints: list[TouchpointFacts], half_life_days: float, later: float
) -> None:
    book = rulebook(
        engagement={
            "half_life_days": half_life_days,
            "rules": [
                {"id": "all", "points": 10},
                {"id": "demo", "points": 30, "when": {"field": "type", "equals": "demo_request"}},
            ],
        }
    )
    at = NOW + timedelta(seconds=later)
    now_score = score_lead(book, lead(), touchpoints, now=at)
    next_score = score_lead(book, lead(), touchpoints, now=at + timedelta(days=half_life_days))
    raw_now = sum(
        (10 + (30 if tp.type == "demo_request" else 0))
        * decay_factor(timedelta(days=half_life_days), at - tp.occurred_at)
        for tp in touchpoints
    )
    assert now_score.engagement_score == pytest.approx(round(raw_now, 2), abs=0.011)
    assert next_score.engagement_score == pytest.approx(raw_now / 2, abs=0.011)
    assert next_score.engagement_score <= now_score.engagement_score


@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 23)), max_size=40),
    st.floats(0.5, 20),
    st.floats(0.5, 50),
)
def test_a_daily_cap_is_never_exceeded(
    moments: list[tuple[int, int]], points: float, cap: float
) -> None:
    book = rulebook(engagement={"rules": [{"id": "click", "points": points, "daily_cap": cap}]})
    start = datetime(2030, 6, 1, tzinfo=UTC)
    touchpoints = [touch("email_click", start + timedelta(days=d, hours=h)) for d, h in moments]
    per_day = Counter(day for day, _hour in moments)
    expected = sum(min(cap, count * points) for count in per_day.values())
    score = score_lead(book, lead(), touchpoints, now=start + 10 * DAY)
    assert score.engagement_score == pytest.approx(expected, abs=0.011)


@given(leads, touchpoint_lists, st.floats(-50, 50), st.floats(-50, 50))
def test_scores_stay_within_their_bounds(
    snapshot: LeadSnapshot,
    touchpoints: list[TouchpointFacts],
    fit_points: float,
    engagement_points: float,
) -> None:
    book = rulebook(
        fit={
            "min": -20,
            "max": 60,
            "rules": [
                {"id": "a", "points": fit_points},
                {
                    "id": "b",
                    "points": 2 * fit_points,
                    "when": {"field": "seniority", "present": True},
                },
                {"id": "c", "points": 30, "when": {"field": "country", "in": ["GB", "NO"]}},
            ],
        },
        engagement={
            "min": 0,
            "max": 70,
            "half_life_days": 15,
            "rules": [{"id": "e", "points": engagement_points}],
        },
    )
    score = score_lead(book, snapshot, touchpoints, now=NOW)
    assert -20 <= score.fit_score <= 60
    assert 0 <= score.engagement_score <= 70


@given(leads, st.floats(-50, 50), st.floats(-50, 50), st.floats(0, 100))
def test_a_group_adds_at_most_its_cap(
    snapshot: LeadSnapshot, first: float, second: float, cap: float
) -> None:
    book = fit_only(
        {"id": "a", "points": first, "group": "grp"},
        {
            "id": "b",
            "points": second,
            "group": "grp",
            "when": {"field": "seniority", "present": True},
        },
        caps={"grp": cap},
    )
    total = first + (second if snapshot.seniority is not None else 0)
    assert fit_of(book, snapshot) == pytest.approx(round(min(cap, total), 2), abs=1e-9)


def assert_reasons_add_up(score: Score) -> None:
    for kind in ("fit", "engagement"):
        totals = sums_by_category(score, kind)
        for category in score.categories:
            value = category.fit_score if kind == "fit" else category.engagement_score
            count = sum(
                1 for r in score.reasons if r.kind == kind and r.category == category.category
            )
            assert totals.get(category.category, 0.0) == pytest.approx(
                value, abs=0.005 * (count + 1)
            )


@given(leads, touchpoint_lists, st.floats(0, 60 * 86_400))
def test_the_reasons_add_up_to_the_scores(
    snapshot: LeadSnapshot, touchpoints: list[TouchpointFacts], later: float
) -> None:
    score = score_lead(DEFAULT, snapshot, touchpoints, now=NOW + timedelta(seconds=later))
    assert_reasons_add_up(score)
    assert score.grade in GRADES
    assert score.grade == min((c.grade for c in score.categories), key=GRADE_RANK.__getitem__)


@given(leads, touchpoint_lists, st.sampled_from(TOUCHPOINT_TYPES), ages)
def test_another_touchpoint_never_lowers_a_grade(
    snapshot: LeadSnapshot, touchpoints: list[TouchpointFacts], kind: str, age: float
) -> None:
    before = score_lead(DEFAULT, snapshot, touchpoints, now=NOW)
    extra = touch(kind, NOW - timedelta(seconds=age))
    after = score_lead(DEFAULT, snapshot, [*touchpoints, extra], now=NOW)
    assert GRADE_RANK[after.grade] <= GRADE_RANK[before.grade]
    assert after.engagement_score >= before.engagement_score


@given(
    st.floats(-200, 200),
    st.floats(-200, 200),
    st.floats(-200, 200),
    st.floats(-200, 200),
    st.booleans(),
)
def test_better_fit_or_more_engagement_never_grades_worse(
    fit_a: float, engagement_a: float, fit_b: float, engagement_b: float, in_market: bool
) -> None:
    assume(fit_a >= fit_b and engagement_a >= engagement_b)
    for book in (DEFAULT, in_market_book(), rulebook()):
        better = grade_for(book, fit_a, engagement_a, in_market=in_market)
        worse = grade_for(book, fit_b, engagement_b, in_market=in_market)
        assert GRADE_RANK[better] <= GRADE_RANK[worse]
        assert (
            GRADE_RANK[grade_for(book, fit_a, engagement_a, in_market=True)] <= GRADE_RANK[better]
        )


@settings(max_examples=150)
@given(leads, touchpoint_lists, st.lists(st.floats(0, 1), min_size=1, max_size=5))
def test_the_grade_holds_until_the_next_check_and_changes_there(
    snapshot: LeadSnapshot, touchpoints: list[TouchpointFacts], fractions: list[float]
) -> None:
    score = score_lead(DEFAULT, snapshot, touchpoints, now=NOW)
    until = score.next_check_at
    if until is None:
        for fraction in fractions:
            later = NOW + timedelta(days=3650 * fraction)
            assert (
                score_lead(DEFAULT, snapshot, touchpoints, now=later).signature == score.signature
            )
        return
    assert until > NOW
    changed = score_lead(DEFAULT, snapshot, touchpoints, now=until)
    assert changed.signature != score.signature
    span = (until - CROSSING_MARGIN * 2) - NOW
    for fraction in fractions:
        moment = NOW + span * fraction
        assert score_lead(DEFAULT, snapshot, touchpoints, now=moment).signature == score.signature


def test_decay_factor_is_a_half_per_half_life() -> None:
    assert decay_factor(timedelta(days=30), timedelta(days=60)) == 0.25
    assert decay_factor(None, timedelta(days=60)) == 1
    assert decay_factor(timedelta(days=30), -DAY) == 1
    assert math.isclose(decay_factor(timedelta(hours=1), timedelta(minutes=30)), 2**-0.5)


def test_engagement_exactly_on_a_band_line_crosses_it_at_once() -> None:
    book = rulebook(
        fit={"rules": [{"id": "fits", "points": 60}]},
        engagement={"half_life_days": 30, "rules": [{"id": "webinar", "points": 20}]},
    )
    score = score_lead(book, lead(), [touch("webinar_attendance", NOW)], now=NOW)
    assert score.grade == "A"  # 20 is the high band's floor
    assert score.next_check_at == NOW + CROSSING_MARGIN
    assert score_lead(book, lead(), [touch("x", NOW)], now=score.next_check_at).grade == "B"


def test_the_days_latest_touchpoints_fill_its_cap_first() -> None:
    book = rulebook(
        engagement={"half_life_days": 1, "rules": [{"id": "form", "points": 5, "daily_cap": 5}]}
    )
    evening = datetime(2030, 6, 1, 20, tzinfo=UTC)
    late = score_lead(book, lead(), [touch("f", evening)], now=evening)
    both = score_lead(
        book, lead(), [touch("f", evening), touch("f", evening - timedelta(hours=12))], now=evening
    )
    assert late.engagement_score == both.engagement_score == 5
