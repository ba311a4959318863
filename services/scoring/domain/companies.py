"""A company's score, rolled up from its open leads' scores.

Per category, the company is as fit as its best-fitting lead, and as engaged as all its
leads together (several people of one account engaging is a buying committee at work),
kept within the rulebook's engagement bounds; it is in market when any of its leads is.
The rulebook's grade matrix grades that, and the company's grade is its best category's.
With engagement that cannot go below zero, a company therefore grades at least as well as
its best lead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.scoring.domain.document import Grade
from services.scoring.domain.engine import GRADE_RANK, Rulebook, Score, grade_for


@dataclass(frozen=True, slots=True)
class CompanyCategory:
    category: str
    fit_score: float
    engagement_score: float
    in_market: bool
    grade: Grade


@dataclass(frozen=True, slots=True)
class CompanyScore:
    grade: Grade
    category: str
    fit_score: float
    engagement_score: float
    categories: tuple[CompanyCategory, ...]
    leads: int


def roll_up(rulebook: Rulebook, scores: Sequence[Score], *, now: datetime) -> CompanyScore | None:
    """The company's score from its open leads' scores (by ``rulebook`` at ``now``)."""
    if not scores:
        return None
    categories = []
    for index, category in enumerate(rulebook.categories):
        parts = [score.categories[index] for score in scores]
        fit = max(part.fit_score for part in parts)
        engagement = rulebook.engagement_bounds.clamp(sum(part.engagement_score for part in parts))
        in_market = any(
            part.in_market_until is not None and part.in_market_until > now for part in parts
        )
        categories.append(
            CompanyCategory(
                category=category,
                fit_score=round(fit, 2),
                engagement_score=round(engagement, 2),
                in_market=in_market,
                grade=grade_for(rulebook, fit, engagement, in_market=in_market),
            )
        )
    best = min(categories, key=lambda category: GRADE_RANK[category.grade])
    return CompanyScore(
        grade=best.grade,
        category=best.category,
        fit_score=best.fit_score,
        engagement_score=best.engagement_score,
        categories=tuple(categories),
        leads=len(scores),
    )
