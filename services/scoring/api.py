"""The scoring API (port 8082): rulebook versions, activation, back-tests, lead scores and
company scores."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from services.scoring import repository, rulebook_store
from services.scoring.clock import clock_of
from services.scoring.domain.backtest import BacktestRun
from services.scoring.domain.companies import roll_up
from services.scoring.domain.document import MediaType, RulebookDoc, RulebookInvalid
from services.scoring.domain.engine import GRADE_RANK, score_lead
from services.scoring.history import history_of
from services.scoring.rescoring import rescore
from services.scoring.responses import (
    Activation,
    BacktestView,
    CompanyCategoryView,
    CompanyLead,
    CompanyScoreView,
    LeadScore,
    RulebookDetail,
    RulebookSummary,
    backtest_view,
    job_view,
    lead_score,
    problems_detail,
    summary,
)
from services.scoring.workers import rescore_wakeup, settings_of
from shared.http import DbSession, ReadSession, RowId, problem, runtime_of

router = APIRouter(tags=["scoring"])

HISTORY_LIMIT = 100
_YAML_TYPES = {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"}


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


def _media_of(content_type: str | None) -> MediaType | None:
    if not content_type:
        return "yaml"
    essence = content_type.split(";", 1)[0].strip().lower()
    if essence == "application/json" or essence.endswith("+json"):
        return "json"
    if essence in _YAML_TYPES:
        return "yaml"
    return None


def _no_rulebook(version: int) -> JSONResponse:
    return problem(404, "path.version", f"no rulebook version {version}")


@router.get("/v1/rulebooks", summary="Every rulebook version, oldest first")
def list_rulebooks(session: ReadSession) -> list[RulebookSummary]:
    return [summary(record) for record in repository.rulebooks(session=session)]


@router.post(
    "/v1/rulebooks",
    status_code=201,
    response_model=RulebookSummary,
    summary="Store a new rulebook version (not active until activated)",
    description=(
        "The body is the rulebook document, YAML (`application/yaml`, the default) or JSON "
        "(`application/json`); `GET /v1/rulebooks/schema` describes it. A rulebook that does "
        "not validate is refused with 422, one entry per problem, each with the path of the "
        "bad part (`loc`: `body`, then the path in the document)."
    ),
    responses={
        415: {"description": "Neither YAML nor JSON"},
        422: {"description": "The rulebook does not validate"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
def create_rulebook(
    request: Request,
    response: Response,
    session: DbSession,
    body: RawBody,
    content_type: Annotated[str | None, Header()] = None,
) -> Any:
    media = _media_of(content_type)
    if media is None:
        return problem(
            415, "header.content-type", "send the rulebook as application/yaml or application/json"
        )
    try:
        source = body.decode("utf-8")
    except UnicodeDecodeError:
        return problem(422, "body", "the rulebook is not UTF-8 text")
    now = clock_of(runtime_of(request))()
    try:
        record = rulebook_store.create(session=session, source=source, media=media, now=now)
    except RulebookInvalid as invalid:
        return JSONResponse(problems_detail(invalid.problems), status_code=422)
    response.headers["Location"] = f"/v1/rulebooks/{record.version}"
    return summary(record)


@router.get("/v1/rulebooks/schema", summary="The JSON Schema of a rulebook document")
def rulebook_schema() -> dict[str, Any]:
    return RulebookDoc.model_json_schema(by_alias=True)


@router.post(
    "/v1/rulebooks/{version}:activate",
    response_model=Activation,
    summary="Make a version the active one; every open lead is re-scored",
    description=(
        "Answers 202 at once. Every open lead is then re-scored in the background, a page "
        "of leads per transaction; only the leads whose grades changed are published on "
        "`leads.scored` (trigger `rulebook_activated`). `GET /v1/rulebooks/{version}` shows "
        "the progress. Activating the active version changes nothing (200)."
    ),
    status_code=202,
    responses={200: {"description": "Already active"}, 404: {"description": "No such version"}},
)
def activate_rulebook(
    version: RowId, request: Request, session: DbSession, background: BackgroundTasks
) -> Any:
    runtime = runtime_of(request)
    now = clock_of(runtime)()
    rulebook_store.ensure_active(session=session, now=now)
    record = repository.rulebook(session=session, version=version)
    if record is None:
        return _no_rulebook(version)
    if record.active:
        return JSONResponse(
            Activation(
                version=version, active=True, activated_at=record.activated_at, rescore=None
            ).model_dump(mode="json"),
            status_code=200,
        )
    job = rulebook_store.activate(session=session, record=record, now=now)
    # After the commit (background tasks run once the answer is sent): wake the worker.
    background.add_task(rescore_wakeup(runtime).notify)
    return Activation(
        version=version, active=True, activated_at=record.activated_at, rescore=job_view(job)
    )


@router.post(
    "/v1/rulebooks/{version}:backtest",
    response_model=BacktestView,
    summary="Run a version over the stored history, against the active one",
    description=(
        "Every lead the service knows, open or closed, is graded by this version and by the "
        "active one, as of the moment sales first decided on it (its first feedback with an "
        "outcome), from the touchpoints it had by then; a lead with no outcome yet is graded "
        "as of now. Answers the grade mix, how many leads move up or down, conversion per "
        "grade (accepted, converted or won against rejected or lost; the latest outcome "
        "counts) and the lift of each rule: the conversion of the leads it matched over that "
        "of the leads it did not. Nothing is stored or published."
    ),
    responses={404: {"description": "No such version"}},
)
def backtest_rulebook(version: RowId, request: Request, session: ReadSession) -> Any:
    runtime = runtime_of(request)
    record = repository.rulebook(session=session, version=version)
    if record is None:
        return _no_rulebook(version)
    active = repository.active_rulebook(session=session)
    assert active is not None  # a version is only stored once one is active
    now = clock_of(runtime)()
    run = BacktestRun(
        draft=rulebook_store.compiled(record), active=rulebook_store.compiled(active), now=now
    )
    page_size = settings_of(runtime).backtest_page_size
    after = None
    while lead_ids := repository.lead_ids_after(session=session, after=after, limit=page_size):
        run.add(history_of(session=session, lead_ids=lead_ids))
        after = lead_ids[-1]
    return backtest_view(run.result(), as_of=now)


@router.get(
    "/v1/rulebooks/{version}",
    response_model=RulebookDetail,
    summary="One version: its source, the document as read, and its re-scoring runs",
    responses={404: {"description": "No such version"}},
)
def get_rulebook(version: RowId, session: ReadSession) -> Any:
    record = repository.rulebook(session=session, version=version)
    if record is None:
        return _no_rulebook(version)
    document = rulebook_store.document_of(record)
    jobs = repository.rescore_jobs(session=session, rulebook_version=version)
    return RulebookDetail(
        **summary(record).model_dump(),
        source=record.source,
        document=document.model_dump(mode="json", by_alias=True, exclude_none=True),
        rescores=[job_view(job) for job in jobs],
    )


@router.get(
    "/v1/leads/{lead_id}/score",
    response_model=LeadScore,
    summary="A lead's current score with its reasons, and its history",
    responses={404: {"description": "No score for this lead"}},
)
def get_lead_score(lead_id: uuid.UUID, session: ReadSession) -> Any:
    score = repository.score(session=session, lead_id=lead_id)
    if score is None:
        return problem(404, "path.lead_id", f"no score for lead {lead_id}")
    lead = repository.lead(session=session, lead_id=lead_id)
    history = repository.history(session=session, lead_id=lead_id, limit=HISTORY_LIMIT)
    return lead_score(score, lead, history)


@router.post(
    "/v1/leads/{lead_id}:rescore",
    response_model=LeadScore,
    summary="Re-score one lead now with the active rulebook, and publish it",
    description=(
        "For operations: the lead is graded at once, as decay or an activation would, and "
        "the score is published on `leads.scored` with trigger `rescore` whether its grade "
        "changed or not."
    ),
    responses={404: {"description": "No such lead"}},
)
def rescore_lead(lead_id: uuid.UUID, request: Request, session: DbSession) -> Any:
    runtime = runtime_of(request)
    now = clock_of(runtime)()
    counts = rescore(
        session=session,
        outbox=runtime.outbox,
        rulebook=rulebook_store.for_scoring(session=session, now=now),
        lead_ids=[lead_id],
        now=now,
        trigger="rescore",
        publish="always",
    )
    if counts.unknown:
        return problem(404, "path.lead_id", f"no lead {lead_id}")
    score = repository.score(session=session, lead_id=lead_id)
    assert score is not None
    lead = repository.lead(session=session, lead_id=lead_id)
    history = repository.history(session=session, lead_id=lead_id, limit=HISTORY_LIMIT)
    return lead_score(score, lead, history)


@router.get(
    "/v1/companies/{key}/score",
    response_model=CompanyScoreView,
    summary="A company's score, rolled up from its open leads",
    description=(
        "`key` is the company's registrable domain (`acme.com`) or its CRM account id (a "
        "UUID). Its open leads are scored now with the active rulebook; per category the "
        "company has its best lead's fit and all its leads' engagement together (within the "
        "engagement bounds), in market when any lead is, graded by the rulebook's matrix."
    ),
    responses={404: {"description": "No lead of this company"}},
)
def get_company_score(key: str, request: Request, session: ReadSession) -> Any:
    domain, account_id = _company_key(key)
    if domain is None and account_id is None:
        return problem(
            422, "path.key", "give a company domain (acme.com) or an account id (a UUID)"
        )
    leads = repository.company_leads(session=session, domain=domain, account_id=account_id)
    if not leads:
        return problem(404, "path.key", f"no lead of company {key}")
    active = repository.active_rulebook(session=session)
    assert active is not None  # a lead is only stored once a rulebook is active
    rulebook = rulebook_store.compiled(active)
    now = clock_of(runtime_of(request))()
    open_leads = [lead for lead in leads if not lead.closed]
    touchpoints = repository.touchpoints_of(
        session=session, lead_ids=[lead.lead_id for lead in open_leads]
    )
    scores = {
        lead.lead_id: score_lead(
            rulebook, repository.snapshot_of(lead), touchpoints[lead.lead_id], now=now
        )
        for lead in open_leads
    }
    company = roll_up(rulebook, list(scores.values()), now=now)
    ranked = sorted(
        scores.items(),
        key=lambda item: (GRADE_RANK[item[1].grade], -item[1].fit_score, str(item[0])),
    )
    return CompanyScoreView(
        domain=domain,
        account_id=account_id,
        grade=company.grade if company else None,
        category=company.category if company else None,
        fit_score=company.fit_score if company else None,
        engagement_score=company.engagement_score if company else None,
        categories=[
            CompanyCategoryView(
                category=category.category,
                fit_score=category.fit_score,
                engagement_score=category.engagement_score,
                in_market=category.in_market,
                grade=category.grade,
            )
            for category in (company.categories if company else ())
        ],
        open_leads=len(open_leads),
        closed_leads=len(leads) - len(open_leads),
        rulebook_version=rulebook.version,
        as_of=now,
        leads=[
            CompanyLead(
                lead_id=lead_id,
                grade=score.grade,
                fit_score=score.fit_score,
                engagement_score=score.engagement_score,
            )
            for lead_id, score in ranked
        ],
    )


def _company_key(key: str) -> tuple[str | None, uuid.UUID | None]:
    try:
        return None, uuid.UUID(key)
    except ValueError:
        pass
    domain = key.strip().lower()
    if "." not in domain or "/" in domain or " " in domain:
        return None, None
    return domain, None
