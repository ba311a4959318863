"""The rule engine: a compiled rulebook grades a lead from its snapshot and touchpoints.

For each score category (one per product line):

* **fit** is the sum of the points of the fit rules that match the lead; the rules of a group
  add up to at most the group's cap; the total is kept within ``fit.min``/``fit.max``;
* **engagement** is the sum, over touchpoints, of the points of the engagement rules each
  matches, a rule giving at most its ``daily_cap`` per UTC day (the day's latest touchpoints
  count first); each touchpoint's points then decay with the half-life, by its age at
  ``now``; the total is kept within ``engagement.min``/``engagement.max``;
* each score falls in a band (the first whose lowest score it reaches); a touchpoint of an
  ``in_market`` rule lifts the engagement band to at least ``in_market.min_band`` for
  ``window_days``; the grade matrix turns the two bands into A-D.

The lead's grade is its best category's (the first declared wins a tie). Each reason names a
rule, its points and why; per category and kind the reasons add up to the score (caps and
bounds appear as reasons with the points they took away). Bands compare exact scores; the
numbers reported are rounded to two decimals.

:func:`score_lead` also answers when the grade will next change by itself (engagement decays
across a band line, an in-market window closes), so a scheduler can re-score it then.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from services.scoring.domain.conditions import compile_condition, describe, list_members
from services.scoring.domain.document import GRADES, FitRuleDoc, Grade, RulebookDoc
from services.scoring.domain.facts import TouchpointFacts, lead_getter, normalize, touchpoint_getter
from shared.contracts import LeadSnapshot

Kind = Literal["fit", "engagement"]
GRADE_RANK: dict[str, int] = {grade: index for index, grade in enumerate(GRADES)}
# A re-check lands this long after the computed crossing, safely on its far side.
CROSSING_MARGIN = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    kind: Kind
    category: str
    points: float
    why: str


@dataclass(frozen=True, slots=True)
class CategoryScore:
    category: str
    fit_score: float
    engagement_score: float
    fit_band: str
    engagement_band: str
    grade: Grade
    in_market_until: datetime | None


@dataclass(frozen=True, slots=True)
class Score:
    rulebook_version: int
    scored_at: datetime
    grade: Grade
    category: str  # the category that gave the grade
    fit_score: float
    engagement_score: float
    categories: tuple[CategoryScore, ...]
    reasons: tuple[Reason, ...]
    matched_rules: frozenset[str]
    # When the grade may next change with no new touchpoint (None: never by itself).
    next_check_at: datetime | None

    @property
    def signature(self) -> tuple[Grade, ...]:
        """The grades that, when any changes, make a re-score worth publishing."""
        return tuple(category.grade for category in self.categories)


# ---------------------------------------------------------------------------- compiled rules

FitOutcome = tuple[float, str] | None  # points and why, or None when the rule does not match


@dataclass(frozen=True, slots=True)
class FitRule:
    id: str
    categories: frozenset[str]
    group: str | None
    evaluate: Callable[[LeadSnapshot], FitOutcome]


@dataclass(frozen=True, slots=True)
class EngagementRule:
    id: str
    categories: frozenset[str]
    points: float
    daily_cap: float | None
    in_market: bool
    matches: Callable[[TouchpointFacts], bool]
    why: str


@dataclass(frozen=True, slots=True)
class Bounds:
    low: float | None
    high: float | None

    def clamp(self, value: float) -> float:
        if self.high is not None and value > self.high:
            value = self.high
        if self.low is not None and value < self.low:
            value = self.low
        return value


@dataclass(frozen=True)
class Rulebook:
    version: int
    name: str
    categories: tuple[str, ...]
    fit_rules: tuple[FitRule, ...]
    fit_caps: Mapping[str, float]
    fit_bounds: Bounds
    engagement_rules: tuple[EngagementRule, ...]
    half_life: timedelta | None
    engagement_bounds: Bounds
    in_market_window: timedelta | None
    in_market_band: str | None
    fit_bands: tuple[tuple[str, float | None], ...]
    engagement_bands: tuple[tuple[str, float | None], ...]
    matrix: Mapping[str, Mapping[str, Grade]]

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(rule.id for rule in self.fit_rules) + tuple(
            rule.id for rule in self.engagement_rules
        )

    def rule_kind(self, rule_id: str) -> Kind:
        return "fit" if any(rule.id == rule_id for rule in self.fit_rules) else "engagement"

    def grade_of(self, fit_band: str, engagement_band: str) -> Grade:
        return self.matrix[fit_band][engagement_band]


def compile_rulebook(document: RulebookDoc, *, version: int) -> Rulebook:
    """A validated document, ready to score with (compiled once, used for many leads)."""
    lists = {name: list_members(values) for name, values in document.lists.items()}
    every = frozenset(document.category_ids)
    fit_rules = []
    for rule in document.fit.rules:
        categories = frozenset(rule.categories) if rule.categories else every
        fit_rules.append(FitRule(rule.id, categories, rule.group, _fit_evaluator(rule, lists)))
    engagement_rules = []
    for engagement in document.engagement.rules:
        when = engagement.when
        matches: Callable[[TouchpointFacts], bool] = (
            compile_condition(when, touchpoint_getter, lists)
            if when is not None
            else (lambda _touchpoint: True)
        )
        why = engagement.why or (describe(when) if when is not None else "every touchpoint")
        engagement_rules.append(
            EngagementRule(
                id=engagement.id,
                categories=frozenset(engagement.categories) if engagement.categories else every,
                points=engagement.points,
                daily_cap=engagement.daily_cap,
                in_market=engagement.in_market,
                matches=matches,
                why=why,
            )
        )
    in_market = document.engagement.in_market
    half_life = document.engagement.half_life_days
    return Rulebook(
        version=version,
        name=document.name,
        categories=tuple(document.category_ids),
        fit_rules=tuple(fit_rules),
        fit_caps=dict(document.fit.caps),
        fit_bounds=Bounds(document.fit.min, document.fit.max),
        engagement_rules=tuple(engagement_rules),
        half_life=timedelta(days=half_life) if half_life is not None else None,
        engagement_bounds=Bounds(document.engagement.min, document.engagement.max),
        in_market_window=timedelta(days=in_market.window_days) if in_market else None,
        in_market_band=in_market.min_band if in_market else None,
        fit_bands=tuple(document.grades.fit_bands.items()),
        engagement_bands=tuple(document.grades.engagement_bands.items()),
        matrix={row: dict(columns) for row, columns in document.grades.matrix.items()},
    )


def _fit_evaluator(
    rule: FitRuleDoc, lists: Mapping[str, frozenset[str | int | float]]
) -> Callable[[LeadSnapshot], FitOutcome]:
    when = compile_condition(rule.when, lead_getter, lists) if rule.when is not None else None
    if rule.points_by_value is not None:
        assert rule.field is not None
        field = rule.field
        getter = lead_getter(field)
        assert getter is not None
        table = {normalize(key): points for key, points in rule.points_by_value.items()}
        label = rule.why or field

        def by_value(lead: LeadSnapshot) -> FitOutcome:
            if when is not None and not when(lead):
                return None
            raw = getter(lead)
            key = normalize(raw)
            if key is None or key not in table:
                return None
            return table[key], f"{label}: {field} is {raw}"

        return by_value
    points = rule.points
    assert points is not None
    why = rule.why or (describe(rule.when) if rule.when is not None else "every lead")
    if when is None:
        return lambda _lead: (points, why)
    return lambda lead: (points, why) if when(lead) else None


# ---------------------------------------------------------------------------- scoring


@dataclass(frozen=True, slots=True)
class _Award:
    """What one touchpoint earned under one engagement rule, before decay."""

    points: float
    at: datetime
    capped: bool


@dataclass(frozen=True)
class _Category:
    """A category's time-independent part, and what engagement is made of."""

    category: str
    fit_score: float
    fit_band: str
    terms: tuple[_Award, ...]
    by_rule: tuple[tuple[EngagementRule, tuple[_Award, ...]], ...]
    in_market_last: datetime | None


def score_lead(
    rulebook: Rulebook,
    lead: LeadSnapshot,
    touchpoints: Sequence[TouchpointFacts],
    *,
    now: datetime,
) -> Score:
    """Grade a lead at ``now`` from its snapshot and every touchpoint it has."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    reasons: list[Reason] = []
    matched: set[str] = set()
    fit_outcomes: list[tuple[FitRule, float, str]] = []
    for fit_rule in rulebook.fit_rules:
        outcome = fit_rule.evaluate(lead)
        if outcome is not None:
            matched.add(fit_rule.id)
            fit_outcomes.append((fit_rule, *outcome))
    awards = _engagement_awards(rulebook, touchpoints)
    for rule_id, rule_awards in awards.items():
        if rule_awards:
            matched.add(rule_id)

    parts: list[_Category] = []
    results: list[CategoryScore] = []
    for category in rulebook.categories:
        fit_score, fit_reasons = _fit(rulebook, category, fit_outcomes)
        part = _engagement_part(rulebook, category, awards, fit_score)
        engagement, engagement_reasons = _engagement_at(rulebook, part, now, explain=True)
        reasons.extend(fit_reasons)
        reasons.extend(engagement_reasons)
        parts.append(part)
        results.append(_category_score(rulebook, part, engagement, now))
    best = min(results, key=lambda result: GRADE_RANK[result.grade])
    return Score(
        rulebook_version=rulebook.version,
        scored_at=now,
        grade=best.grade,
        category=best.category,
        fit_score=best.fit_score,
        engagement_score=best.engagement_score,
        categories=tuple(results),
        reasons=tuple(reasons),
        matched_rules=frozenset(matched),
        next_check_at=_next_check(rulebook, parts, now, touchpoints),
    )


def _fit(
    rulebook: Rulebook, category: str, outcomes: list[tuple[FitRule, float, str]]
) -> tuple[float, list[Reason]]:
    reasons: list[Reason] = []
    total = 0.0
    by_group: dict[str, float] = {}
    for rule, points, why in outcomes:
        if category not in rule.categories:
            continue
        if rule.group is None:
            total += points
        else:
            by_group[rule.group] = by_group.get(rule.group, 0.0) + points
        if points != 0:
            reasons.append(Reason(rule.id, "fit", category, _round(points), why))
    for group, points in by_group.items():
        cap = rulebook.fit_caps[group]
        total += min(points, cap)
        if points > cap:
            reasons.append(
                Reason(
                    f"fit.caps.{group}",
                    "fit",
                    category,
                    _round(cap - points),
                    f"the {group} rules add up to {_number(points)}, capped at {_number(cap)}",
                )
            )
    bounded = rulebook.fit_bounds.clamp(total)
    if bounded != total:
        which = "max" if bounded < total else "min"
        reasons.append(
            Reason(
                f"fit.{which}",
                "fit",
                category,
                _round(bounded - total),
                f"fit is kept {'at most' if which == 'max' else 'at least'} {_number(bounded)}",
            )
        )
    return bounded, reasons


def _engagement_awards(
    rulebook: Rulebook, touchpoints: Sequence[TouchpointFacts]
) -> dict[str, list[_Award]]:
    """Per engagement rule, what each matching touchpoint earned under the daily cap."""
    # The day's latest touchpoints fill the cap first: they are the freshest, so another
    # touchpoint can only add engagement, never push fresher points out.
    ordered = sorted(
        touchpoints, key=lambda tp: (tp.occurred_at, str(tp.touchpoint_id)), reverse=True
    )
    awards: dict[str, list[_Award]] = {}
    for rule in rulebook.engagement_rules:
        used: dict[date, float] = {}
        earned: list[_Award] = []
        for touchpoint in ordered:
            if not rule.matches(touchpoint):
                continue
            points = rule.points
            capped = False
            if rule.daily_cap is not None and points > 0:
                day = touchpoint.occurred_at.astimezone(UTC).date()
                room = max(0.0, rule.daily_cap - used.get(day, 0.0))
                if points > room:
                    points, capped = room, True
                used[day] = used.get(day, 0.0) + points
            earned.append(_Award(points, touchpoint.occurred_at, capped))
        awards[rule.id] = earned
    return awards


def _engagement_part(
    rulebook: Rulebook, category: str, awards: dict[str, list[_Award]], fit_score: float
) -> _Category:
    terms: list[_Award] = []
    by_rule: list[tuple[EngagementRule, tuple[_Award, ...]]] = []
    in_market_last: datetime | None = None
    for rule in rulebook.engagement_rules:
        if category not in rule.categories:
            continue
        earned = awards[rule.id]
        terms.extend(earned)
        by_rule.append((rule, tuple(earned)))
        if rule.in_market and earned:
            last = max(award.at for award in earned)
            in_market_last = last if in_market_last is None else max(in_market_last, last)
    return _Category(
        category=category,
        fit_score=fit_score,
        fit_band=_band(rulebook.fit_bands, fit_score),
        terms=tuple(terms),
        by_rule=tuple(by_rule),
        in_market_last=in_market_last,
    )


def decay_factor(half_life: timedelta | None, age: timedelta) -> float:
    """What share of its points a touchpoint keeps at ``age`` (none lost before it happens)."""
    if half_life is None or age <= timedelta(0):
        return 1.0
    return float(0.5 ** (age / half_life))


def _engagement_at(
    rulebook: Rulebook, part: _Category, now: datetime, *, explain: bool = False
) -> tuple[float, list[Reason]]:
    raw = sum(
        award.points * decay_factor(rulebook.half_life, now - award.at) for award in part.terms
    )
    bounded = rulebook.engagement_bounds.clamp(raw)
    if not explain:
        return bounded, []
    reasons = _engagement_reasons(rulebook, part, now)
    if bounded != raw:
        which = "max" if bounded < raw else "min"
        reasons.append(
            Reason(
                f"engagement.{which}",
                "engagement",
                part.category,
                _round(bounded - raw),
                f"engagement is kept {'at most' if which == 'max' else 'at least'} "
                f"{_number(bounded)}",
            )
        )
    if _in_market(rulebook, part, now):
        assert part.in_market_last is not None
        assert rulebook.in_market_window is not None
        until = part.in_market_last + rulebook.in_market_window
        reasons.append(
            Reason(
                "engagement.in_market",
                "engagement",
                part.category,
                0.0,
                f"in market since {part.in_market_last:%Y-%m-%d}: engagement counts as at "
                f"least {rulebook.in_market_band} until {until:%Y-%m-%d %H:%M} UTC",
            )
        )
    return bounded, reasons


def _engagement_reasons(rulebook: Rulebook, part: _Category, now: datetime) -> list[Reason]:
    reasons = []
    for rule, earned in part.by_rule:
        if not earned:
            continue
        before_decay = sum(award.points for award in earned)
        points = sum(
            award.points * decay_factor(rulebook.half_life, now - award.at) for award in earned
        )
        if _round(points) == 0 and before_decay == 0:
            continue
        last = max(award.at for award in earned)
        count = len(earned)
        why = (
            f"{rule.why}: {count} touchpoint{'s' if count != 1 else ''}, the last on "
            f"{last:%Y-%m-%d}; {_number(before_decay)} points"
        )
        capped = sum(1 for award in earned if award.capped)
        if capped and rule.daily_cap is not None:
            why += f" ({capped} over the daily cap of {_number(rule.daily_cap)})"
        if rulebook.half_life is not None and _round(points) != _round(before_decay):
            why += f", {_number(points)} after decay"
        reasons.append(Reason(rule.id, "engagement", part.category, _round(points), why))
    return reasons


def _in_market(rulebook: Rulebook, part: _Category, at: datetime) -> bool:
    if part.in_market_last is None or rulebook.in_market_window is None:
        return False
    return at < part.in_market_last + rulebook.in_market_window


def _category_score(
    rulebook: Rulebook, part: _Category, engagement: float, now: datetime
) -> CategoryScore:
    engagement_band = _engagement_band(rulebook, part, engagement, now)
    in_market_until = (
        part.in_market_last + rulebook.in_market_window
        if part.in_market_last is not None and rulebook.in_market_window is not None
        else None
    )
    return CategoryScore(
        category=part.category,
        fit_score=_round(part.fit_score),
        engagement_score=_round(engagement),
        fit_band=part.fit_band,
        engagement_band=engagement_band,
        grade=rulebook.grade_of(part.fit_band, engagement_band),
        in_market_until=in_market_until,
    )


def _engagement_band(rulebook: Rulebook, part: _Category, engagement: float, at: datetime) -> str:
    band = _band(rulebook.engagement_bands, engagement)
    if rulebook.in_market_band is not None and _in_market(rulebook, part, at):
        names = [name for name, _floor in rulebook.engagement_bands]
        if names.index(rulebook.in_market_band) < names.index(band):
            band = rulebook.in_market_band
    return band


def grade_for(
    rulebook: Rulebook, fit_score: float, engagement_score: float, *, in_market: bool = False
) -> Grade:
    """The grade matrix applied to a fit and an engagement score."""
    engagement_band = _band(rulebook.engagement_bands, engagement_score)
    if in_market and rulebook.in_market_band is not None:
        names = [name for name, _floor in rulebook.engagement_bands]
        if names.index(rulebook.in_market_band) < names.index(engagement_band):
            engagement_band = rulebook.in_market_band
    return rulebook.grade_of(_band(rulebook.fit_bands, fit_score), engagement_band)


def _band(bands: tuple[tuple[str, float | None], ...], score: float) -> str:
    for name, floor in bands:
        if floor is None or score >= floor:
            return name
    return bands[-1][0]


# ---------------------------------------------------------------------------- next change


def grades_at(rulebook: Rulebook, parts: Sequence[_Category], at: datetime) -> tuple[Grade, ...]:
    grades = []
    for part in parts:
        engagement, _ = _engagement_at(rulebook, part, at)
        grades.append(
            rulebook.grade_of(part.fit_band, _engagement_band(rulebook, part, engagement, at))
        )
    return tuple(grades)


def _next_check(
    rulebook: Rulebook,
    parts: Sequence[_Category],
    now: datetime,
    touchpoints: Sequence[TouchpointFacts],
) -> datetime | None:
    """The first moment after ``now`` at which the category grades differ from now's.

    Candidates: each time a category's decaying engagement crosses a band's lowest score,
    each in-market window's end. With a single half-life, engagement from touchpoints in
    the past is ``E(now) * 2^-(t - now)/half_life``, so each crossing has a closed form. A
    touchpoint dated after ``now`` (clock skew) ends the look-ahead: re-check at its time.
    """
    future = [tp.occurred_at for tp in touchpoints if tp.occurred_at > now]
    horizon = min(future) if future else None
    candidates: set[datetime] = set()
    for part in parts:
        if rulebook.half_life is not None and part.terms:
            current = sum(
                award.points * decay_factor(rulebook.half_life, now - award.at)
                for award in part.terms
            )
            for _name, floor in rulebook.engagement_bands:
                if floor is None or floor == 0 or current == 0:
                    continue
                ratio = current / floor
                # At exactly the floor (ratio 1) the crossing is now: it counts too.
                if ratio >= 1:
                    candidates.add(now + rulebook.half_life * math.log2(ratio))
        if part.in_market_last is not None and rulebook.in_market_window is not None:
            until = part.in_market_last + rulebook.in_market_window
            if until > now:
                candidates.add(until)
    before = grades_at(rulebook, parts, now)
    for candidate in sorted(candidates):
        if horizon is not None and candidate >= horizon:
            break
        moment = candidate + CROSSING_MARGIN
        if grades_at(rulebook, parts, moment) != before:
            return moment
    return horizon


def _round(value: float) -> float:
    rounded = round(value, 2)
    return 0.0 if rounded == 0 else rounded


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"
