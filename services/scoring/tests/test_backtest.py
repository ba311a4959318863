"""Back-tests against a history whose figures are computed by hand below."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.scoring.domain.backtest import (
    FeedbackFact,
    LeadHistory,
    Rate,
    RuleLift,
    backtest,
    outcome_of,
)
from services.scoring.domain.document import parse_source
from services.scoring.domain.engine import compile_rulebook
from services.scoring.tests.builders import touch
from services.scoring.tests.support import Clock, handle, published
from shared.contracts import CompanySnapshot, LeadSnapshot
from shared.db import Database
from shared.http import create_app
from shared.service import ServiceDefinition, ServiceRuntime
from shared.testing import factories
from shared.testing.pytest_plugin import serve_app, service_settings

T0 = datetime(2030, 1, 6, 10, tzinfo=UTC)
DECIDED = T0 + timedelta(days=5)
NOW = T0 + timedelta(days=20)

GRADES = """
grades:
  fit_bands: {high: 50, low: null}
  engagement_bands: {high: 20, low: null}
  matrix: {high: {high: A, low: B}, low: {high: C, low: D}}
"""
DRAFT = (
    """
name: draft
fit:
  rules:
    - {id: vp_or_above, when: {field: seniority, in: [vp, c_level]}, points: 60}
    - {id: software, when: {field: company.vertical, equals: software}, points: 10}
engagement:
  rules:
    - {id: demo, when: {field: type, equals: demo_request}, points: 30}
"""
    + GRADES
)
ACTIVE = (
    """
name: active
fit:
  rules:
    - {id: software_only, when: {field: company.vertical, equals: software}, points: 60}
engagement: {rules: []}
"""
    + GRADES
)


@dataclass(frozen=True)
class Case:
    """One lead of the hand-computed history."""

    name: str
    seniority: str
    vertical: str
    demo_at: datetime | None
    feedback: tuple[tuple[str, datetime], ...]

    def snapshot(self) -> LeadSnapshot:
        return factories.lead_snapshot(
            seniority=self.seniority,
            company=CompanySnapshot(vertical=self.vertical, domain=f"{self.name}.example"),
            created_at=T0,
        )


# Draft (fit: vp+ 60, software 10; engagement: demo 30) and active (software 60) grades,
# each as of the first decision, or now:
#   lead  seniority   vertical  demo          outcome         draft        active
#   l1    vp          software  before        won       +     70/30 A      60/0 B   up
#   l2    vp          retail    -             accepted  +     60/0  B      0/0  D   up
#   l3    manager     software  before        rejected  -     10/30 C      60/0 B   down
#   l4    vp          software  -             lost      -     70/0  B      60/0 B   same
#   l5    individual  retail    after (late)  converted +     0/0   D      0/0  D   same
#   l6    manager     retail    -             rejected, then contacted: -   D   D   same
#   l7    c_level     software  before        none            70/30 A      60/0 B   up
#   l8    individual  retail    -             none            0/0   D      0/0  D   same
CASES = (
    Case("l1", "vp", "software", T0, (("contacted", T0), ("won", DECIDED))),
    Case("l2", "vp", "retail", None, (("accepted", DECIDED),)),
    Case("l3", "manager", "software", T0, (("rejected", DECIDED),)),
    Case("l4", "vp", "software", None, (("accepted", DECIDED), ("lost", DECIDED + timedelta(1)))),
    Case("l5", "individual", "retail", DECIDED + timedelta(days=1), (("converted", DECIDED),)),
    Case("l6", "manager", "retail", None, (("rejected", DECIDED), ("contacted", NOW))),
    Case("l7", "c_level", "software", T0, ()),
    Case("l8", "individual", "retail", None, ()),
)
# l4: accepted then lost: its latest outcome (lost) counts; it was decided when accepted.


def history() -> list[LeadHistory]:
    leads = []
    for case in CASES:
        touchpoints = [touch("form_submission", T0)]
        if case.demo_at is not None:
            touchpoints.append(touch("demo_request", case.demo_at))
        leads.append(
            LeadHistory(
                lead_id=uuid.uuid4(),
                snapshot=case.snapshot(),
                touchpoints=touchpoints,
                feedback=[FeedbackFact(status, at) for status, at in case.feedback],
            )
        )
    return leads


def test_the_figures_match_the_hand_computed_history() -> None:
    draft = compile_rulebook(parse_source(DRAFT), version=3)
    active = compile_rulebook(parse_source(ACTIVE), version=2)
    result = backtest(draft, active, history(), now=NOW)

    assert (result.draft_version, result.active_version) == (3, 2)
    assert (result.leads, result.with_outcome) == (8, 6)
    assert result.grade_mix == {"A": 2, "B": 2, "C": 1, "D": 3}
    assert result.active_grade_mix == {"A": 0, "B": 4, "C": 0, "D": 4}
    assert (result.moved_up, result.moved_down, result.unchanged) == (3, 1, 4)
    assert result.transitions == {
        ("B", "A"): 2,
        ("B", "B"): 1,
        ("B", "C"): 1,
        ("D", "B"): 1,
        ("D", "D"): 3,
    }

    by_grade = {
        c.grade: (c.leads, c.with_outcome, c.converted, c.rate) for c in result.conversion_by_grade
    }
    assert by_grade == {
        "A": (2, 1, 1, 1.0),  # l1 won; l7 undecided
        "B": (2, 2, 1, 0.5),  # l2 accepted, l4 lost
        "C": (1, 1, 0, 0.0),  # l3 rejected
        "D": (3, 2, 1, 0.5),  # l5 converted, l6 rejected; l8 undecided
    }
    active_by_grade = {
        c.grade: (c.with_outcome, c.converted, c.rate) for c in result.active_conversion_by_grade
    }
    assert active_by_grade == {
        "A": (0, 0, None),
        "B": (3, 1, 0.3333),  # l1 +, l3 -, l4 -
        "C": (0, 0, None),
        "D": (3, 2, 0.6667),  # l2 +, l5 +, l6 -
    }

    assert result.rule_lift == (
        # l1 + l2 + l4 - against l3 - l5 + l6 -: (2/3) / (1/3)
        RuleLift("vp_or_above", "fit", Rate(3, 2), Rate(3, 1)),
        # l1 + l3 - l4 - against l2 + l5 + l6 -
        RuleLift("software", "fit", Rate(3, 1), Rate(3, 2)),
        # l1 + l3 - (l5's demo came after the decision) against l2 + l4 - l5 + l6 -
        RuleLift("demo", "engagement", Rate(2, 1), Rate(4, 2)),
    )
    assert [lift.lift for lift in result.rule_lift] == [2.0, 0.5, 1.0]
    assert [lift.matched.rate for lift in result.rule_lift] == [0.6667, 0.3333, 0.5]


def test_a_rule_that_matches_every_decided_lead_has_no_lift() -> None:
    draft = compile_rulebook(
        parse_source(
            DRAFT.replace("fit:\n  rules:\n", "fit:\n  rules:\n    - {id: all, points: 1}\n")
        ),
        version=3,
    )
    active = compile_rulebook(parse_source(ACTIVE), version=2)
    lifts = {lift.rule: lift for lift in backtest(draft, active, history(), now=NOW).rule_lift}
    assert lifts["all"].not_matched == Rate(0, 0)
    assert lifts["all"].lift is None
    assert lifts["all"].matched.rate == 0.5


def test_no_history_no_figures() -> None:
    rulebook = compile_rulebook(parse_source(DRAFT), version=1)
    result = backtest(rulebook, rulebook, [], now=NOW)
    assert result.leads == result.with_outcome == 0
    assert all(conversion.rate is None for conversion in result.conversion_by_grade)
    assert all(lift.lift is None for lift in result.rule_lift)


@pytest.mark.parametrize(
    ("feedback", "expected"),
    [
        ((), (None, None)),
        ((("contacted", T0),), (None, None)),
        ((("accepted", T0), ("lost", DECIDED)), ("not_converted", T0)),
        ((("lost", DECIDED), ("accepted", T0)), ("not_converted", T0)),  # by time, not arrival
        ((("rejected", T0), ("won", DECIDED), ("contacted", NOW)), ("converted", T0)),
    ],
)
def test_the_outcome_is_the_latest_status_with_one(
    feedback: tuple[tuple[str, datetime], ...], expected: tuple[str | None, datetime | None]
) -> None:
    assert outcome_of([FeedbackFact(status, at) for status, at in feedback]) == expected


async def test_the_api_answers_the_same_figures_from_the_stored_history(
    service_definition: ServiceDefinition, database: Database
) -> None:
    settings = service_settings(service_definition, database=database, backtest_page_size=3)
    runtime = ServiceRuntime(service_definition, settings)
    runtime.state["clock"] = Clock(NOW)
    for case in CASES:
        lead_id = uuid.uuid4()
        touchpoints = [factories.touchpoint(type="form_submission", occurred_at=T0)]
        if case.demo_at is not None:
            touchpoints.append(factories.touchpoint(type="demo_request", occurred_at=case.demo_at))
        for count, touchpoint in enumerate(touchpoints, start=1):
            payload = factories.lead_ingested(
                lead_id=lead_id,
                lead=case.snapshot(),
                touchpoint=touchpoint,
                touchpoint_count=count,
            )
            handle(database, payload, time=touchpoint.occurred_at)
        for status, at in case.feedback:
            reason = "wrong_target" if status == "rejected" else None
            feedback = factories.lead_feedback(
                lead_id=lead_id, status=status, rejection_reason=reason, occurred_at=at
            )
            handle(database, feedback, time=at)

    app = create_app(runtime, manage_runtime=False)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        headers = {"content-type": "application/yaml"}
        await client.post("/v1/rulebooks", content=ACTIVE, headers=headers)
        assert (await client.post("/v1/rulebooks/2:activate")).status_code == 202
        await client.post("/v1/rulebooks", content=DRAFT, headers=headers)
        answer = await client.post("/v1/rulebooks/3:backtest")
        assert answer.status_code == 200
        missing = await client.post("/v1/rulebooks/7:backtest")
        assert missing.status_code == 404
        assert len(published(database)) == len(CASES) + 4  # the back-test published nothing

    body = answer.json()
    assert (body["version"], body["active_version"], body["as_of"]) == (
        3,
        2,
        "2030-01-26T10:00:00Z",
    )
    assert (body["leads"], body["leads_with_outcome"]) == (8, 6)
    assert body["grade_mix"] == {"A": 2, "B": 2, "C": 1, "D": 3}
    assert body["active_grade_mix"] == {"A": 0, "B": 4, "C": 0, "D": 4}
    moves = body["moves"]
    assert (moves["up"], moves["down"], moves["unchanged"]) == (3, 1, 4)
    assert {(t["active_grade"], t["draft_grade"]): t["leads"] for t in moves["transitions"]} == {
        ("B", "A"): 2,
        ("B", "B"): 1,
        ("B", "C"): 1,
        ("D", "B"): 1,
        ("D", "D"): 3,
    }
    assert [
        (c["grade"], c["leads"], c["with_outcome"], c["converted"], c["rate"])
        for c in body["conversion_by_grade"]
    ] == [("A", 2, 1, 1, 1.0), ("B", 2, 2, 1, 0.5), ("C", 1, 1, 0, 0.0), ("D", 3, 2, 1, 0.5)]
    assert [c["rate"] for c in body["active_conversion_by_grade"]] == [None, 0.3333, None, 0.6667]
    assert body["rule_lift"] == [
        {
            "rule": "vp_or_above",
            "kind": "fit",
            "matched": {"with_outcome": 3, "converted": 2, "rate": 0.6667},
            "not_matched": {"with_outcome": 3, "converted": 1, "rate": 0.3333},
            "lift": 2.0,
        },
        {
            "rule": "software",
            "kind": "fit",
            "matched": {"with_outcome": 3, "converted": 1, "rate": 0.3333},
            "not_matched": {"with_outcome": 3, "converted": 2, "rate": 0.6667},
            "lift": 0.5,
        },
        {
            "rule": "demo",
            "kind": "engagement",
            "matched": {"with_outcome": 2, "converted": 1, "rate": 0.5},
            "not_matched": {"with_outcome": 4, "converted": 2, "rate": 0.5},
            "lift": 1.0,
        },
    ]
