"""Every figure of the pure domain against the scenario (tests/scenario.py), worked by hand.

Times in the comments are 2026, UTC. An hour is 3 600 s, a day 86 400 s.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from services.reporting.domain.attribution import MODELS, attribute, weights
from services.reporting.domain.filters import Filters
from services.reporting.domain.followup import follow_up, speed_by_week
from services.reporting.domain.funnel import funnel
from services.reporting.domain.leads import Lead, build_lead, build_leads
from services.reporting.domain.loop import ReasonCount, loop
from services.reporting.domain.periods import (
    BadQuarter,
    Period,
    quarter_of,
    quarter_period,
    week_of,
)
from services.reporting.domain.records import (
    CostRecord,
    Facts,
    FeedbackRecord,
    GradeRecord,
    TouchpointRecord,
)
from services.reporting.domain.spend import cost_in, spend
from services.reporting.domain.stats import median, percentile, ratio
from services.reporting.domain.targets import targets
from services.reporting.domain.volume import volume
from services.reporting.tests import scenario
from services.reporting.tests.scenario import AS_OF, LEADS, at

HOUR = 3600.0
DAY = 86400.0
Q1 = Filters(period=quarter_period("2026-Q1"))


@pytest.fixture(scope="module")
def leads() -> list[Lead]:
    return build_leads(scenario.facts())


def by_name(leads: list[Lead], name: str) -> Lead:
    return next(lead for lead in leads if lead.lead_id == LEADS[name])


# ---------------------------------------------------------------------------- statistics


def test_median_and_percentiles_interpolate_between_ranks() -> None:
    assert median([]) is None
    assert median([5.0]) == 5.0
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    # rank (5 - 1) * 0.9 = 3.6: 7 200 + 0.6 * (100 800 - 7 200) = 63 360
    assert percentile([1800, 3600, 7200, 7200, 100800], 0.9) == pytest.approx(63360)
    assert percentile([10.0, 20.0], 1.0) == 20.0
    assert percentile([10.0, 20.0], 0.0) == 10.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1.0], 1.5)
    assert ratio(1, 0) is None
    assert ratio(1, 4) == 0.25


def test_quarters_periods_and_weeks() -> None:
    q1 = quarter_period("2026-Q1")
    assert (q1.start, q1.end) == (at(1, 1, 0), at(4, 1, 0))
    q4 = quarter_period("2025-Q4")
    assert (q4.start, q4.end) == (datetime(2025, 10, 1, tzinfo=UTC), at(1, 1, 0))
    for bad in ("2026-Q5", "2026Q1", "Q1-2026", ""):
        with pytest.raises(BadQuarter):
            quarter_period(bad)
    assert quarter_of(at(3, 31, 23, 59)) == "2026-Q1"
    assert quarter_of(at(4, 1, 0)) == "2026-Q2"
    assert week_of(at(1, 11, 23)) == date(2026, 1, 5)  # a Sunday belongs to Monday the 5th
    assert week_of(at(1, 5, 0)) == date(2026, 1, 5)
    assert q1.contains(at(1, 1, 0))
    assert not q1.contains(at(4, 1, 0))
    january = Period(at(1, 1, 0), at(2, 1, 0))
    assert january.overlap(at(1, 20, 0), at(3, 1, 0)) == timedelta(days=12)
    assert january.overlap(at(3, 1, 0), at(4, 1, 0)) == timedelta(0)
    assert Period().overlap(at(1, 1, 0), at(1, 2, 0)) == timedelta(days=1)


# ---------------------------------------------------------------------------- each lead


def test_a_lead_is_known_from_its_ingested_events_only(leads: list[Lead]) -> None:
    # L7 has a grade and feedback but was never ingested: it is nowhere.
    assert LEADS["L7"] not in {lead.lead_id for lead in leads}
    assert len(leads) == 8


def test_a_leads_origin_and_latest_known_attributes(leads: list[Lead]) -> None:
    l1 = by_name(leads, "L1")
    # Came back via tradeshow and directory: its origin stays the webinar of its first form.
    assert (l1.source, l1.campaign) == ("web_form", "webinar")
    # Its vertical was unknown until the third submission's snapshot.
    assert l1.vertical == "software"
    assert (l1.country, l1.region) == ("GB", "GB-LND")
    assert l1.grade == "A"  # B on 01-05, A on 01-12: the latest
    assert l1.mql_at == at(1, 5, 9, 1)  # the first time A or B
    assert (l1.team_id, l1.rep_id) == ("emea", "r1")
    l2 = by_name(leads, "L2")
    assert (l2.team_id, l2.rep_id) == ("emea", "r1")  # re-assigned from r2 to r1
    l4 = by_name(leads, "L4")
    assert (l4.team_id, l4.rep_id, l4.first_assigned_at) == (None, None, None)  # nurture


def _lead(*feedback: FeedbackRecord, grades: tuple[GradeRecord, ...] = ()) -> Lead:
    lead_id = uuid.uuid4()
    touch = TouchpointRecord(
        touchpoint_id=uuid.uuid4(),
        lead_id=lead_id,
        created=True,
        type="form_submission",
        source="web_form",
        campaign="c",
        occurred_at=at(1, 1, 9),
        lead_created_at=at(1, 1, 9),
    )
    return build_lead(
        [touch],
        [replace(g, lead_id=lead_id) for g in grades],
        [],
        [],
        [replace(f, lead_id=lead_id) for f in feedback],
    )


def _fb(name: str, status: str, when: datetime, amount: str | None = None) -> FeedbackRecord:
    return FeedbackRecord(
        event_id=name,
        lead_id=uuid.uuid4(),
        status=status,
        occurred_at=when,
        amount=Decimal(amount) if amount else None,
    )


def test_a_later_stage_implies_the_earlier_ones() -> None:
    # Graded C only, never accepted, but the CRM says converted on 01-10 and won on 01-20.
    lead = _lead(
        _fb("c", "converted", at(1, 10, 9), "800"),
        _fb("w", "won", at(1, 20, 9)),
        grades=(GradeRecord("g", uuid.uuid4(), "C", at(1, 1, 10)),),
    )
    assert lead.won_at == at(1, 20, 9)
    assert lead.opportunity_at == lead.accepted_at == lead.mql_at == at(1, 10, 9)
    # A won deal with no amount of its own is worth its opportunity's amount.
    assert (lead.pipeline, lead.revenue) == (Decimal(800), Decimal(800))


def test_a_stage_reached_after_a_later_one_takes_the_later_ones_time() -> None:
    # Accepted on 01-12 although the opportunity came on 01-11: accepted counts from 01-11.
    lead = _lead(_fb("a", "accepted", at(1, 12, 9)), _fb("c", "converted", at(1, 11, 9)))
    assert lead.accepted_at == at(1, 11, 9)


def test_won_then_lost_is_lost_and_lost_then_won_is_won() -> None:
    lost = _lead(
        _fb("w", "won", at(1, 10, 9), "500"),
        _fb("l", "lost", at(1, 11, 9)),
        _fb("c", "converted", at(1, 5, 9), "400"),
    )
    assert lost.won_at is None
    assert (lost.pipeline, lost.revenue) == (Decimal(400), Decimal(0))
    won = _lead(_fb("l", "lost", at(1, 10, 9)), _fb("w", "won", at(1, 11, 9), "500"))
    assert won.won_at == at(1, 11, 9)
    # No converted feedback: the opportunity's amount is the won one.
    assert (won.pipeline, won.revenue) == (Decimal(500), Decimal(500))


def test_the_latest_amount_of_an_opportunity_counts() -> None:
    lead = _lead(
        _fb("c1", "converted", at(1, 5, 9), "400"), _fb("c2", "converted", at(1, 6, 9), "450")
    )
    assert lead.opportunity_at == at(1, 5, 9)
    assert lead.pipeline == Decimal(450)


# ---------------------------------------------------------------------------- volume


def test_volume_of_the_first_quarter(leads: list[Lead]) -> None:
    figures = volume(leads, Q1)
    # L1 L2 L3 L4 L5 L8 L9; L6 is of April.
    assert figures.leads == 7
    # seven creating touchpoints, and L1 came back twice, L3 once.
    assert (figures.touchpoints, figures.new_touchpoints, figures.merged_touchpoints) == (10, 7, 3)
    # latest grades: A for L1 L2 L8, B for L3 L5 L9, C for L4.
    assert {g.grade: g.leads for g in figures.grades} == {
        "A": 3,
        "B": 3,
        "C": 1,
        "D": 0,
        "ungraded": 0,
    }


def test_volume_of_all_time_and_by_filter(leads: list[Lead]) -> None:
    everything = volume(leads, Filters())
    assert (everything.leads, everything.touchpoints) == (8, 11)
    assert {g.grade: g.leads for g in everything.grades}["D"] == 1
    assert volume(leads, replace(Q1, source="directory")).leads == 3  # L3 L5 L9
    assert volume(leads, replace(Q1, campaign="webinar")).leads == 3  # L1 L2 L8
    assert volume(leads, replace(Q1, vertical="software")).leads == 4  # L1 L3 L5 L8
    assert volume(leads, replace(Q1, country="US")).leads == 3  # L3 L4 L9
    assert volume(leads, replace(Q1, region="US-CA")).leads == 1  # L3
    assert volume(leads, replace(Q1, team="americas")).leads == 2  # L3 L9
    assert volume(leads, replace(Q1, rep="r1")).leads == 3  # L1 L2 (re-assigned) L8
    # The webinar's leads came back once in Q1 (L1 on 01-12 and 01-20): 3 new + 2 merged.
    webinar = volume(leads, replace(Q1, campaign="webinar"))
    assert (webinar.new_touchpoints, webinar.merged_touchpoints) == (3, 2)
    # Touchpoints count by when they occurred: January has L1's two returns, L3's one.
    january = volume(leads, Filters(period=Period(at(1, 1, 0), at(2, 1, 0))))
    assert (january.leads, january.new_touchpoints, january.merged_touchpoints) == (5, 5, 3)


# ---------------------------------------------------------------------------- funnel


def test_funnel_of_the_first_quarter(leads: list[Lead]) -> None:
    figures = funnel(leads, Q1)
    stages = {stage.stage: stage for stage in figures.stages}
    # ingested 7; MQL: all but L4 (C) = 6; accepted: L1, L3; opportunity: L1, L3; won: L1.
    assert [s.leads for s in figures.stages] == [7, 6, 2, 2, 1]
    assert stages["ingested"].conversion is None
    assert stages["mql"].conversion == pytest.approx(6 / 7)
    assert stages["accepted"].conversion == pytest.approx(2 / 6)
    assert stages["opportunity"].conversion == 1.0
    assert stages["won"].conversion == 0.5
    assert figures.overall_conversion == pytest.approx(1 / 7)
    # Each MQL was graded one minute after it was created.
    assert stages["mql"].median_seconds_from_previous == 60
    # L1: 01-05 09:01 -> 01-06 09:02 = 86 460; L3: 01-07 12:01 -> 01-09 12:01 = 172 800.
    assert stages["accepted"].median_seconds_from_previous == (86460 + 172800) / 2
    # L1: 01-06 09:02 -> 01-25 09:00 = 19 d - 2 min = 1 641 480;
    # L3: 01-09 12:01 -> 01-15 12:00 = 6 d - 1 min = 518 340.
    assert stages["opportunity"].median_seconds_from_previous == (1641480 + 518340) / 2
    # L1: 01-25 -> 02-10 = 16 days.
    assert stages["won"].median_seconds_from_previous == 16 * DAY
    assert stages["ingested"].median_seconds_from_previous is None
    assert (figures.pipeline, figures.revenue) == (15000.0, 12000.0)


def test_funnel_filtered_to_a_campaign_and_to_an_empty_selection(leads: list[Lead]) -> None:
    webinar = funnel(leads, replace(Q1, campaign="webinar"))  # L1 L2 L8
    assert [s.leads for s in webinar.stages] == [3, 3, 1, 1, 1]
    assert (webinar.pipeline, webinar.revenue) == (10000.0, 12000.0)
    nobody = funnel(leads, replace(Q1, source="nowhere"))
    assert [s.leads for s in nobody.stages] == [0, 0, 0, 0, 0]
    assert [s.conversion for s in nobody.stages] == [None] * 5
    assert nobody.overall_conversion is None


# ---------------------------------------------------------------------------- follow-up


def test_follow_up_of_the_first_quarter(leads: list[Lead]) -> None:
    figures = follow_up(leads, Q1, as_of=AS_OF)
    # Assigned to a rep: L1 L2 L3 L5 L8 L9. Followed up: all but L5.
    assert (figures.assigned, figures.touched) == (6, 5)
    # L8 30 min, L3 1 h, L1 2 h, L9 2 h, L2 28 h (from its first assignment, to r2).
    assert figures.speed_median_seconds == 2 * HOUR
    assert figures.speed_p90_seconds == pytest.approx(63360)  # 7 200 + 0.6 * 93 600
    # Clocks: a1 a2b a3 a8 a9 met; a2 and a5 breached.
    assert (figures.sla_met, figures.sla_breached) == (5, 2)
    assert figures.sla_compliance == pytest.approx(5 / 7)
    assert (figures.sla_warnings, figures.escalations, figures.reassignments) == (1, 1, 1)
    # L5, assigned 01-09 09:02, still waiting on 04-03 09:02: 84 days.
    assert figures.waiting == 1
    assert figures.waiting_median_seconds == figures.waiting_longest_seconds == 84 * DAY
    [waiter] = figures.oldest_waiting
    assert (waiter.lead_id, waiter.rep_id, waiter.team_id) == (LEADS["L5"], "r2", "emea")
    assert waiter.assigned_at == at(1, 9, 9, 2)


def test_sla_clocks_count_for_the_rep_who_held_them(leads: list[Lead]) -> None:
    r2 = follow_up(leads, replace(Q1, rep="r2"), as_of=AS_OF)
    # r2 held a2 (breached, then L2 went to r1) and a5 (breached): none met.
    assert (r2.sla_met, r2.sla_breached, r2.sla_compliance) == (0, 2, 0.0)
    # ...but owns only L5 now: one lead assigned, not followed up.
    assert (r2.assigned, r2.touched, r2.waiting) == (1, 0, 1)
    assert r2.speed_median_seconds is None
    r1 = follow_up(leads, replace(Q1, rep="r1"), as_of=AS_OF)
    assert (r1.sla_met, r1.sla_breached, r1.sla_compliance) == (3, 0, 1.0)  # a1 a2b a8
    # L1 2 h, L2 28 h, L8 30 min.
    assert r1.speed_median_seconds == 2 * HOUR
    americas = follow_up(leads, replace(Q1, team="americas"), as_of=AS_OF)
    assert (americas.sla_met, americas.sla_breached) == (2, 0)  # a3 a9


def test_speed_to_first_touch_week_by_week(leads: list[Lead]) -> None:
    weeks = speed_by_week(leads, Q1)
    assert [w.week for w in weeks] == [date(2026, 1, 5), date(2026, 2, 2)]
    first, second = weeks
    # Week of 01-05: L1 2 h, L2 28 h, L3 1 h; L5 not yet followed up.
    assert (first.assigned, first.touched) == (4, 3)
    assert first.median_seconds == 2 * HOUR
    assert first.p90_seconds == pytest.approx(82080)  # 7 200 + 0.8 * 93 600
    # Week of 02-02: L8 30 min, L9 2 h.
    assert (second.assigned, second.touched) == (2, 2)
    assert second.median_seconds == 4500
    assert second.p90_seconds == pytest.approx(6660)  # 1 800 + 0.9 * 5 400


# ---------------------------------------------------------------------------- the loop


def test_rejection_reasons_by_campaign_and_source(leads: list[Lead]) -> None:
    figures = loop(leads, Q1)
    assert (figures.rejected, figures.recycled) == (3, 1)  # L2 L8 L9; L2 recycled
    assert figures.reasons == [
        ReasonCount("bad_data", 1),
        ReasonCount("no_timeframe", 1),
        ReasonCount("wrong_target", 1),
    ]
    campaigns = {row.key: row for row in figures.by_campaign}
    assert list(campaigns) == ["directory", "webinar"]
    assert campaigns["webinar"].rejected == 2
    assert campaigns["webinar"].recycled == 1
    assert campaigns["webinar"].reasons == [
        ReasonCount("no_timeframe", 1),
        ReasonCount("wrong_target", 1),
    ]
    assert campaigns["directory"].reasons == [ReasonCount("bad_data", 1)]
    sources = {row.key: row.rejected for row in figures.by_source}
    assert sources == {"directory": 1, "web_form": 2}
    assert loop(leads, replace(Q1, team="americas")).rejected == 1  # L9


# ---------------------------------------------------------------------------- money


def test_weights_of_each_model() -> None:
    f = Fraction
    assert weights("first_touch", 3) == [1, 0, 0]
    assert weights("last_touch", 3) == [0, 0, 1]
    assert weights("linear", 4) == [f(1, 4)] * 4
    assert weights("u_shaped", 1) == [1]
    assert weights("u_shaped", 2) == [f(1, 2), f(1, 2)]
    assert weights("u_shaped", 4) == [f(2, 5), f(1, 10), f(1, 10), f(2, 5)]
    # W: first, MQL (index 2), opportunity (last) 30% each; 10% over indexes 1 and 3.
    assert weights("w_shaped", 5, 2) == [f(3, 10), f(1, 20), f(3, 10), f(1, 20), f(3, 10)]
    # Every touchpoint is key: the 10% goes to the three roles, a third each.
    assert weights("w_shaped", 1, 0) == [1]
    assert weights("w_shaped", 2, 0) == [f(2, 3), f(1, 3)]
    assert weights("w_shaped", 3, 1) == [f(1, 3)] * 3
    for model in MODELS:
        for count in range(1, 7):
            assert sum(weights(model, count, count // 2)) == 1
    with pytest.raises(ValueError, match="unknown"):
        weights("time_decay", 2)


def test_attribution_of_the_first_quarter(leads: list[Lead]) -> None:
    # L1: pipeline 10 000, revenue 12 000, over webinar (01-05), tradeshow (01-12) and
    # directory (01-20); its MQL touch is the webinar one. L3: pipeline 5 000, lost, over
    # directory only (its webinar touch came after the opportunity).
    def figures(model: str) -> dict[str, tuple[float, float]]:
        result = attribute(leads, Q1, model)
        assert (result.pipeline, result.revenue) == (15000.0, 12000.0)
        return {row.campaign: (row.pipeline, row.revenue) for row in result.campaigns}

    assert figures("first_touch") == {"webinar": (10000, 12000), "directory": (5000, 0)}
    assert figures("last_touch") == {"directory": (15000, 12000)}
    assert figures("linear") == {
        "directory": (8333.33, 4000),
        "webinar": (3333.33, 4000),
        "tradeshow": (3333.33, 4000),
    }
    assert figures("u_shaped") == {
        "directory": (9000, 4800),
        "webinar": (4000, 4800),
        "tradeshow": (2000, 2400),
    }
    # W: webinar is first and MQL touch (60%), directory the opportunity touch (30%),
    # tradeshow the rest (10%).
    assert figures("w_shaped") == {
        "directory": (8000, 3600),
        "webinar": (6000, 7200),
        "tradeshow": (1000, 1200),
    }
    # Rows come by pipeline, largest first.
    assert [r.campaign for r in attribute(leads, Q1, "linear").campaigns] == [
        "directory",
        "tradeshow",
        "webinar",
    ]
    w = {r.campaign: r.opportunities for r in attribute(leads, Q1, "w_shaped").campaigns}
    assert w == {"directory": 1.3, "webinar": 0.6, "tradeshow": 0.1}
    with pytest.raises(ValueError, match="unknown"):
        attribute(leads, Q1, "time_decay")


def test_campaign_costs_against_their_yield(leads: list[Lead]) -> None:
    rows = {row.campaign: row for row in spend(leads, scenario.COSTS, Q1, model="linear")}
    assert list(rows) == ["directory", "tradeshow", "webinar"]
    webinar = rows["webinar"]  # 6 000; L1 L2 L8, all MQLs, L1 an opportunity
    assert (webinar.cost, webinar.leads, webinar.mqls, webinar.opportunities) == (6000, 3, 3, 1)
    assert (webinar.cost_per_lead, webinar.cost_per_mql, webinar.cost_per_opportunity) == (
        2000,
        2000,
        6000,
    )
    assert (webinar.pipeline, webinar.revenue) == (3333.33, 4000)
    assert webinar.return_on_spend == pytest.approx(0.6667)  # 4 000 / 6 000
    directory = rows["directory"]  # 1 000; L3 L5 L9, all MQLs, L3 an opportunity
    assert (directory.cost_per_lead, directory.cost_per_mql) == (333.33, 333.33)
    assert directory.cost_per_opportunity == 1000
    assert directory.return_on_spend == 4.0  # 4 000 / 1 000
    tradeshow = rows["tradeshow"]  # 5 000; L4, graded C
    assert (tradeshow.leads, tradeshow.mqls, tradeshow.cost_per_lead) == (1, 0, 5000)
    assert (tradeshow.cost_per_mql, tradeshow.cost_per_opportunity) == (None, None)
    assert tradeshow.return_on_spend == 0.8  # linear credits it 4 000 of L1's revenue
    w = {row.campaign: row for row in spend(leads, scenario.COSTS, Q1, model="w_shaped")}
    assert w["webinar"].return_on_spend == 1.2  # 7 200 / 6 000


def test_a_period_takes_its_share_of_a_quarters_cost(leads: list[Lead]) -> None:
    january = Period(at(1, 1, 0), at(2, 1, 0))
    webinar_q1 = CostRecord("webinar", "2026-Q1", Decimal(6000))
    assert cost_in(webinar_q1, january) == Fraction(6000 * 31, 90)  # 31 of Q1's 90 days
    assert cost_in(webinar_q1, Period()) == 6000
    assert cost_in(CostRecord("webinar", "2026-Q2", Decimal(3000)), january) == 0
    rows = spend(leads, scenario.COSTS, Filters(period=january), model="linear")
    assert {r.campaign: r.cost for r in rows}["webinar"] == 2066.67
    # No period: every quarter's cost, in full (9 000 for the webinar).
    everything = {r.campaign: r for r in spend(leads, scenario.COSTS, Filters(), model="linear")}
    assert everything["webinar"].cost == 9000
    assert everything["webinar"].leads == 4  # L6 too
    only = spend(leads, scenario.COSTS, replace(Q1, campaign="tradeshow"), model="linear")
    assert [r.campaign for r in only] == ["tradeshow"]


# ---------------------------------------------------------------------------- targets


def test_quarterly_targets_against_actuals(leads: list[Lead]) -> None:
    rows = targets(leads, scenario.TARGETS, Q1)
    assert [(r.quarter, r.scope, r.scope_id) for r in rows] == [
        ("2026-Q1", "campaign", "webinar"),
        ("2026-Q1", "team", "emea"),
    ]
    webinar, emea = rows
    # Webinar: L1 L2 L8, all MQLs, one opportunity.
    assert (webinar.leads_target, webinar.leads_actual, webinar.leads_attainment) == (4, 3, 0.75)
    assert (webinar.mqls_target, webinar.mqls_actual, webinar.mqls_attainment) == (3, 3, 1.0)
    assert (webinar.conversion_actual, webinar.conversion_attainment) == (0.3333, 1.3333)
    # emea owns L1 L2 L5 L8, all MQLs; L1 an opportunity.
    assert (emea.leads_actual, emea.mqls_actual, emea.conversion_actual) == (4, 4, 0.25)
    assert (emea.leads_attainment, emea.mqls_attainment, emea.conversion_attainment) == (
        0.8,
        0.8,
        1.25,
    )
    everything = targets(leads, scenario.TARGETS, Filters())
    q2 = everything[-1]
    # Q2's webinar: L6 only; no MQL or conversion target was set.
    assert (q2.quarter, q2.leads_actual, q2.leads_attainment) == ("2026-Q2", 1, 0.1)
    assert (q2.mqls_target, q2.mqls_attainment, q2.conversion_attainment) == (None, None, None)
    # Filtered to americas: the emea target is not shown; the webinar's has no americas lead.
    americas = targets(leads, scenario.TARGETS, replace(Q1, team="americas"))
    assert [(r.scope_id, r.leads_actual) for r in americas] == [("webinar", 0)]


# ---------------------------------------------------------------------------- any order


def test_the_figures_do_not_depend_on_the_order_of_the_facts() -> None:
    facts = scenario.facts()
    expected = build_leads(facts)
    shuffler = random.Random(7)
    for _ in range(5):
        shuffled = Facts(
            touchpoints=tuple(shuffler.sample(facts.touchpoints, len(facts.touchpoints))),
            grades=tuple(shuffler.sample(facts.grades, len(facts.grades))),
            assignments=tuple(shuffler.sample(facts.assignments, len(facts.assignments))),
            sla=tuple(shuffler.sample(facts.sla, len(facts.sla))),
            feedback=tuple(shuffler.sample(facts.feedback, len(facts.feedback))),
        )
        assert build_leads(shuffled) == expected
