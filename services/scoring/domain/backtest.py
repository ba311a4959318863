"""Back-testing a draft rulebook on stored history, against the active one.

Each lead is graded by both rulebooks **as of the moment sales first decided on it** (its
first feedback with an outcome), from the touchpoints it had by then, so nothing the draft
is judged on comes from after the decision; a lead with no outcome yet is graded as of now.
The lead's snapshot is the latest one (the projection keeps no older snapshots).

A lead's outcome is its latest feedback with an outcome: accepted, converted or won count
as converted; rejected or lost as not converted; contacted is no outcome.

The answer: the grade mix under each rulebook; how many leads the draft moves up, down or
leaves, and between which grades; conversion per grade where outcomes are known; and the
lift of each rule of the draft: the conversion of the leads it matched over the
conversion of those it did not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from services.scoring.domain.document import GRADES, Grade
from services.scoring.domain.engine import GRADE_RANK, Kind, Rulebook, score_lead
from services.scoring.domain.facts import TouchpointFacts
from shared.contracts import LeadSnapshot

Outcome = Literal["converted", "not_converted"]
CONVERTED = frozenset({"accepted", "converted", "won"})
NOT_CONVERTED = frozenset({"rejected", "lost"})
RATE_DIGITS = 4


@dataclass(frozen=True, slots=True)
class FeedbackFact:
    status: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class LeadHistory:
    lead_id: UUID
    snapshot: LeadSnapshot
    touchpoints: Sequence[TouchpointFacts]
    feedback: Sequence[FeedbackFact]


def outcome_of(feedback: Sequence[FeedbackFact]) -> tuple[Outcome | None, datetime | None]:
    """The lead's outcome (its latest status with one) and when sales first decided."""
    decisions = sorted(
        (fact for fact in feedback if fact.status in CONVERTED | NOT_CONVERTED),
        key=lambda fact: fact.occurred_at,
    )
    if not decisions:
        return None, None
    latest = decisions[-1].status
    return ("converted" if latest in CONVERTED else "not_converted"), decisions[0].occurred_at


@dataclass(frozen=True, slots=True)
class Rate:
    with_outcome: int
    converted: int

    @property
    def rate(self) -> float | None:
        if not self.with_outcome:
            return None
        return round(self.converted / self.with_outcome, RATE_DIGITS)


@dataclass(frozen=True, slots=True)
class GradeConversion:
    grade: Grade
    leads: int
    with_outcome: int
    converted: int

    @property
    def rate(self) -> float | None:
        return Rate(self.with_outcome, self.converted).rate


@dataclass(frozen=True, slots=True)
class RuleLift:
    rule: str
    kind: Kind
    matched: Rate
    not_matched: Rate

    @property
    def lift(self) -> float | None:
        matched, not_matched = self.matched.rate, self.not_matched.rate
        if matched is None or not not_matched:
            return None
        return round(
            (self.matched.converted / self.matched.with_outcome)
            / (self.not_matched.converted / self.not_matched.with_outcome),
            RATE_DIGITS,
        )


@dataclass(frozen=True)
class Backtest:
    draft_version: int
    active_version: int
    leads: int
    with_outcome: int
    grade_mix: dict[Grade, int]
    active_grade_mix: dict[Grade, int]
    moved_up: int
    moved_down: int
    unchanged: int
    transitions: dict[tuple[Grade, Grade], int]  # (active grade, draft grade) -> leads
    conversion_by_grade: tuple[GradeConversion, ...]
    active_conversion_by_grade: tuple[GradeConversion, ...]
    rule_lift: tuple[RuleLift, ...]


@dataclass
class BacktestRun:
    """Feed it leads (page by page, for large histories), then ask for the result."""

    draft: Rulebook
    active: Rulebook
    now: datetime
    _leads: int = 0
    _draft_grades: Counter[Grade] = field(default_factory=Counter)
    _active_grades: Counter[Grade] = field(default_factory=Counter)
    _transitions: Counter[tuple[Grade, Grade]] = field(default_factory=Counter)
    _draft_outcomes: Counter[tuple[Grade, Outcome]] = field(default_factory=Counter)
    _active_outcomes: Counter[tuple[Grade, Outcome]] = field(default_factory=Counter)
    _matched: Counter[tuple[str, Outcome]] = field(default_factory=Counter)
    _outcomes: Counter[Outcome] = field(default_factory=Counter)

    def add(self, leads: Iterable[LeadHistory]) -> None:
        for lead in leads:
            self._add(lead)

    def _add(self, lead: LeadHistory) -> None:
        outcome, decided_at = outcome_of(lead.feedback)
        as_of = decided_at or self.now
        touchpoints = [tp for tp in lead.touchpoints if tp.occurred_at <= as_of]
        draft = score_lead(self.draft, lead.snapshot, touchpoints, now=as_of)
        active = score_lead(self.active, lead.snapshot, touchpoints, now=as_of)
        self._leads += 1
        self._draft_grades[draft.grade] += 1
        self._active_grades[active.grade] += 1
        self._transitions[(active.grade, draft.grade)] += 1
        if outcome is None:
            return
        self._outcomes[outcome] += 1
        self._draft_outcomes[(draft.grade, outcome)] += 1
        self._active_outcomes[(active.grade, outcome)] += 1
        for rule in draft.matched_rules:
            self._matched[(rule, outcome)] += 1

    def result(self) -> Backtest:
        up = sum(
            count
            for (before, after), count in self._transitions.items()
            if GRADE_RANK[after] < GRADE_RANK[before]
        )
        down = sum(
            count
            for (before, after), count in self._transitions.items()
            if GRADE_RANK[after] > GRADE_RANK[before]
        )
        total_converted = self._outcomes["converted"]
        total_with_outcome = total_converted + self._outcomes["not_converted"]
        lifts = []
        for rule in self.draft.rule_ids:
            converted = self._matched[(rule, "converted")]
            matched = converted + self._matched[(rule, "not_converted")]
            lifts.append(
                RuleLift(
                    rule=rule,
                    kind=self.draft.rule_kind(rule),
                    matched=Rate(matched, converted),
                    not_matched=Rate(total_with_outcome - matched, total_converted - converted),
                )
            )
        return Backtest(
            draft_version=self.draft.version,
            active_version=self.active.version,
            leads=self._leads,
            with_outcome=total_with_outcome,
            grade_mix={grade: self._draft_grades[grade] for grade in GRADES},
            active_grade_mix={grade: self._active_grades[grade] for grade in GRADES},
            moved_up=up,
            moved_down=down,
            unchanged=self._leads - up - down,
            transitions=dict(sorted(self._transitions.items())),
            conversion_by_grade=_conversion(self._draft_grades, self._draft_outcomes),
            active_conversion_by_grade=_conversion(self._active_grades, self._active_outcomes),
            rule_lift=tuple(lifts),
        )


def _conversion(
    grades: Counter[Grade], outcomes: Counter[tuple[Grade, Outcome]]
) -> tuple[GradeConversion, ...]:
    return tuple(
        GradeConversion(
            grade=grade,
            leads=grades[grade],
            with_outcome=outcomes[(grade, "converted")] + outcomes[(grade, "not_converted")],
            converted=outcomes[(grade, "converted")],
        )
        for grade in GRADES
    )


def backtest(
    draft: Rulebook, active: Rulebook, leads: Iterable[LeadHistory], *, now: datetime
) -> Backtest:
    run = BacktestRun(draft=draft, active=active, now=now)
    run.add(leads)
    return run.result()
