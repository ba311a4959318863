"""What the scoring API answers: response bodies, and how stored rows become them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.scoring.domain.backtest import Backtest, GradeConversion, Rate
from services.scoring.domain.document import Problem
from services.scoring.models import (
    LeadRecord,
    RescoreJob,
    RulebookRecord,
    ScoreHistory,
    ScoreRecord,
)


class RulebookSummary(BaseModel):
    version: int
    name: str
    description: str | None
    media_type: Literal["yaml", "json"]
    checksum: str
    created_at: datetime
    active: bool
    activated_at: datetime | None


class RescoreJobView(BaseModel):
    job_id: int
    rulebook_version: int
    status: Literal["pending", "running", "done", "superseded"]
    leads_rescored: int
    grades_changed: int = Field(description="Leads whose grades changed: each was published")
    created_at: datetime
    finished_at: datetime | None


class RulebookDetail(RulebookSummary):
    source: str = Field(description="The document exactly as it was posted")
    document: dict[str, Any] = Field(description="The document as the service read it")
    rescores: list[RescoreJobView] = Field(description="Re-scoring after each activation")


class Activation(BaseModel):
    version: int
    active: bool
    activated_at: datetime | None
    rescore: RescoreJobView | None = Field(
        description="Re-scoring of every open lead; none when the version was already active"
    )


class CategoryView(BaseModel):
    category: str
    fit_score: float
    engagement_score: float
    fit_band: str
    engagement_band: str
    grade: str
    in_market_until: datetime | None


class ReasonView(BaseModel):
    rule: str
    kind: Literal["fit", "engagement"]
    category: str
    points: float
    why: str


class HistoryEntry(BaseModel):
    grade: str
    previous_grade: str | None
    fit_score: float
    engagement_score: float
    rulebook_version: int
    trigger: str
    touchpoint_id: uuid.UUID | None
    scored_at: datetime


class LeadScore(BaseModel):
    lead_id: uuid.UUID
    grade: str
    category: str = Field(description="The category (product line) that gave the grade")
    fit_score: float
    engagement_score: float
    categories: list[CategoryView]
    reasons: list[ReasonView]
    rulebook_version: int
    trigger: str
    touchpoint_id: uuid.UUID | None
    scored_at: datetime
    next_check_at: datetime | None = Field(
        description="When decay may next change the grade: it is re-scored then"
    )
    closed: bool = Field(description="Converted, won or lost: no longer re-scored")
    status: str | None = Field(description="The latest status sales reported")
    history: list[HistoryEntry] = Field(description="Published scores, newest first")


class RateView(BaseModel):
    with_outcome: int = Field(description="Leads with a known outcome")
    converted: int = Field(description="Of those: accepted, converted or won")
    rate: float | None = Field(description="converted / with_outcome")


class GradeConversionView(RateView):
    grade: str
    leads: int = Field(description="Leads with this grade, with an outcome or not")


class RuleLiftView(BaseModel):
    rule: str
    kind: Literal["fit", "engagement"]
    matched: RateView = Field(description="Leads with an outcome the rule matched")
    not_matched: RateView = Field(description="Leads with an outcome the rule did not match")
    lift: float | None = Field(description="matched.rate / not_matched.rate")


class Transition(BaseModel):
    active_grade: str
    draft_grade: str
    leads: int


class Moves(BaseModel):
    up: int
    down: int
    unchanged: int
    transitions: list[Transition]


class BacktestView(BaseModel):
    version: int = Field(description="The rulebook tested")
    active_version: int = Field(description="The active rulebook it is compared with")
    as_of: datetime = Field(
        description="Leads with an outcome are graded as of their first decision; others now"
    )
    leads: int
    leads_with_outcome: int
    grade_mix: dict[str, int]
    active_grade_mix: dict[str, int]
    moves: Moves
    conversion_by_grade: list[GradeConversionView]
    active_conversion_by_grade: list[GradeConversionView]
    rule_lift: list[RuleLiftView]


class CompanyCategoryView(BaseModel):
    category: str
    fit_score: float = Field(description="The best fit among the company's open leads")
    engagement_score: float = Field(description="Its open leads' engagement together")
    in_market: bool = Field(description="One of its leads is in market")
    grade: str


class CompanyLead(BaseModel):
    lead_id: uuid.UUID
    grade: str
    fit_score: float
    engagement_score: float


class CompanyScoreView(BaseModel):
    domain: str | None
    account_id: uuid.UUID | None
    grade: str | None = Field(description="None when the company has no open lead")
    category: str | None
    fit_score: float | None
    engagement_score: float | None
    categories: list[CompanyCategoryView]
    open_leads: int
    closed_leads: int
    rulebook_version: int
    as_of: datetime
    leads: list[CompanyLead] = Field(description="Its open leads, best first")


def summary(record: RulebookRecord) -> RulebookSummary:
    return RulebookSummary(
        version=record.version,
        name=record.name,
        description=record.description,
        media_type="json" if record.media_type == "json" else "yaml",
        checksum=record.checksum,
        created_at=record.created_at,
        active=record.active,
        activated_at=record.activated_at,
    )


def job_view(job: RescoreJob) -> RescoreJobView:
    assert job.id is not None
    return RescoreJobView(
        job_id=job.id,
        rulebook_version=job.rulebook_version,
        status=job.status,
        leads_rescored=job.leads_rescored,
        grades_changed=job.grades_changed,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


def lead_score(
    score: ScoreRecord, lead: LeadRecord | None, history: list[ScoreHistory]
) -> LeadScore:
    return LeadScore(
        lead_id=score.lead_id,
        grade=score.grade,
        category=score.category,
        fit_score=score.fit_score,
        engagement_score=score.engagement_score,
        categories=[CategoryView.model_validate(category) for category in score.categories],
        reasons=[ReasonView.model_validate(reason) for reason in score.reasons],
        rulebook_version=score.rulebook_version,
        trigger=score.trigger,
        touchpoint_id=score.touchpoint_id,
        scored_at=score.scored_at,
        next_check_at=score.next_check_at,
        closed=lead.closed if lead is not None else False,
        status=lead.status if lead is not None else None,
        history=[
            HistoryEntry(
                grade=entry.grade,
                previous_grade=entry.previous_grade,
                fit_score=entry.fit_score,
                engagement_score=entry.engagement_score,
                rulebook_version=entry.rulebook_version,
                trigger=entry.trigger,
                touchpoint_id=entry.touchpoint_id,
                scored_at=entry.scored_at,
            )
            for entry in history
        ],
    )


def problems_detail(problems: tuple[Problem, ...]) -> dict[str, Any]:
    """Rulebook problems in FastAPI's validation shape, located in the request body."""
    return {
        "detail": [
            {"loc": ["body", *problem.path], "msg": problem.message, "type": "value_error"}
            for problem in problems
        ]
    }


def backtest_view(result: Backtest, *, as_of: datetime) -> BacktestView:
    def rate(value: Rate) -> RateView:
        return RateView(with_outcome=value.with_outcome, converted=value.converted, rate=value.rate)

    def conversions(values: tuple[GradeConversion, ...]) -> list[GradeConversionView]:
        return [
            GradeConversionView(
                grade=value.grade,
                leads=value.leads,
                with_outcome=value.with_outcome,
                converted=value.converted,
                rate=value.rate,
            )
            for value in values
        ]

    return BacktestView(
        version=result.draft_version,
        active_version=result.active_version,
        as_of=as_of,
        leads=result.leads,
        leads_with_outcome=result.with_outcome,
        grade_mix=dict(result.grade_mix),
        active_grade_mix=dict(result.active_grade_mix),
        moves=Moves(
            up=result.moved_up,
            down=result.moved_down,
            unchanged=result.unchanged,
            transitions=[
                Transition(active_grade=before, draft_grade=after, leads=count)
                for (before, after), count in result.transitions.items()
            ],
        ),
        conversion_by_grade=conversions(result.conversion_by_grade),
        active_conversion_by_grade=conversions(result.active_conversion_by_grade),
        rule_lift=[
            RuleLiftView(
                rule=lift.rule,
                kind=lift.kind,
                matched=rate(lift.matched),
                not_matched=rate(lift.not_matched),
                lift=lift.lift,
            )
            for lift in result.rule_lift
        ],
    )
